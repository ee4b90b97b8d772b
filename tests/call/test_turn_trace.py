"""TurnTrace: one wall-clock stamp per stage of a reply (the first wins), bounded, and only replies that reached
the voice are reported."""

from __future__ import annotations

import pytest

from switchboard.call.turn_trace import MAX_TURNS, STAGES, TurnTrace


def test_first_stamp_of_a_stage_wins_and_rows_keep_the_stages() -> None:
    trace = TurnTrace()
    trace.stamp(2, "endpoint", 1000.0)
    trace.stamp(2, "first_text", 1300.25)
    trace.stamp(2, "first_text", 1400.0)  # later pieces of the same reply do not move the stage
    assert trace.has(2, "first_text") and not trace.has(2, "first_sent")
    assert trace.rows() == [{"reply": 2, "endpoint": 1000.0, "first_text": 1300.25}]


def test_a_reply_that_never_reached_the_voice_is_not_reported() -> None:
    trace = TurnTrace()
    trace.stamp(3, "endpoint", 5.0)
    trace.stamp(3, "request", 6.0)  # abandoned: the caller went on talking
    trace.stamp(4, "first_audio", 9.0)  # a line the core spoke by itself (no dialog stages)
    assert [row["reply"] for row in trace.rows()] == [4]


def test_unknown_stage_is_refused_naming_the_known_ones() -> None:
    with pytest.raises(ValueError, match="first_sent"):
        TurnTrace().stamp(1, "first_word", 0.0)


def test_only_the_last_replies_are_kept() -> None:
    trace = TurnTrace()
    for rid in range(MAX_TURNS + 10):
        trace.stamp(rid, STAGES[-1], float(rid))
        trace.stamp(rid, "first_audio", float(rid))
    rows = trace.rows()
    assert len(rows) == MAX_TURNS and rows[0]["reply"] == 10
