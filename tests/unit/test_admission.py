"""Admission: call slots reserved at the webhook, taken at the stream's start, refused over the cap or draining."""

from __future__ import annotations

from switchboard.admission import Admission

A, B, C = ("CA" + c * 32 for c in "abc")


def test_webhooks_reserve_slots_up_to_the_cap() -> None:
    adm = Admission(max_calls=2, max_connections=10)
    assert adm.answer_call(A, live=0, now=0.0) is None
    assert adm.answer_call(B, live=0, now=0.0) is None
    refusal = adm.answer_call(C, live=0, now=0.0)
    assert refusal is not None and "capacity" in refusal
    assert adm.answer_call(A, live=0, now=1.0) is None  # Twilio retrying the same call keeps its slot
    assert adm.stats().refused_calls == 1 and adm.stats().reserved == 2


def test_a_reserved_call_starts_its_stream_even_at_the_cap() -> None:
    adm = Admission(max_calls=1, max_connections=10)
    assert adm.answer_call(A, live=0, now=0.0) is None
    assert adm.start_stream(A, live=0, now=1.0) is None  # its own slot
    assert adm.stats().reserved == 0
    assert adm.start_stream(B, live=1, now=1.0) == "server at capacity (1 calls)"  # no slot left


def test_reservations_expire_so_the_table_stays_bounded() -> None:
    adm = Admission(max_calls=1, max_connections=10, reserve_s=30)
    assert adm.answer_call(A, live=0, now=0.0) is None
    assert adm.answer_call(B, live=0, now=29.0) is not None
    assert adm.answer_call(B, live=0, now=30.0) is None  # A never streamed: its slot lapsed
    assert adm.stats().reserved == 1


def test_draining_turns_new_calls_away_but_not_answered_ones() -> None:
    adm = Admission(max_calls=10, max_connections=10)
    assert adm.answer_call(A, live=0, now=0.0) is None
    adm.begin_drain()
    assert adm.answer_call(B, live=0, now=0.0) == "server is shutting down"
    assert adm.start_stream(A, live=0, now=1.0) is None  # answered before the drain: its stream is welcome
    assert adm.start_stream(C, live=1, now=1.0) == "server is shutting down"
    assert adm.stats().draining


def test_connections_are_counted_and_capped() -> None:
    adm = Admission(max_calls=1, max_connections=2)
    assert adm.open_connection() and adm.open_connection()
    assert not adm.open_connection()
    adm.close_connection()
    assert adm.open_connection()
    assert adm.stats().connections == 2 and adm.stats().refused_connections == 1
