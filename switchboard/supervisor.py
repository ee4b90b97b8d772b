"""``Supervisor``: owns the app's background tasks, restarts a crashed one with backoff, knows which are dead.

Without it a background task that raised (the segment spool on a full disk, the archive spool, the job worker on
a query error) took the whole lifespan down: the registry drained and refused every stream while ``/healthz``
still answered 200, so the orchestrator kept sending calls to a zombie. Now a crash is logged and the task is
run again after a backoff (``min_backoff_s`` doubling to ``max_backoff_s``); one that crashes ``max_crashes``
times within ``window_s``, or one that may not be restarted, is *dead*. A dead essential task makes the instance
unhealthy (``/healthz`` 503, ``/readyz`` names it and why), so the orchestrator replaces the instance.

A task that returns has stopped as asked (``aclose`` of its service). Cancellation is never caught: leaving the
supervisor (``async with``) cancels and awaits every task, including those waiting out a backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from types import TracebackType

log = logging.getLogger(__name__)

MAX_ERROR_CHARS = 200


class TaskState(StrEnum):
    RUNNING = "running"
    RESTARTING = "restarting"  # crashed; runs again after a backoff
    DEAD = "dead"  # crashed and given up on
    STOPPED = "stopped"  # returned: asked to stop


@dataclass(frozen=True, slots=True)
class RestartPolicy:
    min_backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    max_crashes: int = 5
    """Crashes within ``window_s`` after which a task is given up for dead."""
    window_s: float = 600.0

    def backoff(self, crashes_in_window: int) -> float:
        return float(min(self.min_backoff_s * 2.0 ** max(crashes_in_window - 1, 0), self.max_backoff_s))


@dataclass(frozen=True, slots=True)
class TaskStatus:
    name: str
    state: TaskState
    essential: bool
    crashes: int
    """Crashes since start (all of them, not only the window's)."""
    last_error: str | None
    """Exception type and a short message: no traceback (``/readyz`` is unauthenticated)."""


@dataclass(slots=True)
class _Entry:
    name: str
    run: Callable[[], Awaitable[None]]
    restart: bool
    essential: bool
    state: TaskState = TaskState.RUNNING
    crashes: int = 0
    recent: deque[float] = field(default_factory=deque)
    last_error: str | None = None

    def status(self) -> TaskStatus:
        return TaskStatus(self.name, self.state, self.essential, self.crashes, self.last_error)


class Supervisor:
    def __init__(self, policy: RestartPolicy | None = None, *, clock: Callable[[], float] = time.monotonic,
                 describe: Callable[[BaseException], str] | None = None) -> None:
        self.policy = policy or RestartPolicy()
        self._clock = clock
        self._describe = describe or _describe
        self._entries: dict[str, _Entry] = {}
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def __aenter__(self) -> Supervisor:
        self._group = asyncio.TaskGroup()
        await self._group.__aenter__()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        group, self._group = self._group, None
        assert group is not None
        for task in self._tasks:  # each waits on a backoff or on its service's own stop signal
            task.cancel()
        self._tasks = []
        await group.__aexit__(exc_type, exc, tb)

    def start(self, name: str, run: Callable[[], Awaitable[None]], *, restart: bool = True,
              essential: bool = True) -> None:
        """Run ``run()`` as a supervised task; called again after each crash when ``restart``."""
        if self._group is None:
            raise RuntimeError("Supervisor.start() outside `async with supervisor`")
        if name in self._entries:
            raise ValueError(f"a task named {name!r} is already supervised")
        entry = self._entries[name] = _Entry(name, run, restart, essential)
        self._tasks.append(self._group.create_task(self._supervise(entry), name=f"supervised:{name}"))

    def mark_dead(self, name: str, exc: BaseException) -> None:
        """Record that something essential outside the supervised tasks died (the lifespan itself)."""
        entry = self._entries.setdefault(name, _Entry(name, _never, restart=False, essential=True))
        entry.state, entry.crashes, entry.last_error = TaskState.DEAD, entry.crashes + 1, self._describe(exc)

    def statuses(self) -> list[TaskStatus]:
        return [entry.status() for entry in self._entries.values()]

    def dead(self) -> list[TaskStatus]:
        """Essential tasks given up for dead: the instance is unhealthy while this is not empty."""
        return [s for s in self.statuses() if s.essential and s.state is TaskState.DEAD]

    async def _supervise(self, entry: _Entry) -> None:
        while True:
            entry.state = TaskState.RUNNING
            try:
                await entry.run()
            except Exception as exc:  # a crash: recorded, logged with its traceback, then restart or give up
                delay = self._crashed(entry, exc)
                if delay is None:
                    return
                await asyncio.sleep(delay)
            else:
                entry.state = TaskState.STOPPED
                return

    def _crashed(self, entry: _Entry, exc: Exception) -> float | None:
        """Book the crash; the backoff before the next run, or None if the task is now dead."""
        now = self._clock()
        entry.crashes += 1
        entry.last_error = self._describe(exc)
        entry.recent.append(now)
        while entry.recent and entry.recent[0] <= now - self.policy.window_s:
            entry.recent.popleft()
        if not entry.restart or len(entry.recent) >= self.policy.max_crashes:
            entry.state = TaskState.DEAD
            log.critical("background task %s is dead after %d crash(es)%s", entry.name, entry.crashes,
                         "" if entry.restart else " (not restartable)", exc_info=exc)
            return None
        delay = self.policy.backoff(len(entry.recent))
        entry.state = TaskState.RESTARTING
        log.error("background task %s crashed (%d in %.0f s); restarting in %.1f s", entry.name, len(entry.recent),
                  self.policy.window_s, delay, exc_info=exc)
        return delay


def _describe(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:  # a loop's own TaskGroup wraps it
        exc = exc.exceptions[0]
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= MAX_ERROR_CHARS else text[: MAX_ERROR_CHARS - 1] + "…"


async def _never() -> None:
    raise RuntimeError("placeholder for a task that is not run by the supervisor")
