"""The agent profile: a small TOML file (stdlib ``tomllib``) with the business, what to collect, who may be called
or alerted, the model settings and every line the agent says. The documented default ships as package data
(``profiles/default.toml``); a deployment points at its own copy.

Loading checks everything once, so a bad profile fails at start with the file and key in the message: unknown or
missing keys, numbers that are not phone numbers, and templates naming a placeholder they may not use.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any, Final

from switchboard.agent.turns import Lines
from switchboard.extract.schema import normalise_phone

FIELDS: Final = ("caller_name", "address", "postcode", "issue", "urgency", "callback_number")
LINE_NAMES: Final = (
    "greeting", "reprompt", "goodbye_silence", "transfer", *(f"ask_{f}" for f in FIELDS), "ask_again", "readback",
    *(f"fact_{f}" for f in FIELDS), "correction", "corrected", "goodbye", "goodbye_no_name", "emergency",
    "emergency_advice_gas", "machine_message",
)
TOOLS: Final = ("record_details", "transfer_to_operator", "send_emergency_alert", "end_call")
PLACEHOLDERS: Final[Mapping[str, frozenset[str]]] = {
    "ask_again": frozenset({"question"}), "readback": frozenset({"facts"}), "goodbye": frozenset({"name"}),
**{f"fact_{f}": frozenset({"value"}) for f in FIELDS},
    "system": frozenset({"services", "hours", "area", "emergencies", "fields"}), "facts_note": frozenset({"facts"}),
}


class ProfileError(ValueError):
    """The profile cannot be used; the message names the file and the key."""


@dataclass(frozen=True, slots=True)
class AgentProfile:
    source: str
    business_name: str
    services: tuple[str, ...]
    hours: str
    area: str
    voice_id: str | None
    fields: tuple[str, ...]
    transfer_numbers: tuple[str, ...]
    alert_recipients: tuple[str, ...]
    emergencies: tuple[str, ...]
    model: str
    first_token_timeout_s: float
    temperature: float
    max_tokens: int
    lines: Mapping[str, str]
    system_template: str
    tool_descriptions: Mapping[str, str]
    notes: Mapping[str, str]

    def line(self, key: str, /, **values: str) -> str:
        """A line of the profile with its placeholders filled (values are inserted as text, never re-parsed)."""
        return self.lines[key].format_map({"business_name": self.business_name, **values}).strip()

    def core_lines(self) -> Lines:
        return Lines(self.line("greeting"), self.line("reprompt"), self.line("goodbye_silence"),
                     self.line("transfer"))

    def system_prompt(self) -> str:
        return self.system_template.format_map({
            "business_name": self.business_name, "services": ", ".join(self.services), "hours": self.hours,
            "area": self.area, "emergencies": "; ".join(self.emergencies),
            "fields": ", ".join(f.replace("_", " ") for f in self.fields)}).strip()

    def note(self, key: str, /, **values: str) -> str:
        """An addition to the system prompt (``facts_note``, ``alerted_note``)."""
        return self.notes[key].format_map({"business_name": self.business_name, **values}).strip()

    def with_operator(self, operator_number: str | None) -> AgentProfile:
        """Empty transfer and alert lists fall back to the configured operator number."""
        if operator_number is None:
            return self
        number = _phone(operator_number, self.source, "OPERATOR_NUMBER")
        return replace(self, transfer_numbers=self.transfer_numbers or (number,),
                        alert_recipients=self.alert_recipients or (number,))


def load_profile(path: Path | None = None) -> AgentProfile:
    """The profile at ``path``, or the shipped default."""
    if path is None:
        source, text = "default profile", (resources.files("switchboard.agent") / "profiles/default.toml").read_text(
            encoding="utf-8")
    else:
        source = str(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ProfileError(f"{source}: cannot read the agent profile ({exc.strerror})") from exc
    return parse_profile(text, source)


def parse_profile(text: str, source: str = "profile") -> AgentProfile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{source}: not valid TOML: {exc}") from exc
    read = _Reader(data, source)
    fields = read.strings("collect", "fields")
    unknown = sorted(set(fields) - set(FIELDS))
    if unknown or not fields:
        raise ProfileError(f"{source}: [collect] fields must be some of {', '.join(FIELDS)}; got {unknown or 'none'}")
    lines = {name: read.string("lines", name) for name in LINE_NAMES}
    extra = sorted(set(read.table("lines")) - set(LINE_NAMES))
    if extra:
        raise ProfileError(f"{source}: [lines] has unknown keys {extra}")
    system = read.string("prompts", "system")
    tools = {name: read.string("prompts", f"tool_{name}") for name in TOOLS}
    notes = {name: read.string("prompts", name) for name in ("facts_note", "alerted_note")}
    for name, template in [*lines.items(), ("system", system), *notes.items()]:
        _check_template(template, PLACEHOLDERS.get(name, frozenset()), source, name)
    timeout = read.number("model", "first_token_timeout_s")
    if not 0 < timeout <= 30:
        raise ProfileError(f"{source}: [model] first_token_timeout_s must be in (0, 30], got {timeout}")
    return AgentProfile(
        source=source, business_name=read.string("business", "name"),
        services=tuple(read.strings("business", "services")), hours=read.string("business", "hours"),
        area=read.string("business", "area"), voice_id=read.string("voice", "voice_id") or None,
        fields=tuple(fields),
        transfer_numbers=tuple(_phone(n, source, "transfer_numbers")
                               for n in read.strings("escalation", "transfer_numbers", allow_empty=True)),
        alert_recipients=tuple(_phone(n, source, "alert_recipients")
                               for n in read.strings("escalation", "alert_recipients", allow_empty=True)),
        emergencies=tuple(read.strings("escalation", "emergencies")), model=read.string("model", "name"),
        first_token_timeout_s=timeout, temperature=read.number("model", "temperature"),
        max_tokens=int(read.number("model", "max_tokens")), lines=lines, system_template=system,
        tool_descriptions=tools, notes=notes)


class _Reader:
    def __init__(self, data: dict[str, Any], source: str) -> None:
        self._data, self._source = data, source

    def table(self, name: str) -> dict[str, Any]:
        table = self._data.get(name)
        if not isinstance(table, dict):
            raise ProfileError(f"{self._source}: missing table [{name}]")
        return table

    def _value(self, table: str, key: str) -> Any:
        values = self.table(table)
        if key not in values:
            raise ProfileError(f"{self._source}: missing [{table}] {key}")
        return values[key]

    def string(self, table: str, key: str) -> str:
        value = self._value(table, key)
        if not isinstance(value, str):
            raise ProfileError(f"{self._source}: [{table}] {key} must be a string")
        return value

    def strings(self, table: str, key: str, *, allow_empty: bool = False) -> list[str]:
        value = self._value(table, key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value) or (
                not value and not allow_empty):
            raise ProfileError(f"{self._source}: [{table}] {key} must be a list of non-empty strings")
        return value

    def number(self, table: str, key: str) -> float:
        value = self._value(table, key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ProfileError(f"{self._source}: [{table}] {key} must be a number")
        return float(value)


def _check_template(template: str, allowed: frozenset[str], source: str, name: str) -> None:
    try:
        names = {field for _, field, _, _ in string.Formatter().parse(template) if field is not None}
    except ValueError as exc:
        raise ProfileError(f"{source}: template {name!r} is malformed: {exc}") from exc
    bad = sorted(names - allowed - {"business_name"})
    if bad:
        raise ProfileError(f"{source}: template {name!r} uses {bad}; it may use {sorted(allowed | {'business_name'})}")


def _phone(value: str, source: str, key: str) -> str:
    number = normalise_phone(value)
    if number is None:
        raise ProfileError(f"{source}: {key}: {value!r} is not a phone number")
    return number


__all__ = ["FIELDS", "LINE_NAMES", "TOOLS", "AgentProfile", "ProfileError", "load_profile", "parse_profile"]
