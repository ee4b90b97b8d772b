"""The typed events of a Twilio Media Stream and the parser's states and stats (no parsing here: that is
:mod:`switchboard.twilio.media_stream`). Message shapes: protocols/twilio.md §e."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from typing import Final, Literal

Track = Literal["inbound", "outbound"]


class StreamState(Enum):
    """Where the stream is; ``_TRANSITIONS`` holds the legal moves."""

    AWAITING_CONNECTED = "awaiting connected"
    AWAITING_START = "awaiting start"
    STREAMING = "streaming"
    STOPPED = "stopped"
    FAILED = "failed"  # a ProtocolViolation was raised; the socket must close


class SkipReason(StrEnum):
    """Why a message was dropped without an event (the keys of ``StreamStats.skipped``)."""

    UNKNOWN_EVENT = "unknown_event"
    AFTER_STOP = "after_stop"
    NON_INCREASING_SEQUENCE = "non_increasing_sequence"
    EMPTY_PAYLOAD = "empty_payload"


@dataclass(frozen=True, slots=True)
class MediaFormat:
    encoding: str
    sample_rate: int
    channels: int


SUPPORTED_FORMAT: Final = MediaFormat("audio/x-mulaw", 8000, 1)


@dataclass(frozen=True, slots=True)
class Connected:
    protocol: str
    version: str


@dataclass(frozen=True, slots=True)
class Start:
    stream_sid: str
    call_sid: str
    account_sid: str
    tracks: tuple[Track, ...]
    media_format: MediaFormat
    custom_parameters: Mapping[str, str] = field(hash=False)
    sequence: int


@dataclass(frozen=True, slots=True)
class Media:
    track: Track
    chunk: int  # per-track counter from 1
    timestamp_ms: int  # ms since stream start: the authoritative media position
    payload: bytes  # raw μ-law 8 kHz mono, no header
    sequence: int


@dataclass(frozen=True, slots=True)
class Dtmf:
    track: Track
    digit: str
    sequence: int


@dataclass(frozen=True, slots=True)
class Mark:
    name: str
    sequence: int


@dataclass(frozen=True, slots=True)
class Stop:
    call_sid: str
    sequence: int


StreamEvent = Connected | Start | Media | Dtmf | Mark | Stop


@dataclass(frozen=True, slots=True)
class StreamStats:
    """A snapshot of what the stream has seen (its dicts are copies); counts only grow."""

    state: StreamState
    messages: int  # every frame given to receive(), skipped ones included
    media: dict[str, int]  # media events per track
    media_bytes: dict[str, int]  # decoded μ-law bytes per track
    skipped: dict[str, int]  # by SkipReason
    sequence_gaps: int  # jumps in sequenceNumber
    lost_messages: int  # messages those jumps skipped over
    missing_connected: bool  # the stream began with start

    def as_dict(self) -> dict[str, object]:
        """JSON-ready, for logs and the call record."""
        return {name: getattr(self, name) for name in self.__slots__} | {"state": self.state.value}


__all__ = [
    "SUPPORTED_FORMAT",
    "Connected",
    "Dtmf",
    "Mark",
    "Media",
    "MediaFormat",
    "SkipReason",
    "Start",
    "Stop",
    "StreamEvent",
    "StreamState",
    "StreamStats",
    "Track",
]
