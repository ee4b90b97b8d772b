"""Exponential backoff, one formula for every retry loop (archive spool, job worker, segment writer, breakers).

After the n-th consecutive failure wait ``b = min(max_s, min_s · 2^(n-1))``. With an ``rng`` the wait is drawn
from ``[b/2, b]`` and never below ``min_s`` ("equal jitter": instances that failed together do not retry
together, and the wait still grows); without one it is ``b`` itself (deterministic, for a single local loop).
"""

from __future__ import annotations

import random


def backoff_s(failures: int, min_s: float, max_s: float, rng: random.Random | None = None) -> float:
    """Seconds to wait after ``failures`` (≥ 1) consecutive failures; see the module docstring."""
    ceiling = min(max_s, min_s * 2.0 ** min(max(failures, 1) - 1, 60))
    if rng is None:
        return ceiling
    return max(min_s, rng.uniform(ceiling / 2, ceiling))


__all__ = ["backoff_s"]
