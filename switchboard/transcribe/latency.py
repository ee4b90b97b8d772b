"""LatencyTracker: how long a provider takes to answer, and the deadline that justifies (sans-I/O).

A fixed "no final within 5 s" deadline makes every stall cost 5 s of silence before the backup is asked, although
a healthy provider answers in a fraction of that. The tracker keeps the provider's recent answer times (commit →
final, in seconds, as the caller measured them) and sets the deadline at ``factor`` (2.5) × their p99, clamped to
``[floor_s, ceiling_s]``: a provider that answers in 100 ms is given up on after ``floor_s`` (0.5 s), one that takes
800 ms after 2 s, and until ``min_samples`` answers have been seen (a fresh process) the deadline is ``ceiling_s``, the
configured limit. One tracker per provider, shared by all its streams: latency is the provider's, not a call's.
A false deadline costs a failover (lossless: the fallback replays the audio), never words.
"""

from __future__ import annotations

from collections import deque


class LatencyTracker:
    def __init__(self, ceiling_s: float, *, floor_s: float = 0.5, factor: float = 2.5, window: int = 64,
                 min_samples: int = 5) -> None:
        if not 0 < floor_s <= ceiling_s or factor < 1 or window < 1 or not 1 <= min_samples <= window:
            raise ValueError("need 0 < floor_s <= ceiling_s, factor >= 1, 1 <= min_samples <= window")
        self.ceiling_s, self.floor_s, self.factor, self.min_samples = ceiling_s, floor_s, factor, min_samples
        self._recent: deque[float] = deque(maxlen=window)

    def observe(self, seconds: float) -> None:
        """One answer took ``seconds`` (negative values, from a clock step, count as 0)."""
        self._recent.append(max(0.0, seconds))

    def p99(self) -> float | None:
        """The 99th percentile (nearest rank) of the recent answers; None before ``min_samples``."""
        if len(self._recent) < self.min_samples:
            return None
        ordered = sorted(self._recent)
        return ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]

    def deadline_s(self) -> float:
        """How long the next answer may take before the provider counts as failed."""
        p99 = self.p99()
        if p99 is None:
            return self.ceiling_s
        return min(self.ceiling_s, max(self.floor_s, self.factor * p99))


__all__ = ["LatencyTracker"]
