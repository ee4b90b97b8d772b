"""What the turn-taking core takes in (events) and gives back (actions); all frozen values, no behaviour.

The call feeds :class:`~switchboard.agent.turns.TurnTaker` these events with the current time and carries out the
actions it returns. Times are integer milliseconds on one monotonic clock chosen by the caller of the core (the
call uses media time); the core never reads a clock itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

After = Literal["listen", "end", "transfer"]
"""What follows an agent turn once the caller has heard all of it."""


# -- events in ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallStarted:
    """The stream is up: the core answers with the greeting."""


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    """The caller track's VAD heard speech start. ``level_db`` is its level in dBFS when the detector measures it;
    it lets loud speech interrupt the agent before any words are recognised (see :mod:`.barge_in`)."""

    level_db: float | None = None


@dataclass(frozen=True, slots=True)
class SpeechStopped:
    """The caller track's VAD heard speech end."""


@dataclass(frozen=True, slots=True)
class Heard:
    """A transcript of the caller track: ``final`` results replace the interim text before them."""

    text: str
    final: bool


@dataclass(frozen=True, slots=True)
class Keypad:
    """One DTMF key (``0``-``9``, ``*``, ``#``)."""

    digit: str


@dataclass(frozen=True, slots=True)
class ReplyText:
    """More text of reply ``reply_id`` from the dialog (appended to what came before)."""

    reply_id: int
    text: str


@dataclass(frozen=True, slots=True)
class ReplyDone:
    """The dialog has produced all of reply ``reply_id``; ``then`` says what happens once it has been heard."""

    reply_id: int
    then: After = "listen"


@dataclass(frozen=True, slots=True)
class AudioQueued:
    """The call sent ``duration_ms`` of TTS audio for ``reply_id`` to Twilio. The audio sent so far covers the
    reply's text up to character ``chars`` (from the TTS character alignment). ``level_db`` is the chunk's level
    in dBFS, from which the core expects the level of its own echo."""

    reply_id: int
    chars: int
    duration_ms: int
    level_db: float | None = None


@dataclass(frozen=True, slots=True)
class AudioDone:
    """The voice has no more audio for ``reply_id`` (sent after :class:`ReplyDone` and the TTS flush)."""

    reply_id: int


@dataclass(frozen=True, slots=True)
class MarkPlayed:
    """Twilio echoed mark ``name``: the caller heard the audio sent before it (or it was cleared)."""

    name: str


@dataclass(frozen=True, slots=True)
class HungUp:
    """The caller hung up or the stream stopped."""


Event = (CallStarted | SpeechStarted | SpeechStopped | Heard | Keypad | ReplyText | ReplyDone | AudioQueued
         | AudioDone | MarkPlayed | HungUp)


# -- actions out --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Speak:
    """Say this fixed text (greeting, re-prompt, goodbye) as reply ``reply_id``; its audio comes back as
    :class:`AudioQueued` and :class:`AudioDone` like a generated reply's. No :class:`ReplyDone` is needed."""

    reply_id: int
    text: str


@dataclass(frozen=True, slots=True)
class StartReply:
    """Ask the dialog for reply ``reply_id`` to the conversation so far (the caller's turn is its last line)."""

    reply_id: int
    caller_text: str


@dataclass(frozen=True, slots=True)
class CancelReply:
    """Stop generating and synthesising reply ``reply_id`` (the model request and the TTS turn)."""

    reply_id: int


@dataclass(frozen=True, slots=True)
class SendMark:
    """Send a Twilio ``mark`` with this name right after the audio just queued."""

    name: str


@dataclass(frozen=True, slots=True)
class SendClear:
    """Send a Twilio ``clear``: drop the audio still queued for playback (barge-in)."""


@dataclass(frozen=True, slots=True)
class EndCall:
    """Hang up: the goodbye has been heard."""

    reason: str


@dataclass(frozen=True, slots=True)
class Transfer:
    """Redirect the call to the configured operator (never a number the caller or model named)."""

    reason: str


@dataclass(frozen=True, slots=True)
class TurnUpdate:
    """For live events and latency figures: an agent turn ``started`` (first audio sent), was ``interrupted`` or
    ``finished``. ``heard`` is the part the caller heard; ``latency_ms`` is, on ``started``, the time from the end
    of the caller's speech (or the call start) to the first audio sent."""

    reply_id: int
    status: Literal["started", "interrupted", "finished"]
    heard: str = ""
    latency_ms: int | None = None


Action = Speak | StartReply | CancelReply | SendMark | SendClear | EndCall | Transfer | TurnUpdate

__all__ = [
    "Action", "After", "AudioDone", "AudioQueued", "CallStarted", "CancelReply", "EndCall", "Event", "Heard",
    "HungUp", "Keypad", "MarkPlayed", "ReplyDone", "ReplyText", "SendClear", "SendMark", "Speak", "SpeechStarted",
    "SpeechStopped", "StartReply", "Transfer", "TurnUpdate",
]
