"""Waker: how a stream's one iterating coroutine sleeps until sync code (a push, a callback) has news for it.

Every transcript stream is driven by the coroutine that iterates it: ``push``/``end`` and I/O callbacks are sync
and only wake it. A wake while nobody waits is not remembered: the iterator re-checks its state before each wait.
"""

from __future__ import annotations

import asyncio
from typing import Any


class Waker:
    """One waiter at a time; :meth:`wake` from sync code (or a timer, or a task finishing) releases it."""

    def __init__(self) -> None:
        self._future: asyncio.Future[None] | None = None

    async def wait(self, *, at: float | None = None, within: float | None = None,
                   task: asyncio.Future[Any] | None = None) -> None:
        """Until :meth:`wake`, loop time ``at``, ``within`` seconds, or ``task`` finishing, whichever is first."""
        if self._future is not None:
            raise RuntimeError("a TranscriptStream is iterated by one coroutine at a time")
        loop = asyncio.get_running_loop()
        self._future = loop.create_future()
        timers = [loop.call_at(at, self.wake)] if at is not None else []
        if within is not None:
            timers.append(loop.call_later(within, self.wake))
        if task is not None:
            task.add_done_callback(self._task_done)
        try:
            await self._future
        finally:
            self._future = None
            for timer in timers:
                timer.cancel()
            if task is not None:
                task.remove_done_callback(self._task_done)

    def wake(self) -> None:
        if self._future is not None and not self._future.done():
            self._future.set_result(None)

    def _task_done(self, _: asyncio.Future[Any]) -> None:
        self.wake()


__all__ = ["Waker"]
