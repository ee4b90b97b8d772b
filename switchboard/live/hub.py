"""In-process live event hub: ordered per-call events, snapshot + resume, bounded subscribers.

Every event gets two numbers: ``seq``, its position in its call (1, 2, …), and ``id``, its position in the hub (all
calls). A subscriber to one call resumes with ``after=<seq>``; a subscriber to every call with ``after=<id>``. This is
the shape of a Redis Stream (entry IDs, XREAD from an ID), so a broker-backed hub can replace this one behind the
same :class:`TranscriptHub` protocol when Switchboard runs as several instances.

Partial transcripts are delivered live but not retained: they are superseded by the next partial or the final, so
a resumed subscriber gets every final and the partials that follow. Publishing never waits: the media path calls
:meth:`publish` synchronously. A subscriber whose bounded queue fills up is closed with :class:`Overflow`
carrying the last number it was given, so it can resume without a gap.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from switchboard.live.errors import Overflow
from switchboard.live.events import CallEnded, CallStarted, LiveEvent, Resync, TranscriptUpdate, WireEvent, as_json


class LivePublisher(Protocol):
    """Where a publisher sends live events; ``publish`` never waits."""

    def publish(self, call_sid: str, event: LiveEvent) -> object: ...


class TranscriptHub(LivePublisher, Protocol):
    """The hub: ``publish`` returns the event as subscribers receive it; ``subscribe`` reads them."""

    def publish(self, call_sid: str, event: LiveEvent) -> WireEvent: ...

    def subscribe(self, call_sid: str | None, after: int = 0) -> Subscription: ...


@dataclass(slots=True)
class _CallLog:
    events: deque[WireEvent]
    next_seq: int = 1
    live: bool = False
    """Between ``call.started`` and ``call.ended``: never evicted. Every other call (ended, or known only from
    status callbacks) is *idle* and may be forgotten beyond the retention bound, oldest idle first."""


@dataclass(eq=False)
class Subscription:
    """An async iterator of events: the retained backlog after ``after``, then live ones."""

    call_sid: str | None
    maxsize: int
    _backlog: deque[WireEvent] = field(default_factory=deque)
    """Retained events the subscriber asked for: bounded by retention, not by the live queue."""
    _queue: deque[WireEvent] = field(default_factory=deque)
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _overflowed: bool = False
    _closed: bool = False
    last: int = 0

    def offer(self, event: WireEvent) -> None:
        if self._closed:
            return
        if len(self._queue) >= self.maxsize:
            self._overflowed = True
            self._closed = True
            self._queue.clear()
        else:
            self._queue.append(event)
        self._wake.set()

    def close(self) -> None:
        self._closed = True
        self._wake.set()

    def __aiter__(self) -> AsyncIterator[WireEvent]:
        return self

    async def __anext__(self) -> WireEvent:
        if self._backlog:
            return self._take(self._backlog.popleft())
        while not self._queue:
            if self._overflowed:
                raise Overflow(self.last)
            if self._closed:
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        return self._take(self._queue.popleft())

    def _take(self, event: WireEvent) -> WireEvent:
        self.last = event["seq"] if self.call_sid is not None else event["id"]
        return event

    def qsize(self) -> int:
        return len(self._backlog) + len(self._queue)


class InMemoryHub:
    """Single-process :class:`TranscriptHub` with bounded retention."""

    def __init__(self, *, queue_size: int = 1000, per_call: int = 5000, retain_calls: int = 200,
                 global_backlog: int = 20_000) -> None:
        self._queue_size = queue_size
        self._per_call = per_call
        self._retain_calls = retain_calls
        self._calls: dict[str, _CallLog] = {}
        self._idle: OrderedDict[str, None] = OrderedDict()  # calls not live, in the order they became idle
        self._all: deque[WireEvent] = deque(maxlen=global_backlog)
        self._ids = itertools.count(1)
        self._last_id = 0
        self._subs: dict[str | None, set[Subscription]] = {}

    def publish(self, call_sid: str, event: LiveEvent) -> WireEvent:
        """Stamp ``event`` with ``call_sid``, ``seq`` and ``id``, retain it (unless a partial) and offer it to
        every subscriber of the call and of all calls; returns the stamped JSON object."""
        log = self._calls.get(call_sid)
        if log is None:
            self._evict()
            log = self._calls[call_sid] = _CallLog(deque(maxlen=self._per_call))
            self._idle[call_sid] = None
        stamped = {**as_json(event), "call_sid": call_sid, "seq": log.next_seq, "id": next(self._ids)}
        self._last_id = stamped["id"]
        log.next_seq += 1
        if not (isinstance(event, TranscriptUpdate) and not event.is_final):  # partials are superseded: not kept
            log.events.append(stamped)
            self._all.append(stamped)
        if isinstance(event, CallStarted):
            log.live = True
            self._idle.pop(call_sid, None)
        elif isinstance(event, CallEnded):
            log.live = False
            self._idle[call_sid] = None
            self._idle.move_to_end(call_sid)
        for key in (call_sid, None):
            for sub in self._subs.get(key, ()):
                sub.offer(stamped)
        return stamped

    def subscribe(self, call_sid: str | None, after: int = 0) -> Subscription:
        sub = Subscription(call_sid, self._queue_size)
        if call_sid is None:
            backlog: list[WireEvent] = [e for e in self._all if e["id"] > after]
        else:
            log = self._calls.get(call_sid)
            backlog = [e for e in log.events if e["seq"] > after] if log else []
        sub.last = after
        key = "id" if call_sid is None else "seq"
        if backlog and backlog[0][key] > after + 1 and after > 0:
            resync = Resync("events before this one are no longer retained", backlog[0][key])
            sub._backlog.append({**as_json(resync), key: after})
        sub._backlog.extend(backlog)
        self._subs.setdefault(call_sid, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub.close()
        subs = self._subs.get(sub.call_sid)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.call_sid]

    def last_seq(self, call_sid: str) -> int:
        log = self._calls.get(call_sid)
        return log.next_seq - 1 if log else 0

    def last_id(self) -> int:
        """The ``id`` of the latest event published (0 before any): ``after`` for a subscriber to every call
        that wants only what happens from now on."""
        return self._last_id

    def close(self) -> None:
        """Close every subscription (server shutdown): iterators end after their backlog."""
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.close()
        self._subs.clear()

    def stats(self) -> dict[str, int]:
        return {
            "calls": len(self._calls),
            "subscribers": sum(len(s) for s in self._subs.values()),
            "backlog": len(self._all),
        }

    def _evict(self) -> None:
        """Make room for one more call: forget the oldest idle calls beyond the retention bound, O(1) each (live
        calls are never evicted; there are at most as many as the instance admits)."""
        while len(self._calls) >= self._retain_calls and self._idle:
            sid, _ = self._idle.popitem(last=False)
            del self._calls[sid]
