"""What a call needs from the rest of the server, each as the few methods it uses (fakes in ``tests/fakes.py``).

    CallStore       the call row: created, its stream started, read, ended (``PgStore`` in production)
    SegmentSink     final transcript segments, batched and durable (``SegmentWriter``)
    LivePublisher   live events for dashboards (``InMemoryHub``)
    AfterCall       records the post-call jobs once the call row is ended (``PostCallHandlers``)
    EndSpool        keeps the end of a call on disk while the database cannot take it (``CallEndSpool``)
    Recorder        the call's stereo recording (``StereoRecorder``), made by a ``RecorderFactory`` from its path
    Transcriber     opens one transcript stream per track (``switchboard.transcribe.base``)

A second audio direction (the agent's voice on the outbound track) adds a source of media, not a port: its audio
enters the same per-track pipeline the session keeps for Twilio's outbound track.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from switchboard.live import LivePublisher
from switchboard.store.base import CallMode, CallRecord, Segment, StreamPlacement

if TYPE_CHECKING:
    from switchboard.jobs.end_spool import CallEnd


class CallStore(Protocol):
    """The call row; every method may raise :class:`~switchboard.store.errors.StoreError`."""

    async def create_call(self, call_sid: str, *, account_sid: str | None, from_number: str | None,
                          to_number: str | None, direction: str | None, mode: CallMode | None, status: str | None,
                          at: datetime) -> None: ...

    async def stream_started(self, call_sid: str, *, stream_sid: str, at: datetime, instance_id: str | None = None,
                             recording_key: str | None = None, after_ms: int = 0) -> StreamPlacement: ...

    async def get_call(self, call_sid: str) -> CallRecord | None: ...

    async def end_call(self, call_sid: str, *, at: datetime, reason: str, media_ms: int, recording_key: str | None,
                       recording_status: str | None, providers: Sequence[str], stats: Mapping[str, Any],
                       recording_incomplete: bool = False, part: int = 1) -> None: ...

    async def record_usage(self, call_sid: str, *, usage: Mapping[str, Any],
                           turn_latencies_ms: Sequence[int]) -> None: ...


class SegmentSink(Protocol):
    def add(self, segment: Segment) -> None:
        """Queue a final segment; never waits."""
        ...

    async def wait_flushed(self) -> bool:
        """Until everything queued so far is stored or spooled; False if some is still queued at the deadline."""
        ...


class AfterCall(Protocol):
    async def call_ended(self, call_sid: str, *, recording_path: Path | None, recording_key: str | None,
                         part: int = 1) -> None: ...


class EndSpool(Protocol):
    async def put(self, end: CallEnd) -> bool:
        """Keep the end of a call on disk (durably, before returning) until the database takes it; False (logged)
        if the disk refused it too."""


class Recorder(Protocol):
    def write(self, track: str, timestamp_ms: int, ulaw: bytes, offset: int = 0) -> None: ...

    def close(self) -> int:
        """Finish the file; returns the recording's length in ms."""
        ...

    def stats(self) -> dict[str, object]: ...

    @property
    def incomplete(self) -> bool:
        """A write failed (full disk, I/O error): the file holds only what reached the disk."""
        ...


RecorderFactory = Callable[[Path], Recorder]

__all__ = ["AfterCall", "CallStore", "LivePublisher", "Recorder", "RecorderFactory", "SegmentSink"]
