"""What a dialog is: given the conversation so far, the next reply as a stream of words and decisions.

Two implement it: :class:`~switchboard.agent.openai_dialog.OpenAIDialog` (the model with tools) and
:class:`~switchboard.agent.intake.OfflineDialog` (the deterministic intake script);
:class:`~switchboard.agent.fallback_dialog.FallbackDialog` puts the second behind the first. The call turns
:class:`Say` into :class:`~switchboard.agent.events.ReplyText` and the voice, :class:`~.tools.RequestEnd` /
:class:`~.tools.RequestTransfer` into the ``then`` of :class:`~switchboard.agent.events.ReplyDone`, and
:class:`~.tools.RaiseAlert` into the emergency SMS to the profile's recipients.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from switchboard.agent.events import After
from switchboard.agent.tools import Decision, RequestEnd, RequestTransfer
from switchboard.agent.usage import ModelUsage
from switchboard.extract.schema import CallFacts, Transcript


@dataclass(frozen=True, slots=True)
class Say:
    """More words of the reply, in order."""

    text: str


DialogOutput = Say | Decision


@dataclass(frozen=True, slots=True)
class DialogContext:
    """What a reply is based on: the conversation as heard (its last turn is the caller's), the facts recorded so
    far and whether the emergency alert has gone already."""

    transcript: Transcript
    facts: CallFacts | None = None
    alerted: bool = False


@dataclass
class DialogStats:
    """Per call: where replies came from and what the model used."""

    model_replies: int = 0
    offline_replies: int = 0
    fallbacks: list[str] = field(default_factory=list)
    usage: list[ModelUsage] = field(default_factory=list)
    rejected_tools: list[str] = field(default_factory=list)


class Dialog(Protocol):
    name: str

    def reply(self, context: DialogContext) -> AsyncGenerator[DialogOutput, None]:
        """The next reply (an async generator: the caller closes it to cancel); raises :class:`DialogError`
        when it cannot give one."""
        ...


class DialogError(Exception):
    """The dialog failed; ``reason`` is a short label (``timeout``, ``auth``, ``status_503``, ``dropped``...)."""

    def __init__(self, reason: str, message: str = "") -> None:
        super().__init__(f"{reason}: {message}" if message else reason)
        self.reason = reason


def then_of(outputs: Iterable[DialogOutput]) -> After:
    """What follows the reply once heard: a transfer wins over an end, either over listening on."""
    kinds = {type(o) for o in outputs}
    return "transfer" if RequestTransfer in kinds else "end" if RequestEnd in kinds else "listen"


__all__ = ["Dialog", "DialogContext", "DialogError", "DialogOutput", "DialogStats", "Say", "then_of"]
