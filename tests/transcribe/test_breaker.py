"""CircuitBreakerBoard: per-provider state machine on a fake clock."""

from __future__ import annotations

import pytest

from switchboard.transcribe.breaker import BreakerConfig, BreakerState, CircuitBreakerBoard


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _tripped(clock: FakeClock, **config: float) -> CircuitBreakerBoard:
    board = CircuitBreakerBoard(BreakerConfig(**config), clock=clock)  # type: ignore[arg-type]
    for _ in range(board.config.failure_threshold):
        board.record_failure("wisprflow", "connect refused")
    assert board.state("wisprflow") is BreakerState.OPEN
    return board


def test_opens_after_threshold_failures_within_window(clock: FakeClock) -> None:
    board = CircuitBreakerBoard(clock=clock)
    board.record_failure("wisprflow", "a")
    clock.now += 30
    board.record_failure("wisprflow", "b")
    assert board.state("wisprflow") is BreakerState.CLOSED
    assert board.allow("wisprflow")
    clock.now += 29
    board.record_failure("wisprflow", "c")
    assert board.state("wisprflow") is BreakerState.OPEN
    assert not board.allow("wisprflow")
    assert board.allow("deepgram")  # breakers are per provider


def test_failures_outside_the_window_do_not_add_up(clock: FakeClock) -> None:
    board = CircuitBreakerBoard(clock=clock)
    board.record_failure("wisprflow", "a")
    board.record_failure("wisprflow", "b")
    clock.now += 61
    board.record_failure("wisprflow", "c")
    assert board.state("wisprflow") is BreakerState.CLOSED
    assert board.snapshot()["wisprflow"]["recent_failures"] == 1


def test_success_while_closed_does_not_reset_the_window(clock: FakeClock) -> None:
    board = CircuitBreakerBoard(clock=clock)
    board.record_failure("wisprflow", "a")
    board.record_failure("wisprflow", "b")
    board.record_success("wisprflow")  # another call still getting results must not hide failing connects
    board.record_failure("wisprflow", "c")
    assert board.state("wisprflow") is BreakerState.OPEN


def test_non_retryable_failure_opens_at_once(clock: FakeClock) -> None:
    board = CircuitBreakerBoard(clock=clock)
    board.record_failure("deepgram", "401 unauthorised", retryable=False)
    assert board.state("deepgram") is BreakerState.OPEN


def test_half_open_lets_exactly_one_probe_through(clock: FakeClock) -> None:
    board = _tripped(clock)
    clock.now += 29.9
    assert not board.allow("wisprflow")
    clock.now += 0.1
    assert board.state("wisprflow") is BreakerState.HALF_OPEN
    assert board.allow("wisprflow")
    assert not board.allow("wisprflow")
    assert not board.allow("wisprflow")


def test_probe_success_closes_and_resets_cooldown(clock: FakeClock) -> None:
    board = _tripped(clock)
    clock.now += 30
    assert board.allow("wisprflow")
    clock.now += 30
    board.record_failure("wisprflow", "still down")  # probe failed: cooldown 60 s now
    clock.now += 59
    assert board.state("wisprflow") is BreakerState.OPEN
    clock.now += 1
    assert board.allow("wisprflow")
    board.record_success("wisprflow")
    assert board.state("wisprflow") is BreakerState.CLOSED
    assert board.allow("wisprflow") and board.allow("wisprflow")
    for _ in range(3):
        board.record_failure("wisprflow", "down again")
    clock.now += 30  # back to the base cooldown, not 120 s
    assert board.state("wisprflow") is BreakerState.HALF_OPEN


def test_probe_failure_backs_off_exponentially_up_to_the_cap(clock: FakeClock) -> None:
    board = _tripped(clock)
    cooldowns = []
    for _ in range(6):
        opened = board.snapshot()["wisprflow"]["opened_at"]
        assert isinstance(opened, float)
        while board.state("wisprflow") is BreakerState.OPEN:
            clock.now += 1
        cooldowns.append(round(clock.now - opened))
        assert board.allow("wisprflow")
        board.record_failure("wisprflow", "probe failed")
    assert cooldowns == [30, 60, 120, 240, 300, 300]


def test_lost_probe_is_forgotten_after_probe_timeout(clock: FakeClock) -> None:
    board = _tripped(clock, probe_timeout_s=10.0)
    clock.now += 30
    assert board.allow("wisprflow")  # this probe's call hangs up before reporting anything
    clock.now += 9
    assert not board.allow("wisprflow")
    clock.now += 1
    assert board.allow("wisprflow")


def test_failure_while_open_keeps_the_cooldown(clock: FakeClock) -> None:
    board = _tripped(clock)
    clock.now += 20
    board.record_failure("wisprflow", "straggler from an older call")
    clock.now += 10
    assert board.state("wisprflow") is BreakerState.HALF_OPEN
    assert board.snapshot()["wisprflow"]["failures"] == 4


def test_snapshot_reports_state_counts_and_last_error(clock: FakeClock) -> None:
    board = CircuitBreakerBoard(clock=clock)
    board.register("wisprflow", "deepgram", "local")
    board.record_success("deepgram")
    board.record_failure("wisprflow", "x", retryable=False)
    snap = board.snapshot()
    assert list(snap) == ["wisprflow", "deepgram", "local"]
    assert snap["wisprflow"] == {"state": "open", "failures": 1, "recent_failures": 0, "successes": 0,
                                 "last_error": "x", "opened_at": 1000.0, "cooldown_s": 30.0}
    assert snap["deepgram"]["state"] == "closed" and snap["deepgram"]["successes"] == 1
    assert snap["local"]["cooldown_s"] is None and snap["local"]["last_error"] is None
    assert board.state("never-seen") is BreakerState.CLOSED
    assert "never-seen" not in board.snapshot()


@pytest.mark.parametrize("config", [
    {"failure_threshold": 0}, {"window_s": 0.0}, {"cooldown_s": -1.0}, {"cooldown_s": 600.0},
])
def test_rejects_nonsense_config(config: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        BreakerConfig(**config)  # type: ignore[arg-type]
