"""The bounded queue between a voice's producer task and the call that iterates the stream.

Events are tagged with the generation they were made for; ``cancel()`` (barge-in) starts a new generation and
empties the queue, and anything a producer still puts for the old generation is dropped on arrival. So the
producer never needs to know a barge-in happened to stay correct, only to stop wasting work. Overflow policy:
the producer waits (back-pressure onto the provider socket), the consumer never loses an event. ``end(exc)``
finishes the iterator after the queued events: with ``exc`` it raises it, without it stops.
"""

from __future__ import annotations

import asyncio
from collections import deque

from switchboard.tts.base import VoiceEvent

_OPEN = object()


class Outbox:
    def __init__(self, maxsize: int = 256) -> None:
        self.generation = 0
        self._items: deque[VoiceEvent] = deque()
        self._maxsize = maxsize
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._end: object = _OPEN

    def __len__(self) -> int:
        return len(self._items)

    @property
    def ended(self) -> bool:
        return self._end is not _OPEN

    async def put(self, generation: int, event: VoiceEvent) -> None:
        """Queue ``event`` unless its generation is over; waits while the queue is full."""
        while len(self._items) >= self._maxsize and generation == self.generation and not self.ended:
            self._writable.clear()
            await self._writable.wait()
        if generation == self.generation and not self.ended:
            self._items.append(event)
            self._readable.set()

    def put_nowait(self, generation: int, event: VoiceEvent) -> None:
        """Queue ``event`` without waiting, past the bound if need be: for a short run of events already in
        memory (a cached prompt), never for a provider's stream."""
        if generation == self.generation and not self.ended:
            self._items.append(event)
            self._readable.set()

    def cancel(self) -> int:
        """Start a new generation: drop what is queued; returns the new generation."""
        self.generation += 1
        self._items.clear()
        self._writable.set()
        return self.generation

    def end(self, exc: BaseException | None = None) -> None:
        """No more events; the iterator raises ``exc`` (or stops) once the queue is drained. First call wins."""
        if self._end is _OPEN:
            self._end = exc
        self._readable.set()
        self._writable.set()

    async def get(self) -> VoiceEvent:
        while not self._items:
            if self._end is not _OPEN:
                if isinstance(self._end, BaseException):
                    raise self._end
                raise StopAsyncIteration
            self._readable.clear()
            await self._readable.wait()
        event = self._items.popleft()
        self._writable.set()
        return event


__all__ = ["Outbox"]
