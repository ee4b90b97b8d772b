"""The set of live calls on this instance, so shutdown can drain them and duplicates are refused.

A call may have several media streams one after another (a transfer's ``<Dial>`` forks a new one, an operator's
missed ``<Dial>`` hands over to the agent's ``<Connect><Stream>``): a new stream is taken as soon as the earlier one
has stopped receiving media, even while that one still finishes its transcript, and is placed after it on the
call's timeline. Two streams receiving media for one call at once are refused, as before.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from switchboard.call.errors import DuplicateCall
from switchboard.store.base import StreamPlacement

RECENT_CALLS = 1000
"""Ended calls whose last stream's place this instance remembers (for a next stream while the database is down)."""


class LiveCall(Protocol):
    """What the API and the registry may ask of a live call's stream."""

    def live_stats(self) -> dict[str, Any]: ...

    @property
    def media_stopped(self) -> bool: ...

    @property
    def placement(self) -> StreamPlacement: ...

    @property
    def timeline_end_ms(self) -> int: ...


class CallRegistry:
    def __init__(self) -> None:
        self._live: dict[str, list[LiveCall]] = {}
        self._count = 0
        self._recent: OrderedDict[str, StreamPlacement] = OrderedDict()
        """Per call: the last stream this instance held that has left (its part and its end on the timeline)."""
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True

    @asynccontextmanager
    async def hold(self, call_sid: str, session: LiveCall) -> AsyncIterator[None]:
        if not self._accepting:
            raise DuplicateCall("server is shutting down")
        streams = self._live.setdefault(call_sid, [])
        if any(not s.media_stopped for s in streams):
            raise DuplicateCall(f"call {call_sid} already has a live media stream")
        streams.append(session)
        self._count += 1
        self._idle.clear()
        try:
            yield
        finally:
            streams.remove(session)
            self._count -= 1
            if not streams:
                del self._live[call_sid]
            self._remember(call_sid, session)
            if not self._count:
                self._idle.set()

    def _remember(self, call_sid: str, session: LiveCall) -> None:
        last = self._recent.get(call_sid)
        if last is None or session.placement.part >= last.part:
            self._recent[call_sid] = StreamPlacement(session.placement.part, session.timeline_end_ms)
        self._recent.move_to_end(call_sid)
        while len(self._recent) > RECENT_CALLS:
            self._recent.popitem(last=False)

    def next_stream(self, call_sid: str) -> StreamPlacement:
        """Where a new stream of ``call_sid`` goes as far as this instance knows: after every stream of the call it
        holds or held (the store's placement also knows other instances')."""
        known = [StreamPlacement(s.placement.part, s.timeline_end_ms) for s in self._live.get(call_sid, ())]
        if call_sid in self._recent:
            known.append(self._recent[call_sid])
        if not known:
            return StreamPlacement()
        return StreamPlacement(max(k.part for k in known) + 1, max(k.offset_ms for k in known))

    def __len__(self) -> int:
        return self._count

    def __contains__(self, call_sid: object) -> bool:
        return call_sid in self._live

    def get(self, call_sid: str) -> LiveCall | None:
        """The call's newest stream on this instance."""
        streams = self._live.get(call_sid)
        return streams[-1] if streams else None

    async def drain(self, timeout_s: float) -> bool:
        """Stop accepting calls and wait for live ones to finish; False if some were still live at the timeout."""
        self._accepting = False
        return await self.wait_idle(timeout_s)

    async def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no call is live (still accepting new ones); False if some were live at the timeout."""
        try:
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True
