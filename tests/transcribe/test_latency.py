"""LatencyTracker: the deadline a provider's recent answer times justify."""

from __future__ import annotations

import pytest

from switchboard.transcribe.latency import LatencyTracker


def test_the_ceiling_until_enough_answers_are_seen() -> None:
    tracker = LatencyTracker(5.0, min_samples=5)
    for _ in range(4):
        tracker.observe(0.1)
        assert tracker.deadline_s() == 5.0
    tracker.observe(0.1)
    assert tracker.deadline_s() == pytest.approx(0.5)  # 2.5 × 0.1 is under the floor


def test_factor_times_p99_within_floor_and_ceiling() -> None:
    tracker = LatencyTracker(5.0, floor_s=0.5, factor=3.0, window=100)  # explicit: the defaults may be tuned
    for _ in range(99):
        tracker.observe(0.2)
    tracker.observe(0.9)  # one slow answer in 100 is the p99
    assert tracker.p99() == pytest.approx(0.9)
    assert tracker.deadline_s() == pytest.approx(2.7)
    for _ in range(10):
        tracker.observe(4.0)
    assert tracker.deadline_s() == 5.0


def test_old_answers_leave_the_window() -> None:
    tracker = LatencyTracker(5.0, window=8, min_samples=1)
    for _ in range(8):
        tracker.observe(1.0)
    for _ in range(8):
        tracker.observe(0.1)
    assert tracker.p99() == pytest.approx(0.1)
    tracker.observe(-3.0)  # a clock step back counts as an instant answer
    assert tracker.p99() == pytest.approx(0.1)


@pytest.mark.parametrize("bad", [{"floor_s": 0.0}, {"floor_s": 6.0}, {"factor": 0.5}, {"window": 0},
                                 {"min_samples": 0}, {"window": 4, "min_samples": 5}])
def test_invalid_settings_are_refused(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LatencyTracker(5.0, **bad)  # type: ignore[arg-type]
