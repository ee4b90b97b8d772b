"""FailoverWatch: when a silent provider counts as failed, on a fake clock (times are plain arguments)."""

from __future__ import annotations

from switchboard.transcribe.base import SwitchReason
from switchboard.transcribe.failover_watch import FailoverWatch


def watch(armed: bool = True, slack_ms: int = 1000, limit_s: float = 4.0, now: float = 0.0) -> FailoverWatch:
    w = FailoverWatch(slack_ms)
    w.provider_opened(now, limit_s, armed=armed)
    return w


def test_no_deadline_until_speech_is_pushed() -> None:
    w = watch()
    assert w.next_deadline() is None and w.on_timer(1e6) is None


def test_unanswered_speech_stalls_after_the_limit_from_the_first_speech() -> None:
    w = watch()
    assert w.speech_pushed(10.0, end_ms=500)  # a deadline now exists: the stream must wake
    assert not w.speech_pushed(11.0, end_ms=1500)  # the oldest unanswered speech counts
    assert w.next_deadline() == 14.0
    assert w.on_timer(13.99) is None
    assert w.on_timer(14.0) is SwitchReason.STALL


def test_a_result_that_covers_the_speech_clears_the_deadline() -> None:
    w = watch()
    w.speech_pushed(10.0, end_ms=1500)
    w.result(11.0, end_ms=1200, final_end_ms=-1)  # within the 1 s slack of the speech's end: answered
    assert w.next_deadline() is None


def test_speech_beyond_a_result_stays_watched_from_the_result() -> None:
    w = watch()
    w.speech_pushed(10.0, end_ms=6000)  # a burst: 6 s of speech read at once
    w.result(11.0, end_ms=1200, final_end_ms=-1)  # answers only its first utterance
    assert w.next_deadline() == 15.0 and w.on_timer(15.0) is SwitchReason.STALL


def test_after_the_end_a_missing_final_is_timed_from_the_end_or_the_last_result() -> None:
    w = watch()
    w.audio_ended(20.0)
    assert w.next_deadline() == 24.0
    w.result(22.0, end_ms=100, final_end_ms=100)
    assert w.next_deadline() == 26.0
    assert w.on_timer(25.9) is None and w.on_timer(26.0) is SwitchReason.MISSING_FINAL


def test_the_last_provider_is_never_timed_out() -> None:
    w = watch(armed=False)
    w.speech_pushed(0.0, end_ms=1000)
    w.audio_ended(1.0)
    assert w.next_deadline() is None and w.on_timer(1e9) is None


def test_a_new_provider_starts_with_a_clean_slate_and_its_own_limit() -> None:
    w = watch()
    w.speech_pushed(0.0, end_ms=1000)
    w.provider_opened(5.0, 12.0, armed=True)
    assert w.next_deadline() is None  # the replayed speech is noted by the stream, as a new push
    w.speech_pushed(5.0, end_ms=1000)
    assert w.next_deadline() == 17.0
