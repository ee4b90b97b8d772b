"""Search and filters for the call history: one parameterised SQL statement built from a :class:`CallFilter`.

Pure (no I/O) so the statement is tested without a database; :meth:`PgStore.search_calls` runs it. Every value
is a bound parameter; the free-text search escapes LIKE's wildcards so a caller's ``%`` matches itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

LeadStatusFilter = Literal["new", "contacted", "closed", "open", "none"]

LISTING_COLUMNS: Final = (
    "c.id, c.call_sid, c.account_sid, c.from_number, c.to_number, c.direction, c.mode, c.status, c.status_seq,"
    " c.created_at, c.answered_at, c.started_at, c.ended_at, c.duration_s, c.media_ms, c.stream_sid, c.end_reason,"
    " c.recording_key, c.recording_status, c.providers, c.stats,"
    " l.id AS lead_id, l.name AS lead_name, l.status AS lead_status, l.urgency AS lead_urgency"
)


@dataclass(frozen=True, slots=True)
class CallFilter:
    """What the history may be narrowed to; None = no condition."""

    live: bool | None = None
    """True: streaming now (started, not ended); False: ended."""
    direction: str | None = None
    answered_by: str | None = None
    """The call's mode: ``operator``, ``agent`` or ``voicemail`` (nobody)."""
    urgency: str | None = None
    lead_status: LeadStatusFilter | None = None
    since: datetime | None = None
    until: datetime | None = None
    query: str | None = None
    """Free text: caller number, CallSid, the lead's name, postcode or address, or words said in the call."""


def like_pattern(text: str) -> str:
    """``%text%`` with LIKE's wildcards and escape character taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def search_sql(f: CallFilter, limit: int, before_id: int | None) -> tuple[str, list[Any]]:
    """The statement and its arguments: newest first, keyset-paged on ``calls.id``."""
    args: list[Any] = [limit, before_id]
    where = ["($2::bigint IS NULL OR c.id < $2)"]

    def bind(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if f.live is not None:
        where.append("c.started_at IS NOT NULL AND c.ended_at IS NULL" if f.live else "c.ended_at IS NOT NULL")
    if f.direction is not None:
        where.append(f"c.direction = {bind(f.direction)}")
    if f.answered_by is not None:
        where.append(f"c.mode = {bind(f.answered_by)}")
    if f.urgency is not None:
        where.append(f"l.urgency = {bind(f.urgency)}")
    if f.lead_status == "none":
        where.append("l.id IS NULL")
    elif f.lead_status == "open":
        where.append("l.status <> 'closed'")
    elif f.lead_status is not None:
        where.append(f"l.status = {bind(f.lead_status)}")
    if f.since is not None:
        where.append(f"c.created_at >= {bind(f.since)}")
    if f.until is not None:
        where.append(f"c.created_at < {bind(f.until)}")
    if f.query:
        pattern, exact = bind(like_pattern(f.query)), bind(f.query)
        where.append(
            f"(c.from_number ILIKE {pattern} OR c.to_number ILIKE {pattern} OR c.call_sid = {exact}"
            f" OR l.name ILIKE {pattern} OR l.postcode ILIKE {pattern} OR l.address ILIKE {pattern}"
            f" OR EXISTS (SELECT 1 FROM transcript_segments s WHERE s.call_sid = c.call_sid"
            f" AND s.text ILIKE {pattern}))"
        )
    sql = (f"SELECT {LISTING_COLUMNS} FROM calls c"
           " LEFT JOIN lead_calls lc ON lc.call_sid = c.call_sid LEFT JOIN leads l ON l.id = lc.lead_id"
           f" WHERE {' AND '.join(where)} ORDER BY c.id DESC LIMIT $1")
    return sql, args
