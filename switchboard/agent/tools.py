"""The dialog's tools: their JSON schemas for the model, and the checks that turn a model's tool call into a
decision. A tool call is untrusted input (the caller's words reach the model): the arguments are parsed with size
limits and strict schemas, unknown keys are refused, and no tool takes a phone number. A transfer always goes to
the profile's operator and an alert to the profile's recipients, whatever the model or the caller says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import openai
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from switchboard.agent.events import After
from switchboard.agent.profile import AgentProfile
from switchboard.extract.schema import CallFacts

MAX_ARGUMENT_BYTES: Final = 4096
MAX_TEXT: Final = 300


class ToolRejected(ValueError):
    """The model's tool call is refused; ``reason`` goes back to the model as the tool's result. ``malformed``:
    the arguments are not even a JSON object (a broken model output, not a refused request)."""

    def __init__(self, tool: str, reason: str, *, malformed: bool = False) -> None:
        super().__init__(f"{tool}: {reason}")
        self.tool, self.reason, self.malformed = tool, reason, malformed


# -- the decisions a reply can carry besides its words -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RecordDetails:
    facts: CallFacts


@dataclass(frozen=True, slots=True)
class RequestTransfer:
    """Transfer to the configured operator once the current words have been heard."""

    reason: str
    after: After = "transfer"


@dataclass(frozen=True, slots=True)
class RaiseAlert:
    """Send the emergency alert to the configured recipients now (during the call)."""

    summary: str


@dataclass(frozen=True, slots=True)
class RequestEnd:
    """Hang up once the current words (the goodbye) have been heard."""

    reason: str
    after: After = "end"


Decision = RecordDetails | RequestTransfer | RaiseAlert | RequestEnd


# -- argument schemas ---------------------------------------------------------------------------------------------


class _Reason(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    reason: str = Field(max_length=MAX_TEXT, description="Why, in a few words.")


class _Alert(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    summary: str = Field(max_length=MAX_TEXT, description="The emergency in one line, with the address if known.")


_SCHEMAS: Final[dict[str, type[BaseModel]]] = {
    "record_details": CallFacts, "transfer_to_operator": _Reason, "send_emergency_alert": _Alert,
    "end_call": _Reason,
}


def tool_specs(profile: AgentProfile) -> list[dict[str, Any]]:
    """The ``tools`` of a chat request: strict function schemas (``CallFacts`` is the extraction's own)."""
    return [dict(openai.pydantic_function_tool(model, name=name, description=profile.tool_descriptions[name]))
            for name, model in _SCHEMAS.items()]


def parse_tool_call(name: str, arguments: str) -> Decision:
    """The decision a tool call asks for; :class:`ToolRejected` if it is not one the agent may take."""
    schema = _SCHEMAS.get(name)
    if schema is None:
        raise ToolRejected(name, "no such tool")
    if len(arguments.encode()) > MAX_ARGUMENT_BYTES:
        raise ToolRejected(name, f"arguments longer than {MAX_ARGUMENT_BYTES} bytes")
    try:
        raw = json.loads(arguments or "{}")
    except json.JSONDecodeError as exc:
        raise ToolRejected(name, f"arguments are not JSON: {exc}", malformed=True) from exc
    if not isinstance(raw, dict):
        raise ToolRejected(name, "arguments must be a JSON object", malformed=True)
    try:
        value = schema.model_validate(raw)
    except ValidationError as exc:
        raise ToolRejected(name, f"invalid arguments: {_first_error(exc)}") from exc
    match value:
        case CallFacts():
            _check_lengths(name, value)
            return RecordDetails(value)
        case _Alert(summary=summary):
            return RaiseAlert(summary)
        case _Reason(reason=reason) if name == "transfer_to_operator":
            return RequestTransfer(reason)
        case _Reason(reason=reason):
            return RequestEnd(reason)
    raise ToolRejected(name, "unexpected arguments")  # pragma: no cover - every schema is matched above


def _check_lengths(name: str, facts: CallFacts) -> None:
    for field, value in facts.model_dump().items():
        if isinstance(value, str) and len(value) > MAX_TEXT:
            raise ToolRejected(name, f"{field} is longer than {MAX_TEXT} characters")


def _first_error(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        error = exc.errors()[0]
        return f"{'.'.join(map(str, error['loc'])) or 'arguments'}: {error['msg']}"
    return str(exc)


__all__ = [
    "Decision", "RaiseAlert", "RecordDetails", "RequestEnd", "RequestTransfer", "ToolRejected", "parse_tool_call",
    "tool_specs",
]
