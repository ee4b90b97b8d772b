"""Event-loop lag: how late our own asyncio loop runs, and a clock that stops while the loop is starved.

Watchdogs that blame a remote peer for silence (the transcription failover's stall detection, the breaker
windows) measure time with a clock. When this process is overloaded its event loop runs late: a provider's reply
sits unread in a socket buffer while the watchdog, itself woken late, finds its deadline passed and blames the
provider; the call then fails over to a costlier provider (finally local Moonshine), adding load: a cascade.
:meth:`LoopLagMonitor.effective_time` is monotonic time minus the time the loop was starved, so a deadline
measured with it (``FallbackTranscriber(clock=mon.effective_time)``) only expires for time the loop could run.

Measurement: one ticker task sleeps ``interval_s`` and notes how late it wakes. Lateness up to ``tolerance_s`` is
ordinary scheduling jitter and still counts as time; beyond it, it is starvation. A tick learns of a stall only
once the stall is over, and after a blocking stretch the loop runs its ready callbacks first-in first-out, so a
watchdog may well run before the ticker. ``effective_time()`` therefore also counts the overdue part of the tick
in progress as starved: the clock freezes ``tolerance_s`` after the tick was due, and resumes from the frozen value
when the ticker runs. It is monotonic non-decreasing, never runs faster than ``clock`` and never jumps.

Lateness is measured with ``clock`` (``time.monotonic``, the default loops' ``loop.time()``); one tick per 50 ms
is negligible work. Read it from the loop's thread (reads from another thread are approximate).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType


@dataclass(frozen=True, slots=True)
class LoopLagStats:
    ticks: int
    """Ticks completed since the monitor was built."""
    starved_s: float
    """Total starvation so far, the stretch in progress included: ``clock() - effective_time()``."""
    lag_s: float
    """Worst lateness within the last ``window_s`` (see :attr:`LoopLagMonitor.lag_s`)."""
    max_lag_s: float
    """Worst lateness ever seen."""


class LoopLagMonitor:
    """Measures this event loop's lag with one ticker task; owned by the app lifespan (``async with``).

    ``effective_time`` and the other readings work before the monitor is entered and after it exited: time
    then runs like ``clock``, minus the starvation accumulated while it ran.
    """

    def __init__(self, interval_s: float = 0.05, tolerance_s: float = 0.02, *, window_s: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if interval_s <= 0 or tolerance_s < 0 or window_s <= 0:
            raise ValueError("interval_s and window_s must be > 0, tolerance_s >= 0")
        self.interval_s, self.tolerance_s, self.window_s = interval_s, tolerance_s, window_s
        self._clock = clock
        # Accounting point: effective time was ``_effective`` at clock time ``_base``; ``_starved`` is the
        # starvation accounted up to ``_base``. Reads extrapolate from it, ticks move it (see ``_fold``).
        self._base = self._effective = clock()
        self._starved = 0.0
        self._due: float | None = None  # when the ticker should wake; None while no ticker runs
        self._ticks = 0
        self._max_lag = 0.0
        self._recent: deque[tuple[float, float]] = deque()  # (wake time, lateness) of ticks within window_s
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopLagMonitor:
        if self._task is not None:
            raise RuntimeError("LoopLagMonitor is already running")
        self._arm(self._clock())  # measured from now: a delay before the task's first step is loop lag too
        self._task = asyncio.create_task(self._run(), name="loop-lag-monitor")
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await asyncio.wait((task,))
        finally:  # even if we are cancelled meanwhile: a clock left armed would freeze for good
            self._disarm(self._clock())
        if not task.cancelled():
            task.result()  # the ticker only ends by cancellation; anything else is a bug to surface

    def effective_time(self) -> float:
        """Monotonic seconds, minus all loop starvation so far, including a stretch still in progress."""
        return self._effective + (self._run_until(self._clock()) - self._base)

    @property
    def starved_s(self) -> float:
        """Total seconds the loop was starved (``clock() - effective_time()``, up to rounding)."""
        return self._starved_at(self._clock())

    @property
    def lag_s(self) -> float:
        """Worst lateness of the loop within the last ``window_s``, a tick overdue right now included.

        A maximum over a time window rather than an EWMA: a single 300 ms stall is exactly what ``/readyz`` and
        admission control must see, an EWMA would dilute it by a factor that depends on the tick rate, and the
        maximum has a plain meaning ("the loop ran this late at least once in the last second") and decays
        deterministically ``window_s`` after the stall. Raw lateness: ``tolerance_s`` is not subtracted.
        """
        return self._lag_at(self._clock())

    def stats(self) -> LoopLagStats:
        now = self._clock()
        return LoopLagStats(self._ticks, self._starved_at(now), self._lag_at(now),
                            max(self._max_lag, self._overdue(now)))

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            self._on_wake(self._clock())

    def _arm(self, now: float) -> None:
        """Start accounting for a ticker sleep that is due ``interval_s`` from ``now``."""
        self._fold(now)
        self._due = now + self.interval_s

    def _on_wake(self, now: float) -> None:
        """The ticker woke at ``now``: account its lateness, then arm the next sleep."""
        if self._due is None:
            return
        lateness = max(0.0, now - self._due)
        self._ticks += 1
        self._max_lag = max(self._max_lag, lateness)
        self._recent.append((now, lateness))
        self._prune(now)
        self._arm(now)

    def _disarm(self, now: float) -> None:
        """No ticker any more: account up to ``now`` (an overdue stretch counts as starved), then run freely."""
        self._fold(now)
        self._due = None

    def _run_until(self, now: float) -> float:
        """Clock time up to which time since ``_base`` counts (it is frozen from ``tolerance_s`` past due).

        Every reading goes through this monotonic expression and ``_fold`` stores exactly what a reading at the
        fold time returns, so readings never decrease, whatever the float rounding.
        """
        frozen_from = math.inf if self._due is None else self._due + self.tolerance_s
        return max(self._base, min(now, frozen_from))

    def _fold(self, now: float) -> None:
        """Move the accounting point to ``now``."""
        if now <= self._base:
            return
        until = self._run_until(now)
        self._effective += until - self._base
        self._starved += now - until
        self._base = now

    def _starved_at(self, now: float) -> float:
        return self._starved + (now - self._run_until(now))

    def _lag_at(self, now: float) -> float:
        self._prune(now)
        return max(self._overdue(now), max((lag for _, lag in self._recent), default=0.0))

    def _overdue(self, now: float) -> float:
        return 0.0 if self._due is None else max(0.0, now - self._due)

    def _prune(self, now: float) -> None:
        while self._recent and self._recent[0][0] < now - self.window_s:
            self._recent.popleft()


__all__ = ["LoopLagMonitor", "LoopLagStats"]
