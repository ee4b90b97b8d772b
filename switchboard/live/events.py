"""The live events, each defined once: a frozen dataclass per event and its JSON shape on ``WS /api/live``.

Publishers (the call session, live extraction, the Twilio status route) build these; the hub stamps each with
``call_sid``, ``seq`` (per call) and ``id`` (across calls) and hands subscribers the JSON object
(:func:`as_json` plus the stamp). README's table of live events is checked against :data:`EVENT_TYPES` by a test,
so the documentation and the code cannot drift apart. Media times are integer ms since the stream began.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

WireEvent = dict[str, Any]
"""One event as a subscriber receives it: the event's JSON plus ``call_sid``, ``seq`` and ``id``."""


@dataclass(frozen=True, slots=True)
class CallStarted:
    type: ClassVar[str] = "call.started"
    stream_sid: str
    tracks: tuple[str, ...]
    started_at: str
    """ISO 8601, UTC."""
    part: int = 1
    """Which of the call's streams (a transfer or a hand-over starts another); media times are on the call's one
    timeline, this stream's ``offset_ms`` added."""
    offset_ms: int = 0


@dataclass(frozen=True, slots=True)
class TranscriptUpdate:
    """A partial (delivered live, not retained) or final transcript of one track."""

    type: ClassVar[str] = "transcript"
    track: str
    speaker: str
    text: str
    is_final: bool
    start_ms: int
    end_ms: int
    provider: str
    confidence: float | None


@dataclass(frozen=True, slots=True)
class ProviderSwitchUpdate:
    """A track's transcription moved to the next provider (JSON keys ``from``/``to``)."""

    type: ClassVar[str] = "provider.switched"
    track: str
    from_provider: str
    to_provider: str
    reason: str
    media_ms: int


@dataclass(frozen=True, slots=True)
class TranscriberError:
    type: ClassVar[str] = "transcriber.error"
    track: str
    error: str


@dataclass(frozen=True, slots=True)
class ExtractionUpdate:
    """The lead fields extracted so far during the call (a preview: the stored extraction is a post-call job)."""

    type: ClassVar[str] = "extraction"
    fields: Mapping[str, Any] = field(default_factory=dict)
    final: bool = False


@dataclass(frozen=True, slots=True)
class CallStatus:
    type: ClassVar[str] = "call.status"
    status: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    """A stream of the call is over and its transcript is complete in the store (another stream may follow: a
    transfer's, an operator's missed ``<Dial>`` handing over to the agent)."""

    type: ClassVar[str] = "call.ended"
    reason: str
    media_ms: int
    """The call's timeline so far (this stream's offset + its length)."""
    ended_at: str
    recording_key: str
    stream_sid: str = ""
    part: int = 1


@dataclass(frozen=True, slots=True)
class AgentTurnUpdate:
    """An agent turn ``started`` (first audio sent; ``latency_ms`` from the end of the caller's speech, media
    time), was ``interrupted`` (barge-in: ``text`` is what the caller heard) or ``finished``."""

    type: ClassVar[str] = "agent.turn"
    reply_id: int
    status: str
    text: str
    latency_ms: int | None
    media_ms: int


@dataclass(frozen=True, slots=True)
class Resync:
    """Made by the hub for a subscriber whose resume point is older than what is retained."""

    type: ClassVar[str] = "resync"
    reason: str
    first: int
    """The oldest number still retained (``seq`` or ``id``, as the subscription counts)."""


LiveEvent = (CallStarted | TranscriptUpdate | ProviderSwitchUpdate | TranscriberError | ExtractionUpdate
             | CallStatus | CallEnded | AgentTurnUpdate)
"""What a publisher may publish (``Resync`` is the hub's own)."""

EVENT_TYPES: tuple[type[LiveEvent] | type[Resync], ...] = (
    CallStarted, TranscriptUpdate, ProviderSwitchUpdate, TranscriberError, ExtractionUpdate, CallStatus, CallEnded,
    AgentTurnUpdate, Resync)
_RENAMED = {"from_provider": "from", "to_provider": "to"}


def as_json(event: LiveEvent | Resync) -> WireEvent:
    """The event's JSON object (before the hub's stamp); an extraction's fields are inlined."""
    out: WireEvent = {"type": event.type}
    for f in dataclasses.fields(event):
        value = getattr(event, f.name)
        if isinstance(event, ExtractionUpdate) and f.name == "fields":
            out.update(value)
        else:
            out[_RENAMED.get(f.name, f.name)] = list(value) if isinstance(value, tuple) else value
    return out


def json_keys(kind: type[LiveEvent] | type[Resync]) -> list[str]:
    """The keys an event of ``kind`` carries besides ``type`` (an extraction's lead fields are not listed)."""
    return [_RENAMED.get(f.name, f.name) for f in dataclasses.fields(kind) if f.name != "fields"]


__all__ = [
    "EVENT_TYPES",
    "AgentTurnUpdate",
    "CallEnded",
    "CallStarted",
    "CallStatus",
    "ExtractionUpdate",
    "LiveEvent",
    "ProviderSwitchUpdate",
    "Resync",
    "TranscriberError",
    "TranscriptUpdate",
    "WireEvent",
    "as_json",
    "json_keys",
]
