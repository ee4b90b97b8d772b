"""The provider-neutral transcription seam: a ``Transcriber`` per provider, a ``TranscriptStream`` per track.

Audio goes in synchronously (``push`` never waits, so the media path never blocks on a recogniser) and
results come out as an async iterator of :class:`TranscriptEvent` (and :class:`ProviderSwitched` where a
failover composite moves a track). Times are media time, in milliseconds
since the stream began (taken from the ``pts_ms`` the caller pushes, i.e. Twilio timestamps), never
wall-clock time, so a replayed call gets the same timestamps as the live one. Local engines and cloud
providers implement the same two protocols, which lets a failover composite wrap any of them (see
:mod:`switchboard.transcribe.errors` for the error contract).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from audio.pcm import Pcm16, check_pcm
from switchboard.transcribe.errors import StreamClosedError


@dataclass(frozen=True, slots=True)
class TranscriptEvent:
    """One partial or final hypothesis for a stretch of one track's audio."""

    track: str
    text: str
    is_final: bool
    start_ms: int
    """Media time of the first sample of the recognised audio, ms since the stream began."""
    end_ms: int
    provider: str
    confidence: float | None = None
    """0..1 when the provider reports one; ``None`` for engines that do not (Moonshine)."""
    alternatives: tuple[str, ...] = ()
    """Other readings of the same audio, likeliest first (local Moonshine's beam); empty when there are none.
    Grammars may pick one that parses where ``text`` does not (a postcode, a number)."""


class SwitchReason(StrEnum):
    OPEN_ERROR = "open_error"
    STREAM_ERROR = "stream_error"
    EARLY_END = "early_end"
    STALL = "stall"
    MISSING_FINAL = "missing_final"


@dataclass(frozen=True, slots=True)
class ProviderSwitched:
    """A stream moved one track to another provider (only failover composites yield these), announced in order
    with the events: every event after it comes from ``to_provider`` or a later one."""

    track: str
    from_provider: str
    to_provider: str
    reason: SwitchReason
    media_ms: int
    """End of the audio pushed when the failure was declared."""
    replay_from_ms: int | None
    """First media ms replayed to ``to_provider``; ``None`` when nothing was buffered."""
    detail: str


StreamItem = TranscriptEvent | ProviderSwitched


@runtime_checkable
class TranscriptStream(Protocol):
    """Recognition of one track: push audio, iterate events.

    ``push(pcm, pts_ms)``: int16 mono at the opened rate; ``pts_ms`` is the media time of its first sample.
    Audio is expected contiguous (the jitter buffer fills gaps), but a jump in ``pts_ms`` is honoured for
    timestamps. ``end()``: no more audio; the iterator finishes once every final has been emitted. Items are
    :class:`TranscriptEvent`, and :class:`ProviderSwitched` from a stream that fails over.
    ``aclose()``: abandon the stream now, cancelling pending work and releasing resources; idempotent.
    """

    def push(self, pcm: Pcm16, pts_ms: int) -> None: ...

    def end(self) -> None: ...

    def __aiter__(self) -> TranscriptStream: ...

    async def __anext__(self) -> StreamItem: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Transcriber(Protocol):
    """A recognition provider; ``open`` may connect or load, and raises ``TranscriptionError`` if it
    cannot."""

    name: str

    async def open(self, track: str, sample_rate: int) -> TranscriptStream: ...


def check_push(pcm: object, *, ended: bool, track: str, provider: str) -> Pcm16:
    """The checks every ``push`` makes: the stream still takes audio, and ``pcm`` is 1-D int16."""
    if ended:
        raise StreamClosedError(f"push after end/aclose on track {track!r}", provider=provider)
    return check_pcm(pcm)


__all__ = [
    "Pcm16",
    "ProviderSwitched",
    "StreamItem",
    "SwitchReason",
    "Transcriber",
    "TranscriptEvent",
    "TranscriptStream",
    "check_push",
]
