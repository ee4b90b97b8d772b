"""MediaTimeGuard on a fake clock: far jumps are protocol violations, fast senders are held to the pace rule."""

from __future__ import annotations

import pytest

from switchboard.close_codes import CloseCode
from switchboard.twilio.errors import ProtocolViolation
from switchboard.twilio.media_bounds import MediaTimeGuard, MediaTimeLimits

LIMITS = MediaTimeLimits(max_jump_ms=5_000, max_speed=20.0, max_lead_ms=60_000)


@pytest.mark.parametrize("ts", [10**12, 10**17, 5_021])
def test_far_future_first_frame_is_a_violation(ts: int) -> None:
    guard = MediaTimeGuard(LIMITS, started_at=100.0)
    with pytest.raises(ProtocolViolation) as info:
        guard.admit("inbound", ts, now=100.0)
    assert info.value.close_code == CloseCode.POLICY_VIOLATION and "jumps" in info.value.reason


def test_jump_is_measured_from_the_newest_media_time_on_any_track() -> None:
    guard = MediaTimeGuard(LIMITS, started_at=0.0)
    for i in range(100):
        assert guard.admit("inbound", i * 20, now=i * 0.02) == 0.0
    # the outbound track starts late: fine, it is level with the inbound track
    assert guard.admit("outbound", 1_960, now=2.0) == 0.0
    assert guard.admit("inbound", 1_980 + 5_000, now=2.0) == 0.0  # a 5 s hole: at the limit, allowed
    with pytest.raises(ProtocolViolation, match="ahead"):
        guard.admit("outbound", 6_980 + 5_001, now=2.0)


def test_a_track_silent_for_minutes_resumes_at_wall_time() -> None:
    """The horizon is the wall time when that is later: an outbound track with nothing to play for 3 minutes."""
    guard = MediaTimeGuard(LIMITS, started_at=0.0)
    assert guard.admit("outbound", 0, now=0.0) == 0.0
    assert guard.admit("outbound", 180_000, now=180.0) == 0.0


def test_jump_back_beyond_the_limit_is_a_violation() -> None:
    guard = MediaTimeGuard(LIMITS, started_at=0.0)
    guard.admit("inbound", 9_000, now=9.0)
    assert guard.admit("inbound", 4_000, now=9.0) == 0.0  # late by 5 s: the jitter buffer drops it
    with pytest.raises(ProtocolViolation, match="back on the inbound track"):
        guard.admit("inbound", 3_999, now=9.0)


def test_fast_sender_is_held_to_lead_plus_speed_times_elapsed() -> None:
    """A sender 100× faster than real time: frames beyond 60 s + 20 × elapsed are held back exactly that long."""
    guard = MediaTimeGuard(LIMITS, started_at=0.0)
    now = 0.0
    for i in range(3000):  # the first 60 s go through at once
        assert guard.admit("inbound", i * 20, now=now) == 0.0
    for i in range(3000, 30_000):  # 9 more minutes, offered at 100× real time
        now += 0.02 / 100
        ts = i * 20
        wait = guard.admit("inbound", ts, now=now)
        assert wait == pytest.approx(max(0.0, (ts - 60_000) / 20_000 - now), abs=1e-9)
        now += wait  # the server sleeps for it, so the wall clock moves on
        assert ts <= 60_000 + 20_000 * now + 1e-6
    assert now == pytest.approx((30_000 * 20 - 20 - 60_000) / 20_000, rel=1e-3)  # ≈ 27 s for 10 minutes at 20×
    assert guard.held_s > 20


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        MediaTimeLimits(max_speed=0.5)
    with pytest.raises(ValueError):
        MediaTimeLimits(max_jump_ms=-1)
