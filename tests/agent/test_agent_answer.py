"""Answer mode and business hours: parsing (with clear errors) and the pure decision."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from switchboard.agent.answer import (
    AnswerConfigError,
    AnswerMode,
    agent_takes_over,
    decide_answer,
    parse_answer_mode,
    parse_business_hours,
)

LONDON = ZoneInfo("Europe/London")
HOURS = parse_business_hours("Mon-Fri 08:00-18:00, Sat 09:00-13:00")


def at(year: int, month: int, day: int, hour: int, minute: int = 0, zone: ZoneInfo = LONDON) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=zone)


@pytest.mark.parametrize(("value", "mode"), [(None, AnswerMode.OPERATOR), ("", AnswerMode.OPERATOR),
                                             ("agent", AnswerMode.AGENT), (" AUTO ", AnswerMode.AUTO)])
def test_answer_mode_parses(value: str | None, mode: AnswerMode) -> None:
    assert parse_answer_mode(value) is mode


def test_bad_answer_mode_names_the_variable() -> None:
    with pytest.raises(AnswerConfigError, match=r"SWITCHBOARD_ANSWER.*'robot'"):
        parse_answer_mode("robot")


@pytest.mark.parametrize(("when", "open_"), [
    (at(2026, 12, 2, 7, 59), False),   # Wednesday before opening
    (at(2026, 12, 2, 8, 0), True),
    (at(2026, 12, 2, 17, 59), True),
    (at(2026, 12, 2, 18, 0), False),   # the end is exclusive
    (at(2026, 12, 5, 12, 30), True),   # Saturday morning
    (at(2026, 12, 5, 13, 0), False),
    (at(2026, 12, 6, 10, 0), False),   # Sunday
])
def test_business_hours_windows(when: datetime, open_: bool) -> None:
    assert HOURS.is_open(when) is open_


def test_business_hours_are_read_in_their_zone_whatever_the_zone_of_the_time() -> None:
    # 17:30 in London on a summer weekday is 16:30 UTC: open; 18:30 London (17:30 UTC) is closed.
    assert HOURS.is_open(datetime(2026, 7, 1, 16, 30, tzinfo=UTC))
    assert not HOURS.is_open(datetime(2026, 7, 1, 17, 30, tzinfo=UTC))
    new_york = parse_business_hours("mon-fri 09:00-17:00; America/New_York")
    assert new_york.is_open(datetime(2026, 7, 1, 14, 0, tzinfo=UTC))  # 10:00 in New York
    assert not new_york.is_open(datetime(2026, 7, 1, 12, 0, tzinfo=UTC))  # 08:00 in New York


def test_wrapping_day_range_and_always() -> None:
    weekend = parse_business_hours("Sat-Mon 10:00-12:00")
    assert [weekend.is_open(at(2026, 12, d, 11)) for d in (5, 6, 7, 8)] == [True, True, True, False]
    assert parse_business_hours("always").is_open(at(2026, 12, 6, 3))


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        HOURS.is_open(datetime(2026, 12, 2, 9, 0))


@pytest.mark.parametrize(("value", "problem"), [
    ("Mon-Fri 8-18", "cannot read"), ("Mon-Fry 08:00-18:00", "unknown day"), ("Mon 18:00-08:00", "ends before"),
    ("Mon 25:00-26:00", "not a time"), ("Mon 08:00-18:00; Mars/Base", "unknown time zone"), ("", "no windows"),
])
def test_bad_business_hours_say_what_is_wrong(value: str, problem: str) -> None:
    with pytest.raises(AnswerConfigError, match=f"SWITCHBOARD_BUSINESS_HOURS.*{problem}"):
        parse_business_hours(value)


def test_decisions() -> None:
    open_, closed = at(2026, 12, 2, 10), at(2026, 12, 2, 22)
    assert decide_answer(AnswerMode.OPERATOR, operator_configured=False, hours=HOURS, now=closed).who == "operator"
    assert decide_answer(AnswerMode.AGENT, operator_configured=True, hours=HOURS, now=open_).who == "agent"
    no_operator = decide_answer(AnswerMode.AUTO, operator_configured=False, hours=HOURS, now=open_)
    assert (no_operator.who, no_operator.reason) == ("agent", "no operator configured")
    after_hours = decide_answer(AnswerMode.AUTO, operator_configured=True, hours=HOURS, now=closed)
    assert (after_hours.who, after_hours.reason) == ("agent", "outside business hours")
    daytime = decide_answer(AnswerMode.AUTO, operator_configured=True, hours=HOURS, now=open_, operator_timeout_s=15)
    assert (daytime.who, daytime.agent_after_s) == ("operator", 15)
    no_hours = decide_answer(AnswerMode.AUTO, operator_configured=True, hours=None, now=closed)
    assert no_hours.who == "operator"


@pytest.mark.parametrize(("status", "takes_over"), [("no-answer", True), ("busy", True), ("failed", True),
                                                   ("completed", False), ("answered", False)])
def test_agent_takes_over_only_a_missed_dial_in_auto_mode(status: str, takes_over: bool) -> None:
    daytime = decide_answer(AnswerMode.AUTO, operator_configured=True, hours=HOURS, now=at(2026, 12, 2, 10))
    assert agent_takes_over(daytime, status) is takes_over
    operator_only = decide_answer(AnswerMode.OPERATOR, operator_configured=True, hours=HOURS, now=at(2026, 12, 2, 10))
    assert not agent_takes_over(operator_only, status)
