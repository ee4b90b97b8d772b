"""Circuit breakers per transcription provider, shared by every call on this instance.

A provider that keeps failing costs each new call a failed connect (or a stall timeout) before the failover
catches it. The board remembers failures across calls so new calls go straight to the next provider, and lets
one call probe the provider again after a cooldown. One :class:`CircuitBreakerBoard` is built in the app
lifespan and handed to every :class:`~switchboard.transcribe.fallback.FallbackTranscriber`; nothing here is
global. Time comes from an injected clock (tests step a fake one); nothing waits.

States, per provider::

    CLOSED ──failure_threshold failures within window_s──▶ OPEN
    OPEN ──cooldown elapsed──▶ HALF_OPEN (exactly one probe allowed)
    HALF_OPEN ──success──▶ CLOSED (cooldown back to cooldown_s)
    HALF_OPEN ──failure──▶ OPEN (cooldown doubled, capped at max_cooldown_s)
    any ──non-retryable failure (e.g. auth)──▶ OPEN

There is no background prober: the half-open probe is the next real call, which may therefore try the
provider once after the cooldown; the fallback makes that attempt lossless. A probe that never reports back
(its call hung up first) is forgotten after ``probe_timeout_s`` and another call may probe.

Failures count within a sliding window whatever happened in between: with many concurrent calls, one call
still getting results must not hide that new connections are failing. A success in CLOSED only counts.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from switchboard.backoff import backoff_s


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class BreakerConfig:
    failure_threshold: int = 3
    window_s: float = 60.0
    cooldown_s: float = 30.0
    max_cooldown_s: float = 300.0
    probe_timeout_s: float = 60.0

    def __post_init__(self) -> None:
        if self.failure_threshold < 1:
            raise ValueError("failure_threshold must be >= 1")
        if min(self.window_s, self.cooldown_s, self.probe_timeout_s) <= 0 or self.max_cooldown_s < self.cooldown_s:
            raise ValueError("window_s, cooldown_s and probe_timeout_s must be > 0 and max_cooldown_s >= cooldown_s")


@dataclass(slots=True)
class _Breaker:
    """One provider's state; the board supplies ``now`` to every method."""

    config: BreakerConfig
    state: BreakerState = BreakerState.CLOSED
    recent: deque[float] = field(default_factory=deque)
    """Failure times within the window (CLOSED only)."""
    failures: int = 0
    successes: int = 0
    last_error: str | None = None
    opened_at: float | None = None
    cooldown_s: float = 0.0
    probe_at: float | None = None
    trips: int = 0
    """Consecutive trips without a successful probe between them: each one doubles the cooldown."""

    def tick(self, now: float) -> None:
        """Apply the transitions that only need time: OPEN → HALF_OPEN, a lost probe, an aged window."""
        if self.state is BreakerState.OPEN and self.opened_at is not None and now - self.opened_at >= self.cooldown_s:
            self.state, self.probe_at = BreakerState.HALF_OPEN, None
        if self.probe_at is not None and now - self.probe_at >= self.config.probe_timeout_s:
            self.probe_at = None
        while self.recent and now - self.recent[0] > self.config.window_s:
            self.recent.popleft()

    def allow(self, now: float) -> bool:
        self.tick(now)
        if self.state is BreakerState.CLOSED:
            return True
        if self.state is BreakerState.HALF_OPEN and self.probe_at is None:
            self.probe_at = now
            return True
        return False

    def success(self, now: float) -> None:
        self.tick(now)
        self.successes += 1
        if self.state is BreakerState.HALF_OPEN:
            self.state, self.opened_at, self.probe_at = BreakerState.CLOSED, None, None
            self.cooldown_s, self.trips = self.config.cooldown_s, 0
            self.recent.clear()

    def failure(self, now: float, reason: str, retryable: bool) -> None:
        self.tick(now)
        self.failures += 1
        self.last_error = reason
        if self.state is BreakerState.HALF_OPEN:
            self._open(now)
        elif self.state is BreakerState.CLOSED:
            self.recent.append(now)
            if not retryable or len(self.recent) >= self.config.failure_threshold:
                self.trips = 0
                self._open(now)
        # OPEN: a straggler from a call that started before the trip; the cooldown runs on unchanged.

    def _open(self, now: float) -> None:
        self.trips += 1
        cooldown_s = backoff_s(self.trips, self.config.cooldown_s, self.config.max_cooldown_s)
        self.state, self.opened_at, self.probe_at, self.cooldown_s = BreakerState.OPEN, now, None, cooldown_s
        self.recent.clear()


class CircuitBreakerBoard:
    """One breaker per provider name, created on first mention; see the module docstring for the rules."""

    def __init__(self, config: BreakerConfig | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config if config is not None else BreakerConfig()
        self._clock = clock
        self._breakers: dict[str, _Breaker] = {}

    @property
    def clock(self) -> Callable[[], float]:
        """The time breakers are measured in; failover watchdogs sharing the board use it too."""
        return self._clock

    def register(self, *providers: str) -> None:
        """Make providers known before their first call, so ``snapshot()`` lists them as closed."""
        for provider in providers:
            self._get(provider)

    def allow(self, provider: str) -> bool:
        """Whether a call may use ``provider`` now; in HALF_OPEN, True once (this caller is the probe)."""
        return self._get(provider).allow(self._clock())

    def record_success(self, provider: str) -> None:
        """The provider delivered (a result, or a clean end): closes a half-open breaker."""
        self._get(provider).success(self._clock())

    def record_failure(self, provider: str, reason: str, *, retryable: bool = True) -> None:
        """Count a failure; ``retryable=False`` (auth refused) opens the breaker at once."""
        self._get(provider).failure(self._clock(), reason, retryable)

    def state(self, provider: str) -> BreakerState:
        breaker = self._breakers.get(provider)
        if breaker is None:
            return BreakerState.CLOSED
        breaker.tick(self._clock())
        return breaker.state

    def snapshot(self) -> dict[str, dict[str, object]]:
        """Per provider: state, failures (total), recent_failures (in the window), successes, last_error,
        opened_at (clock time), cooldown_s; for ``/readyz`` and ``/metrics``."""
        now = self._clock()
        out: dict[str, dict[str, object]] = {}
        for name, b in self._breakers.items():
            b.tick(now)
            out[name] = {
                "state": b.state.value, "failures": b.failures, "recent_failures": len(b.recent),
                "successes": b.successes, "last_error": b.last_error, "opened_at": b.opened_at,
                "cooldown_s": b.cooldown_s if b.state is not BreakerState.CLOSED else None,
            }
        return out

    def _get(self, provider: str) -> _Breaker:
        breaker = self._breakers.get(provider)
        if breaker is None:
            breaker = self._breakers[provider] = _Breaker(self.config, cooldown_s=self.config.cooldown_s)
        return breaker


__all__ = ["BreakerConfig", "BreakerState", "CircuitBreakerBoard"]
