"""IncrementalExtractor scheduling on a fake clock."""

from __future__ import annotations

import pytest

from switchboard.extract.extractor import IncrementalExtractor


def test_first_caller_final_runs_at_once() -> None:
    inc = IncrementalExtractor(min_interval_s=5)
    assert inc.next_deadline() is None
    assert inc.on_final("caller", 10.0)
    assert (inc.runs, inc.in_flight) == (1, True)


def test_agent_speech_alone_never_triggers() -> None:
    inc = IncrementalExtractor()
    assert not inc.on_final("agent", 1.0)
    assert not inc.on_timer(100.0)
    assert inc.next_deadline() is None


def test_debounce_waits_for_the_interval_then_runs_once() -> None:
    inc = IncrementalExtractor(min_interval_s=5)
    assert inc.on_final("caller", 0.0)
    assert not inc.finished(1.0)  # nothing new yet
    assert not inc.on_final("caller", 2.0)
    assert not inc.on_final("caller", 3.0)  # coalesced with the one at 2.0
    assert inc.next_deadline() == 5.0
    assert not inc.on_timer(4.99)
    assert inc.on_timer(5.0)
    assert inc.runs == 2
    assert inc.next_deadline() is None


def test_no_second_run_while_one_is_in_flight() -> None:
    inc = IncrementalExtractor(min_interval_s=1)
    assert inc.on_final("caller", 0.0)
    assert not inc.on_final("caller", 3.0)  # interval passed but the first run is still going
    assert inc.next_deadline() is None
    assert inc.finished(4.0)  # pending speech, interval passed: the next run is due at once
    assert inc.runs == 2


def test_finished_before_interval_gives_a_deadline() -> None:
    inc = IncrementalExtractor(min_interval_s=5)
    inc.on_final("caller", 0.0)
    inc.on_final("caller", 1.0)
    assert not inc.finished(2.0)
    assert inc.next_deadline() == 5.0


def test_max_runs_per_call() -> None:
    inc = IncrementalExtractor(min_interval_s=0, max_runs=3)
    started = 0
    for second in range(10):
        if inc.on_final("caller", float(second)):
            started += 1
            inc.finished(second + 0.5)
    assert started == 3 and inc.exhausted
    assert inc.next_deadline() is None


def test_speech_arriving_after_the_interval_runs_at_its_own_time() -> None:
    inc = IncrementalExtractor(min_interval_s=5)
    inc.on_final("caller", 0.0)
    inc.finished(0.5)
    assert inc.on_final("caller", 60.0)
    assert inc.runs == 2


def test_rejects_negative_limits() -> None:
    with pytest.raises(ValueError):
        IncrementalExtractor(min_interval_s=-1)
