"""The set of live calls on this instance, so shutdown can drain them and duplicates are refused."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

from switchboard.call.errors import DuplicateCall


class LiveCall(Protocol):
    """What the API may ask of a live call."""

    def live_stats(self) -> dict[str, Any]: ...


class CallRegistry:
    def __init__(self) -> None:
        self._live: dict[str, LiveCall] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self._accepting = True

    @asynccontextmanager
    async def hold(self, call_sid: str, session: LiveCall) -> AsyncIterator[None]:
        if not self._accepting:
            raise DuplicateCall("server is shutting down")
        if call_sid in self._live:
            raise DuplicateCall(f"call {call_sid} already has a live media stream")
        self._live[call_sid] = session
        self._idle.clear()
        try:
            yield
        finally:
            del self._live[call_sid]
            if not self._live:
                self._idle.set()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, call_sid: object) -> bool:
        return call_sid in self._live

    def get(self, call_sid: str) -> LiveCall | None:
        return self._live.get(call_sid)

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
