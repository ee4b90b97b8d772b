"""The history's SQL builder: every value bound, LIKE wildcards literal, conditions only for what is asked."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from switchboard.routes.call_filters import BadFilter, parse_filter
from switchboard.store.call_query import CallFilter, like_pattern, search_sql


def test_no_filter_is_keyset_paging_only() -> None:
    sql, args = search_sql(CallFilter(), 50, None)
    assert args == [50, None]
    assert "WHERE ($2::bigint IS NULL OR c.id < $2) ORDER BY c.id DESC LIMIT $1" in sql


def test_values_are_bound_never_spliced() -> None:
    evil = "x'; DROP TABLE calls; --"
    sql, args = search_sql(CallFilter(direction=evil, query=evil, urgency="emergency"), 10, 7)
    assert evil not in sql and "DROP" not in sql
    assert args == [10, 7, evil, "emergency", like_pattern(evil), evil]


def test_like_pattern_takes_wildcards_and_backslash_literally() -> None:
    assert like_pattern(r"50%_a\b") == r"%50\%\_a\\b%"


def test_parse_filter_reads_every_parameter() -> None:
    f = parse_filter({"live": "TRUE", "direction": "inbound", "answered_by": "agent", "urgency": "urgent",
                      "lead_status": "open", "since": "2026-12-01", "until": "2026-12-02T10:00:00+01:00",
                      "q": "  Joanne  "})
    assert f == CallFilter(live=True, direction="inbound", answered_by="agent", urgency="urgent", lead_status="open",
                           since=datetime(2026, 12, 1, tzinfo=UTC),
                           until=datetime.fromisoformat("2026-12-02T10:00:00+01:00"), query="Joanne")
    assert parse_filter({"q": "   ", "urgency": ""}) == CallFilter()


@pytest.mark.parametrize("params", [{"direction": "sideways"}, {"live": "yes"}, {"until": "2026-13-01"},
                                    {"q": "x" * 201}])
def test_parse_filter_refuses_what_it_cannot_filter_on(params: dict[str, str]) -> None:
    with pytest.raises(BadFilter, match=next(iter(params))):
        parse_filter(params)
