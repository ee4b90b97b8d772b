"""The glue between a dialog's outputs and the turn-taking core (sans-I/O), so the call's wiring stays thin.

For each :class:`~.events.StartReply` the call builds the context with :meth:`CallMemory.context`, iterates the
dialog's reply, passes every output to :meth:`ReplyAssembler.feed` (which returns the core events to hand to
:meth:`~.turns.TurnTaker.handle`, plus the words to send to the voice and the alerts to send now), and ends with
:meth:`ReplyAssembler.finish`. An alert is sent at most once per call, whoever asks for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.agent.dialog import DialogContext, DialogOutput, Say
from switchboard.agent.events import After, ReplyDone, ReplyText
from switchboard.agent.tools import RaiseAlert, RecordDetails, RequestEnd, RequestTransfer
from switchboard.extract.schema import CallFacts, Transcript


@dataclass
class CallMemory:
    """What the dialog side keeps across turns of one call."""

    facts: CallFacts | None = None
    alerts: list[RaiseAlert] = field(default_factory=list)

    @property
    def alerted(self) -> bool:
        return bool(self.alerts)

    def context(self, transcript: Transcript) -> DialogContext:
        return DialogContext(transcript, self.facts, self.alerted)


@dataclass(frozen=True, slots=True)
class Fed:
    """What one output asks of the call: core events (in order), and an alert to send now, if any."""

    events: tuple[ReplyText, ...] = ()
    alert: RaiseAlert | None = None


class ReplyAssembler:
    def __init__(self, reply_id: int, memory: CallMemory) -> None:
        self.reply_id, self._memory = reply_id, memory
        self._then: After = "listen"
        self._text: list[str] = []

    @property
    def text(self) -> str:
        return "".join(self._text)

    def feed(self, output: DialogOutput) -> Fed:
        match output:
            case Say(text=text) if text:
                # Sentences from separate outputs (the script's lines) need a space between them.
                piece = " " + text if self._text and not self._text[-1].endswith(" ") and not text.startswith(
                    " ") and self._joins_sentences(text) else text
                self._text.append(piece)
                return Fed((ReplyText(self.reply_id, piece),))
            case RecordDetails(facts=facts):
                self._memory.facts = facts
            case RaiseAlert() if not self._memory.alerted:
                self._memory.alerts.append(output)
                return Fed(alert=output)
            case RequestTransfer():
                self._then = "transfer"
            case RequestEnd() if self._then != "transfer":
                self._then = "end"
        return Fed()

    def finish(self) -> ReplyDone:
        return ReplyDone(self.reply_id, self._then)

    def _joins_sentences(self, text: str) -> bool:
        return self._text[-1].rstrip().endswith((".", "?", "!")) and text[:1].isupper()


__all__ = ["CallMemory", "Fed", "ReplyAssembler"]
