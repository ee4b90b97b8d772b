"""In-memory fakes of the call's ports (``switchboard.call.ports``): a call's whole lifecycle runs without a socket,
a database, a disk or a model, in milliseconds. Each fake records what it was asked, for the tests to assert on."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from audio import SAMPLES_PER_MS
from switchboard.live.events import LiveEvent, WireEvent, as_json
from switchboard.store.base import CallMode, CallRecord, Segment, StreamPlacement
from switchboard.store.errors import StoreUnavailable


@dataclass
class MemoryStore:
    """The call rows; ``down`` makes every write raise :class:`StoreUnavailable` (a database outage)."""

    calls: dict[str, dict[str, Any]] = field(default_factory=dict)
    writes: list[str] = field(default_factory=list)
    down: bool = False

    def _write(self, what: str, call_sid: str) -> dict[str, Any]:
        if self.down:
            raise StoreUnavailable(f"{what}: database is down")
        self.writes.append(what)
        return self.calls.setdefault(call_sid, {})

    async def create_call(self, call_sid: str, *, account_sid: str | None, from_number: str | None,
                          to_number: str | None, direction: str | None, mode: CallMode | None, status: str | None,
                          at: datetime) -> None:
        row = self._write("create_call", call_sid)
        row.setdefault("created_at", at)
        if status is not None:
            row["status"] = status

    async def stream_started(self, call_sid: str, *, stream_sid: str, at: datetime, instance_id: str | None = None,
                             recording_key: str | None = None, after_ms: int = 0) -> StreamPlacement:
        """Parts counted per call; each placed after ``after_ms`` and the ends of the parts before it."""
        row = self._write("stream_started", call_sid)
        row.update(stream_sid=stream_sid, instance_id=instance_id, recording_key=recording_key)
        parts: list[dict[str, Any]] = row.setdefault("parts", [])
        end = max((p["offset_ms"] + p.get("media_ms", 0) for p in parts), default=0)
        parts.append({"stream_sid": stream_sid, "offset_ms": max(end, after_ms)})
        row.pop("ended_at", None)
        return StreamPlacement(len(parts), parts[-1]["offset_ms"])

    async def get_call(self, call_sid: str) -> CallRecord | None:
        """No webhook ran before these calls: the row has no caller ID (a live extraction offers none)."""
        if self.down:
            raise StoreUnavailable("get_call: database is down")
        return None

    async def end_call(self, call_sid: str, *, at: datetime, reason: str, media_ms: int, recording_key: str | None,
                       recording_status: str | None, providers: Sequence[str], stats: Mapping[str, Any],
                       recording_incomplete: bool = False, part: int = 1) -> None:
        row = self._write("end_call", call_sid)
        parts = row.get("parts", [])
        if part <= len(parts):
            parts[part - 1].setdefault("media_ms", media_ms)
        if "ended_at" not in row and part >= len(parts):  # the first end of the latest part wins, as in PgStore
            row.update(ended_at=at, end_reason=reason, media_ms=media_ms, providers=list(providers),
                       stats=dict(stats), recording_incomplete=recording_incomplete)

    async def record_usage(self, call_sid: str, *, usage: Mapping[str, Any], turn_latencies_ms: Sequence[int]) -> None:
        self._write("record_usage", call_sid).update(usage=dict(usage), turn_latencies_ms=list(turn_latencies_ms))


@dataclass
class MemoryWriter:
    segments: list[Segment] = field(default_factory=list)

    def add(self, segment: Segment) -> None:
        self.segments.append(segment)

    async def wait_flushed(self) -> bool:
        return True


@dataclass
class RecordingHub:
    """A live publisher that keeps every event, typed."""

    events: list[LiveEvent] = field(default_factory=list)

    def publish(self, call_sid: str, event: LiveEvent) -> WireEvent:
        self.events.append(event)
        return {**as_json(event), "call_sid": call_sid}

    def of(self, kind: type[Any]) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]


@dataclass
class MemoryRecorder:
    """The recording as per-track spans of real (not gap-filled) audio; its length is the furthest one."""

    path: Path
    spans: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    closed: bool = False
    incomplete: bool = False

    def write(self, track: str, timestamp_ms: int, ulaw: bytes, offset: int = 0) -> None:
        assert not self.closed, "write after close"
        start = timestamp_ms * SAMPLES_PER_MS + offset
        self.spans.setdefault(track, []).append((start, start + len(ulaw)))

    def close(self) -> int:
        self.closed = True
        return self.media_ms

    @property
    def media_ms(self) -> int:
        ends = [end for spans in self.spans.values() for _, end in spans]
        return max(ends, default=0) // SAMPLES_PER_MS

    def stats(self) -> dict[str, object]:
        return {"media_ms": self.media_ms}


@dataclass
class Recorders:
    """The recorder factory: remembers every recorder it made."""

    made: list[MemoryRecorder] = field(default_factory=list)

    def __call__(self, path: Path) -> MemoryRecorder:
        self.made.append(MemoryRecorder(path))
        return self.made[-1]


@dataclass
class AfterCallLog:
    ended: list[tuple[str, str | None]] = field(default_factory=list)

    async def call_ended(self, call_sid: str, *, recording_path: Path | None, recording_key: str | None,
                         part: int = 1) -> None:
        self.ended.append((call_sid, recording_key))


@dataclass
class WallClock:
    """Wall time that moves only when told to (or by ``step`` per reading)."""

    now: datetime = field(default_factory=lambda: datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    step: timedelta = timedelta(seconds=1)

    def __call__(self) -> datetime:
        now, self.now = self.now, self.now + self.step
        return now
