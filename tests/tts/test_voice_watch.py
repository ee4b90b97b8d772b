"""VoiceWatch on a fake clock: the deadlines of a flushed turn, and how they follow the provider's latencies."""

from __future__ import annotations

import pytest

from switchboard.tts.watch import Owed, TurnClock, VoiceWatch


def flushed(at: float, *, sent: float | None = None) -> TurnClock:
    return TurnClock(flushed_at=at, text_sent_at=at if sent is None else sent, audio=False, last_audio_at=0.0,
                     voiced=False)


def test_a_fresh_watch_uses_the_configured_limits() -> None:
    watch = VoiceWatch(0.8, 0.6)
    assert watch.due(flushed(10.0)) == (pytest.approx(10.8), Owed.FIRST_AUDIO)
    assert watch.due(TurnClock(10.0, 10.0, True, 10.3, False)) == (pytest.approx(10.9), Owed.MORE_AUDIO)
    assert watch.due(TurnClock(10.0, 10.0, True, 10.3, True)) == (pytest.approx(10.4), Owed.TURN_END)


def test_text_sent_after_the_flush_starts_the_first_audio_clock() -> None:
    """A flush while the socket reconnects: the provider cannot answer text it has not received."""
    assert VoiceWatch(0.8, 0.6).due(flushed(10.0, sent=10.5))[0] == pytest.approx(11.3)


def test_deadlines_shrink_to_what_a_fast_provider_shows_but_not_below_the_floor() -> None:
    watch = VoiceWatch(0.8, 0.6, min_samples=5)
    now = 0.0
    for _ in range(5):
        turn = flushed(now)
        watch.audio(turn, now + 0.1)  # first audio 100 ms after each flush
        watch.audio(TurnClock(now, now, True, now + 0.1, False), now + 0.15)  # then 50 ms between messages
        now += 5
    assert watch.first.deadline_s() == pytest.approx(0.35)  # 2.5 × 0.1 = 0.25, floored at 0.35
    assert watch.gaps.deadline_s() == pytest.approx(0.25)  # 2.5 × 0.05, floored at 0.25
    assert watch.due(flushed(100.0)) == (pytest.approx(100.35), Owed.FIRST_AUDIO)


def test_a_slow_provider_keeps_the_ceiling() -> None:
    watch = VoiceWatch(0.8, 0.6, min_samples=5)
    for i in range(10):
        watch.audio(flushed(float(i)), i + 0.5)  # 500 ms to first audio: 2.5 × 0.5 > 0.8
    assert watch.first.deadline_s() == pytest.approx(0.8)


def test_until_enough_samples_the_ceiling_holds() -> None:
    watch = VoiceWatch(0.8, 0.6, min_samples=5)
    for i in range(4):
        watch.audio(flushed(float(i)), i + 0.05)
    assert watch.first.deadline_s() == pytest.approx(0.8)
    watch.audio(flushed(9.0), 9.05)
    assert watch.first.deadline_s() == pytest.approx(0.35)


def test_audio_after_the_text_is_voiced_is_not_a_gap_sample() -> None:
    watch = VoiceWatch(0.8, 0.6, min_samples=1)
    watch.audio(TurnClock(0.0, 0.0, True, 0.1, True), 5.0)  # trailing audio long after: not a stall sample
    assert watch.gaps.p99() is None
