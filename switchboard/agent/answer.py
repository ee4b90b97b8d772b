"""Who answers an inbound call: the operator, the agent, or the operator first and the agent if they miss it.

``SWITCHBOARD_ANSWER=operator|agent|auto`` (default ``operator``, today's behaviour). ``auto``: the agent answers
when no operator number is configured or outside ``SWITCHBOARD_BUSINESS_HOURS``; otherwise the operator is rung
for ``operator_timeout_s`` and the agent takes the call if the ``<Dial>`` ends unanswered (Twilio reports the
outcome as ``DialCallStatus`` on the dial's action URL:
https://www.twilio.com/docs/voice/twiml/dial#dialcallstatus).

``SWITCHBOARD_BUSINESS_HOURS`` reads like ``Mon-Fri 08:00-18:00, Sat 09:00-13:00; Europe/London``: comma-separated
day ranges with one time window each, then an optional IANA zone after ``;`` (default Europe/London). ``always``
means open all the time. A window may not cross midnight (write two). Everything here is pure: the time is an
argument.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum
from typing import Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_ZONE: Final = "Europe/London"
_WINDOW: Final = re.compile(
    r"^(?P<days>[a-z]{3}(?:-[a-z]{3})?)\s+(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})$")
MISSED_DIAL: Final = frozenset({"no-answer", "busy", "failed", "canceled"})


class AnswerConfigError(ValueError):
    """A bad ``SWITCHBOARD_ANSWER`` or ``SWITCHBOARD_BUSINESS_HOURS``; the message names the variable and value."""


class AnswerMode(StrEnum):
    OPERATOR = "operator"
    AGENT = "agent"
    AUTO = "auto"


def parse_answer_mode(value: str | None) -> AnswerMode:
    if value is None or not value.strip():
        return AnswerMode.OPERATOR
    try:
        return AnswerMode(value.strip().lower())
    except ValueError:
        raise AnswerConfigError(f"SWITCHBOARD_ANSWER must be operator, agent or auto, not {value!r}") from None


@dataclass(frozen=True, slots=True)
class BusinessHours:
    """Open windows per weekday (0 = Monday) in ``zone``; an empty tuple of windows means always open."""

    windows: tuple[tuple[int, time, time], ...]
    zone: ZoneInfo

    def is_open(self, at: datetime) -> bool:
        """``at`` must be timezone-aware (a naive time would silently be read in the wrong zone)."""
        if at.tzinfo is None:
            raise ValueError("is_open needs a timezone-aware datetime")
        if not self.windows:
            return True
        local = at.astimezone(self.zone)
        now = local.time().replace(tzinfo=None)
        return any(day == local.weekday() and start <= now < end for day, start, end in self.windows)


def parse_business_hours(value: str) -> BusinessHours:
    text, _, zone_name = value.strip().partition(";")
    text = text.lower()
    zone = _zone(zone_name.strip() or DEFAULT_ZONE, value)
    if text.strip() in ("always", "24/7"):
        return BusinessHours((), zone)
    windows: list[tuple[int, time, time]] = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        match = _WINDOW.match(part)
        if match is None:
            raise AnswerConfigError(f"SWITCHBOARD_BUSINESS_HOURS: cannot read {part!r} in {value!r} "
                                    "(expected e.g. 'Mon-Fri 08:00-18:00')")
        start, end = _clock(match["start"], value), _clock(match["end"], value)
        if not start < end:
            raise AnswerConfigError(f"SWITCHBOARD_BUSINESS_HOURS: {part!r} ends before it starts "
                                    "(a window may not cross midnight)")
        windows += [(day, start, end) for day in _days(match["days"], value)]
    if not windows:
        raise AnswerConfigError(f"SWITCHBOARD_BUSINESS_HOURS has no windows: {value!r}")
    return BusinessHours(tuple(windows), zone)


@dataclass(frozen=True, slots=True)
class AnswerDecision:
    """``operator`` with ``agent_after_s`` set: ring the operator that long, then the agent takes over."""

    who: Literal["operator", "agent"]
    reason: str
    agent_after_s: int | None = None


def decide_answer(mode: AnswerMode, *, operator_configured: bool, hours: BusinessHours | None, now: datetime,
                  operator_timeout_s: int = 20) -> AnswerDecision:
    if mode is AnswerMode.AGENT:
        return AnswerDecision("agent", "agent mode")
    if mode is AnswerMode.OPERATOR:
        return AnswerDecision("operator", "operator mode")
    if not operator_configured:
        return AnswerDecision("agent", "no operator configured")
    if hours is not None and not hours.is_open(now):
        return AnswerDecision("agent", "outside business hours")
    return AnswerDecision("operator", "business hours", agent_after_s=operator_timeout_s)


def agent_takes_over(decision: AnswerDecision, dial_call_status: str) -> bool:
    """After the operator's ``<Dial>`` ends: does the agent take the call?"""
    return decision.agent_after_s is not None and dial_call_status.strip().lower() in MISSED_DIAL


def _days(spec: str, value: str) -> list[int]:
    first, _, last = spec.partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise AnswerConfigError(f"SWITCHBOARD_BUSINESS_HOURS: unknown day in {spec!r} of {value!r}")
    start, end = DAYS.index(first), DAYS.index(last or first)
    return [d % 7 for d in range(start, end + 1 if end >= start else end + 8)]


def _clock(text: str, value: str) -> time:
    hours, minutes = map(int, text.split(":"))
    if hours == 24 and minutes == 0:
        return time.max
    if not (0 <= hours < 24 and 0 <= minutes < 60):
        raise AnswerConfigError(f"SWITCHBOARD_BUSINESS_HOURS: {text!r} is not a time of day in {value!r}")
    return time(hours, minutes)


def _zone(name: str, value: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise AnswerConfigError(f"SWITCHBOARD_BUSINESS_HOURS: unknown time zone {name!r} in {value!r}") from None


__all__ = [
    "AnswerConfigError", "AnswerDecision", "AnswerMode", "BusinessHours", "agent_takes_over", "decide_answer",
    "parse_answer_mode", "parse_business_hours",
]
