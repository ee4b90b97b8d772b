"""``asyncio.timeout`` with its deadline on another clock, such as the loop-lag monitor's effective time.

A provider's reply that sits unread in our socket buffer while our own event loop is starved is not the
provider's fault. Timeouts that blame a provider (WisprFlow's auth ack, its final after commit) therefore run on
:meth:`~switchboard.loop_lag.LoopLagMonitor.effective_time`, which stops while the loop is starved. The loop can
only wake us on its own clock, so the wake-up is a check: if the other clock has not reached the deadline yet (it
lost time to starvation), the check is re-armed for the remainder. The cancellation and the ``TimeoutError`` are
``asyncio.Timeout``'s own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from types import TracebackType


class ClockTimeout:
    """``async with ClockTimeout(clock, when) as t:`` raises ``TimeoutError`` once ``clock() >= when``.

    ``when`` None means no deadline (set one later with :meth:`reschedule`); ``clock`` None is the loop's own
    clock, which makes this exactly ``asyncio.timeout_at``.
    """

    def __init__(self, clock: Callable[[], float] | None, when: float | None) -> None:
        self._clock = clock
        self._when = when
        self._inner = asyncio.timeout(None)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._check_handle: asyncio.TimerHandle | None = None

    async def __aenter__(self) -> ClockTimeout:
        self._loop = asyncio.get_running_loop()
        await self._inner.__aenter__()
        self.reschedule(self._when)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._disarm()
        await self._inner.__aexit__(exc_type, exc, tb)

    def when(self) -> float | None:
        return self._when

    def expired(self) -> bool:
        return self._inner.expired()

    def reschedule(self, when: float | None) -> None:
        """Move the deadline (on this timeout's clock); None removes it."""
        self._when = when
        self._disarm()
        if self._clock is None or when is None:
            self._inner.reschedule(when)
        else:
            self._check()

    def _check(self) -> None:
        self._check_handle = None
        assert self._loop is not None and self._clock is not None and self._when is not None
        remaining = self._when - self._clock()
        if remaining <= 0:
            self._inner.reschedule(self._loop.time())  # fires at once, through asyncio.Timeout
        else:
            self._check_handle = self._loop.call_later(remaining, self._check)

    def _disarm(self) -> None:
        if self._check_handle is not None:
            self._check_handle.cancel()
            self._check_handle = None


__all__ = ["ClockTimeout"]
