"""``PgStore``: the :class:`~.base.Store` protocol on PostgreSQL through an asyncpg pool.

Every public method translates asyncpg and OS failures once, here, into :class:`~.errors.StoreUnavailable`
(retryable: connection refused or lost, server restarting or overloaded, timeouts) or
:class:`~.errors.StoreQueryError` (the statement itself was refused).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final

import asyncpg
import orjson

from .base import (
    LEAD_STATUSES,
    CallListing,
    CallMode,
    CallRecord,
    ExtractionRecord,
    LeadFields,
    LeadRecord,
    Segment,
    StreamPlacement,
    StreamRecord,
    status_applies,
)
from .call_query import CallFilter, search_sql
from .errors import StoreQueryError, StoreUnavailable
from .migrate import migrate

_CALL_COLUMNS: Final = (
    "id, call_sid, account_sid, from_number, to_number, direction, mode, status, status_seq, created_at,"
    " answered_at, started_at, ended_at, duration_s, media_ms, stream_sid, end_reason, recording_key,"
    " recording_status, providers, stats, recording_incomplete, usage, turn_latencies_ms"
)
# The voice webhook is authoritative for the call's metadata but never replaces a known value with NULL, and
# never touches a status a callback already stored (it may be newer).
_CREATE_CALL: Final = """
INSERT INTO calls AS c (call_sid, account_sid, from_number, to_number, direction, mode, status, created_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (call_sid) DO UPDATE SET
    account_sid = coalesce(excluded.account_sid, c.account_sid),
    from_number = coalesce(excluded.from_number, c.from_number),
    to_number = coalesce(excluded.to_number, c.to_number),
    direction = coalesce(excluded.direction, c.direction),
    mode = coalesce(excluded.mode, c.mode),
    status = coalesce(c.status, excluded.status),
    created_at = least(c.created_at, excluded.created_at)
"""
_ENSURE_CALL: Final = "INSERT INTO calls (call_sid, created_at) VALUES ($1, $2) ON CONFLICT (call_sid) DO NOTHING"
_LOCK_STATUS: Final = "SELECT status, status_seq FROM calls WHERE call_sid = $1 FOR UPDATE"
# $2 = the decision of status_applies(); metadata and a missing duration are filled in either way.
_APPLY_STATUS: Final = """
UPDATE calls SET
    status = CASE WHEN $2 THEN $3 ELSE status END,
    status_seq = CASE WHEN $2 THEN greatest(status_seq, $4::int) ELSE status_seq END,
    duration_s = CASE WHEN $2 THEN coalesce($5, duration_s) ELSE coalesce(duration_s, $5) END,
    answered_at = CASE WHEN $2 AND $3 = 'in-progress' THEN coalesce(answered_at, $6) ELSE answered_at END,
    account_sid = coalesce(account_sid, $7),
    from_number = coalesce(from_number, $8),
    to_number = coalesce(to_number, $9),
    direction = coalesce(direction, $10)
WHERE call_sid = $1
"""
_STREAM_STARTED: Final = """
INSERT INTO calls AS c (call_sid, stream_sid, started_at, created_at, instance_id, recording_key)
VALUES ($1, $2, $3, $3, $4, $5)
ON CONFLICT (call_sid) DO UPDATE SET
    stream_sid = coalesce(c.stream_sid, excluded.stream_sid),
    started_at = coalesce(c.started_at, excluded.started_at),
    instance_id = coalesce(excluded.instance_id, c.instance_id),
    recording_key = coalesce(c.recording_key, excluded.recording_key)
"""
_ORPHANED_CALLS: Final = f"""
SELECT {_CALL_COLUMNS} FROM calls WHERE instance_id = $1 AND ended_at IS NULL AND started_at IS NOT NULL
ORDER BY id
"""
# A stream's place: serialised per call by the row lock; an earlier stream still live is placed by the wall time
# since it started (its media time runs at the wall clock's pace in a real call).
_PLACE_STREAM: Final = """
SELECT coalesce(max(part), 0) AS last,
       greatest(0,
                max(offset_ms + coalesce(media_ms, (extract(epoch FROM $2::timestamptz - started_at) * 1000)::bigint)),
                (extract(epoch FROM $2::timestamptz - min(started_at)) * 1000)::bigint) AS end_ms
FROM call_streams WHERE call_sid = $1
"""
_STREAM_PLACED: Final = "SELECT part, offset_ms FROM call_streams WHERE call_sid = $1 AND stream_sid = $2"
_INSERT_STREAM: Final = """
INSERT INTO call_streams (call_sid, part, stream_sid, offset_ms, started_at, recording_key)
VALUES ($1, $2, $3, $4, $5, $6)
"""
_REOPEN_CALL: Final = "UPDATE calls SET ended_at = NULL, end_reason = NULL WHERE call_sid = $1"
_END_STREAM: Final = """
UPDATE call_streams SET ended_at = coalesce(ended_at, $3), end_reason = coalesce(end_reason, $4),
    media_ms = greatest(media_ms, $5), recording_key = coalesce($6, recording_key)
WHERE call_sid = $1 AND part = $2
RETURNING offset_ms
"""
_LATER_STREAM: Final = "SELECT EXISTS (SELECT 1 FROM call_streams WHERE call_sid = $1 AND part > $2)"
_CALL_STREAMS: Final = """
SELECT part, stream_sid, offset_ms, started_at, ended_at, media_ms, recording_key, end_reason
FROM call_streams WHERE call_sid = $1 ORDER BY part
"""
# $10: no later stream of the call has started (this end is the call's end); $4 is on the call's timeline.
_END_CALL: Final = """
INSERT INTO calls AS c
    (call_sid, created_at, ended_at, end_reason, media_ms, recording_key, recording_status, providers, stats,
     recording_incomplete)
VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (call_sid) DO UPDATE SET
    recording_incomplete = c.recording_incomplete OR excluded.recording_incomplete,
    ended_at = CASE WHEN $10 THEN coalesce(c.ended_at, excluded.ended_at) ELSE c.ended_at END,
    end_reason = CASE WHEN $10 THEN coalesce(c.end_reason, excluded.end_reason) ELSE c.end_reason END,
    media_ms = greatest(c.media_ms, excluded.media_ms),
    recording_key = CASE WHEN $10 THEN coalesce(excluded.recording_key, c.recording_key) ELSE c.recording_key END,
    recording_status = coalesce(excluded.recording_status, c.recording_status),
    providers = ARRAY(
        SELECT p FROM unnest(c.providers || excluded.providers) WITH ORDINALITY AS t (p, i)
        GROUP BY p ORDER BY min(i)
    ),
    stats = excluded.stats || coalesce(c.stats, '{}'::jsonb)
"""
_ADD_SEGMENTS: Final = """
INSERT INTO transcript_segments (call_sid, track, seq, start_ms, end_ms, text, provider, confidence, part)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::text[], $7::text[], $8::real[],
                     $9::int[])
ON CONFLICT (call_sid, part, track, seq) DO NOTHING
"""
_GET_CALL: Final = f"SELECT {_CALL_COLUMNS} FROM calls WHERE call_sid = $1"
_LIST_CALLS: Final = (
    f"SELECT {_CALL_COLUMNS} FROM calls WHERE ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $1"
)
_GET_SEGMENTS: Final = """
SELECT call_sid, track, seq, start_ms, end_ms, text, provider, confidence, part
FROM transcript_segments WHERE call_sid = $1 ORDER BY start_ms, track, part, seq
"""

_CONSUME_TOKEN: Final = """
WITH expired AS (DELETE FROM stream_tokens WHERE expires_at < now() - interval '1 hour')
INSERT INTO stream_tokens (nonce, call_sid, expires_at) VALUES ($1, $2, $3)
ON CONFLICT (nonce) DO NOTHING
RETURNING 1
"""
_RECORD_USAGE: Final = "UPDATE calls SET usage = $2, turn_latencies_ms = $3 WHERE call_sid = $1"
_TOUCH_CALL: Final = "INSERT INTO calls (call_sid) VALUES ($1) ON CONFLICT (call_sid) DO NOTHING"
# Serialises version numbering (and lead linking) per call without blocking segment inserts (FK key-share locks).
_LOCK_CALL: Final = "SELECT 1 FROM calls WHERE call_sid = $1 FOR NO KEY UPDATE"
_FINAL_VERSION: Final = "SELECT version FROM extractions WHERE call_sid = $1 AND final AND part = $2"
_ADD_EXTRACTION: Final = """
INSERT INTO extractions (call_sid, version, final, data, source, model, fallback_reason, part)
SELECT $1, coalesce(max(version), 0) + 1, $2, $3, $4, $5, $6, $7 FROM extractions WHERE call_sid = $1
RETURNING version
"""
_EXTRACTION_COLUMNS: Final = "id, call_sid, version, final, data, source, model, fallback_reason, created_at, part"
_LATEST_EXTRACTION: Final = f"""
SELECT {_EXTRACTION_COLUMNS} FROM extractions WHERE call_sid = $1 AND (final OR NOT $2)
ORDER BY final DESC, version DESC LIMIT 1
"""
_LEAD_SELECT: Final = """
SELECT l.id, l.call_sid, l.phone, l.name, l.callback_number, l.address, l.postcode, l.urgency, l.issue_category,
       l.segment, l.summary, l.status, l.call_count, l.created_at, l.updated_at,
       ARRAY(SELECT lc.call_sid FROM lead_calls lc WHERE lc.lead_id = l.id ORDER BY lc.created_at, lc.call_sid)
         AS calls,
       ARRAY(SELECT f FROM extractions e, jsonb_array_elements_text(e.data -> 'needs_confirmation') AS f
             WHERE e.call_sid = l.call_sid AND e.final
               AND e.version = (SELECT max(x.version) FROM extractions x WHERE x.call_sid = e.call_sid AND x.final)
               AND e.data ->> f = to_jsonb(l) ->> (CASE f WHEN 'caller_name' THEN 'name' ELSE f END)) AS unconfirmed
FROM leads l
"""
# ``unconfirmed``: the contact fields whose value the lead's latest call heard with low confidence (its latest final
# extraction's ``needs_confirmation``: one is made after each stream of the call), while the lead still holds that
# value.
_GET_LEAD: Final = _LEAD_SELECT + "WHERE l.id = $1"
_LEAD_FOR_CALL: Final = _LEAD_SELECT + "JOIN lead_calls c ON c.lead_id = l.id WHERE c.call_sid = $1"
_LIST_LEADS: Final = _LEAD_SELECT + (
    "WHERE ($2::bigint IS NULL OR l.id < $2) AND (NOT $3 OR l.status <> 'closed') ORDER BY l.id DESC LIMIT $1"
)
_SET_LEAD_STATUS: Final = "UPDATE leads SET status = $2, updated_at = now() WHERE id = $1 AND status <> $2"
# One lock per caller number (or per call when withheld): two calls from one number ending together must not
# both open a lead.
_LOCK_LEAD_KEY: Final = "SELECT pg_advisory_xact_lock(hashtextextended('lead:' || $1, 0))"
_LINKED_LEAD: Final = "SELECT lead_id FROM lead_calls WHERE call_sid = $1"
_OPEN_LEAD: Final = "SELECT id FROM leads WHERE phone = $1 AND status <> 'closed' FOR UPDATE"
_INSERT_LEAD: Final = """
INSERT INTO leads (call_sid, phone, name, callback_number, address, postcode, urgency, issue_category, segment,
                   summary)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id
"""
# $10 = the lead's id; $11 = whether this call is new to the lead (counted, becomes the latest). A call that is
# already linked updates only while it is still the latest, so a late retry cannot roll back newer facts.
_MERGE_LEAD: Final = """
UPDATE leads SET
    call_sid = $1,
    name = coalesce($2, name), callback_number = coalesce($3, callback_number), address = coalesce($4, address),
    postcode = coalesce($5, postcode), urgency = coalesce($6, urgency),
    issue_category = coalesce($7, issue_category), segment = coalesce($8, segment), summary = coalesce($9, summary),
    call_count = call_count + CASE WHEN $11 THEN 1 ELSE 0 END,
    updated_at = now()
WHERE id = $10 AND ($11 OR call_sid = $1)
"""
_LINK_CALL: Final = "INSERT INTO lead_calls (call_sid, lead_id) VALUES ($1, $2)"

_UNAVAILABLE: Final = (
    OSError,  # refused, reset, unreachable, socket file missing
    TimeoutError,  # command_timeout or connect timeout
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08
    asyncpg.exceptions.OperatorInterventionError,  # 57: shutdown, restarting, statement timeout
    asyncpg.exceptions.InsufficientResourcesError,  # 53: too many connections, disk full
    asyncpg.exceptions.TransactionRollbackError,  # 40: serialization failure, deadlock
    asyncpg.exceptions.ReadOnlySQLTransactionError,  # 25006: we are talking to a standby after failover
    asyncpg.InterfaceError,  # connection closed under us, pool closing
)


@contextmanager
def _translated(operation: str) -> Iterator[None]:
    """Map foreign errors to the store's error tree; the original is kept as ``__cause__``."""
    try:
        yield
    except asyncpg.exceptions.DataError as exc:  # an InterfaceError, but caused by the data: not retryable
        raise StoreQueryError(f"{operation}: invalid data: {exc}") from exc
    except _UNAVAILABLE as exc:
        raise StoreUnavailable(f"{operation}: database unavailable: {exc!r}") from exc
    except asyncpg.PostgresError as exc:
        raise StoreQueryError(f"{operation}: {exc}") from exc


translate_errors = _translated
"""Public name of the error translation, for modules that run their own SQL on the store's pool (the job queue)."""


def _aware(at: datetime) -> datetime:
    # asyncpg would read a naive datetime as the *host's* local time: refuse the ambiguity.
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError(f"timestamps must be timezone-aware, got naive {at!r}")
    return at


async def _init_connection(conn: asyncpg.Connection) -> None:
    # jsonb as Python objects both ways, so ``stats`` round-trips as a dict.
    await conn.set_type_codec(
        "jsonb",
        encoder=lambda value: orjson.dumps(value).decode(),
        decoder=orjson.loads,
        schema="pg_catalog",
    )


class PgStore:
    """PostgreSQL store over an asyncpg pool; build it with :meth:`connect`."""

    def __init__(self, pool: asyncpg.Pool, *, close_timeout_s: float = 5.0) -> None:
        self._pool = pool
        self._close_timeout_s = close_timeout_s

    @classmethod
    async def connect(
        cls,
        dsn: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        command_timeout: float = 10.0,
        run_migrations: bool = True,
    ) -> PgStore:
        """Open a pool and apply pending migrations; ``StoreUnavailable`` if the server cannot be reached."""
        with _translated("connect"):
            pool = await asyncpg.create_pool(
                dsn,
                min_size=min_size,
                max_size=max_size,
                command_timeout=command_timeout,
                init=_init_connection,
            )
        store = cls(pool)
        try:
            if run_migrations:
                await migrate(pool)
        except BaseException:
            await store.close()
            raise
        return store

    async def create_call(
        self,
        call_sid: str,
        *,
        account_sid: str | None,
        from_number: str | None,
        to_number: str | None,
        direction: str | None,
        mode: CallMode | None,
        status: str | None,
        at: datetime,
    ) -> None:
        with _translated("create_call"):
            await self._pool.execute(
                _CREATE_CALL, call_sid, account_sid, from_number, to_number, direction, mode, status, _aware(at)
            )

    async def apply_status(
        self,
        call_sid: str,
        *,
        status: str,
        sequence: int | None,
        duration_s: int | None,
        at: datetime,
        account_sid: str | None = None,
        from_number: str | None = None,
        to_number: str | None = None,
        direction: str | None = None,
    ) -> bool:
        """Decide under a row lock, so concurrent callbacks for one call are applied one at a time."""
        with _translated("apply_status"):
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(_ENSURE_CALL, call_sid, _aware(at))
                row = await conn.fetchrow(_LOCK_STATUS, call_sid)
                applied = status_applies(row["status"], row["status_seq"], status, sequence)
                await conn.execute(
                    _APPLY_STATUS,
                    call_sid, applied, status, sequence, duration_s, at,
                    account_sid, from_number, to_number, direction,
                )  # fmt: skip
        return applied

    async def stream_started(self, call_sid: str, *, stream_sid: str, at: datetime, instance_id: str | None = None,
                             recording_key: str | None = None, after_ms: int = 0) -> StreamPlacement:
        with _translated("stream_started"):
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(_STREAM_STARTED, call_sid, stream_sid, _aware(at), instance_id, recording_key)
                await conn.execute(_LOCK_CALL, call_sid)
                placed = await conn.fetchrow(_STREAM_PLACED, call_sid, stream_sid)
                if placed is not None:
                    return StreamPlacement(placed["part"], placed["offset_ms"])
                found = await conn.fetchrow(_PLACE_STREAM, call_sid, at)
                placement = StreamPlacement(found["last"] + 1, max(after_ms, found["end_ms"] or 0))
                await conn.execute(_INSERT_STREAM, call_sid, placement.part, stream_sid, placement.offset_ms, at,
                                   recording_key)
                if placement.part > 1:
                    await conn.execute(_REOPEN_CALL, call_sid)
        return placement

    async def call_streams(self, call_sid: str) -> list[StreamRecord]:
        with _translated("call_streams"):
            rows = await self._pool.fetch(_CALL_STREAMS, call_sid)
        return [StreamRecord(**dict(row)) for row in rows]

    async def orphaned_calls(self, instance_id: str) -> list[CallRecord]:
        with _translated("orphaned_calls"):
            rows = await self._pool.fetch(_ORPHANED_CALLS, instance_id)
        return [_call_record(row) for row in rows]

    async def end_call(
        self,
        call_sid: str,
        *,
        at: datetime,
        reason: str,
        media_ms: int,
        recording_key: str | None,
        recording_status: str | None,
        providers: Sequence[str],
        stats: Mapping[str, Any],
        recording_incomplete: bool = False,
        part: int = 1,
    ) -> None:
        """First end wins for ``ended_at``/``end_reason`` and existing ``stats`` keys, and only the latest stream
        ends the call; media_ms (the call's timeline: this stream's offset + length) only grows; a later non-null
        recording key/status replaces the earlier one (uploads finish after the call); ``recording_incomplete``
        is never cleared once set."""
        with _translated("end_call"):
            async with self._pool.acquire() as conn, conn.transaction():
                offset = await conn.fetchval(_END_STREAM, call_sid, part, _aware(at), reason, media_ms, recording_key)
                latest = not await conn.fetchval(_LATER_STREAM, call_sid, part)
                await conn.execute(
                    _END_CALL,
                    call_sid, at, reason, (offset or 0) + media_ms, recording_key, recording_status,
                    list(dict.fromkeys(providers)), dict(stats), recording_incomplete, latest,
                )  # fmt: skip

    async def consume_stream_token(self, nonce: str, call_sid: str, expires_at: datetime) -> bool:
        """Record a stream token as used; False if some stream (on any instance) already used it."""
        with _translated("consume_stream_token"):
            return await self._pool.fetchval(_CONSUME_TOKEN, nonce, call_sid, _aware(expires_at)) is not None

    async def add_segments(self, segments: Sequence[Segment]) -> None:
        """One statement (``unnest`` of column arrays) per batch; duplicates are skipped by the unique key."""
        if not segments:
            return
        rows = [(s.call_sid, s.track, s.seq, s.start_ms, s.end_ms, s.text, s.provider, s.confidence, s.part)
                for s in segments]
        columns = [list(column) for column in zip(*rows, strict=True)]
        with _translated("add_segments"):
            await self._pool.execute(_ADD_SEGMENTS, *columns)

    async def record_usage(self, call_sid: str, *, usage: Mapping[str, Any], turn_latencies_ms: Sequence[int]) -> None:
        """An agent call's usage and turn latencies (replaces what was stored: the call's totals)."""
        with _translated("record_usage"):
            await self._pool.execute(_RECORD_USAGE, call_sid, dict(usage), list(turn_latencies_ms))

    async def get_call(self, call_sid: str) -> CallRecord | None:
        with _translated("get_call"):
            row = await self._pool.fetchrow(_GET_CALL, call_sid)
        return None if row is None else _call_record(row)

    async def list_calls(self, *, limit: int = 50, before_id: int | None = None) -> list[CallRecord]:
        """Keyset pagination on ``id``: stable while new calls arrive, unlike OFFSET."""
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        with _translated("list_calls"):
            rows = await self._pool.fetch(_LIST_CALLS, limit, before_id)
        return [_call_record(row) for row in rows]

    async def search_calls(self, f: CallFilter, *, limit: int = 50, before_id: int | None = None,
                           ) -> list[CallListing]:
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        sql, args = search_sql(f, limit, before_id)
        with _translated("search_calls"):
            rows = await self._pool.fetch(sql, *args)
        out = []
        for row in rows:
            values = dict(row)
            lead = [values.pop(k) for k in ("lead_id", "lead_name", "lead_status", "lead_urgency")]
            values["providers"] = tuple(values["providers"])
            out.append(CallListing(CallRecord(**values), *lead))
        return out

    async def get_segments(self, call_sid: str) -> list[Segment]:
        with _translated("get_segments"):
            rows = await self._pool.fetch(_GET_SEGMENTS, call_sid)
        return [Segment(**dict(row)) for row in rows]

    @property
    def pool(self) -> asyncpg.Pool:
        """The asyncpg pool, shared with the job queue (same database, same codecs)."""
        return self._pool

    async def add_extraction(
        self,
        call_sid: str,
        data: Mapping[str, Any],
        source: str,
        model: str | None,
        fallback_reason: str | None,
        *,
        final: bool = False,
        part: int = 1,
    ) -> int:
        with _translated("add_extraction"):
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(_TOUCH_CALL, call_sid)
                await conn.execute(_LOCK_CALL, call_sid)
                stored = await conn.fetchval(_FINAL_VERSION, call_sid, part) if final else None
                if stored is not None:
                    return int(stored)
                version = await conn.fetchval(
                    _ADD_EXTRACTION, call_sid, final, dict(data), source, model, fallback_reason, part
                )
        return int(version)

    async def latest_extraction(self, call_sid: str, *, final_only: bool = False) -> ExtractionRecord | None:
        with _translated("latest_extraction"):
            row = await self._pool.fetchrow(_LATEST_EXTRACTION, call_sid, final_only)
        return None if row is None else ExtractionRecord(**dict(row))

    async def upsert_lead(self, call_sid: str, fields: LeadFields) -> LeadRecord:
        """Dedupe rules: see ``migrations/0002_leads_jobs.sql`` and :meth:`Store.upsert_lead`."""
        f = fields
        values = (f.phone, f.name, f.callback_number, f.address, f.postcode, f.urgency, f.issue_category, f.segment,
                  f.summary)  # fmt: skip
        with _translated("upsert_lead"):
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(_LOCK_LEAD_KEY, f.phone or call_sid)
                await conn.execute(_TOUCH_CALL, call_sid)
                linked = await conn.fetchval(_LINKED_LEAD, call_sid)
                if linked is not None:
                    await conn.execute(_MERGE_LEAD, call_sid, *values[1:], linked, False)
                    lead_id = int(linked)
                else:
                    open_id = await conn.fetchval(_OPEN_LEAD, f.phone) if f.phone else None
                    if open_id is None:
                        lead_id = int(await conn.fetchval(_INSERT_LEAD, call_sid, *values))
                    else:
                        lead_id = int(open_id)
                        await conn.execute(_MERGE_LEAD, call_sid, *values[1:], lead_id, True)
                    await conn.execute(_LINK_CALL, call_sid, lead_id)
                row = await conn.fetchrow(_GET_LEAD, lead_id)
        return _lead_record(row)

    async def get_lead(self, lead_id: int) -> LeadRecord | None:
        with _translated("get_lead"):
            row = await self._pool.fetchrow(_GET_LEAD, lead_id)
        return None if row is None else _lead_record(row)

    async def lead_for_call(self, call_sid: str) -> LeadRecord | None:
        with _translated("lead_for_call"):
            row = await self._pool.fetchrow(_LEAD_FOR_CALL, call_sid)
        return None if row is None else _lead_record(row)

    async def list_leads(self, *, limit: int = 50, before_id: int | None = None, open_only: bool = False,
                         ) -> list[LeadRecord]:
        """Keyset pagination on ``id`` (creation order); a lead updated by a later call keeps its place."""
        if limit < 1:
            raise ValueError(f"limit must be positive, got {limit}")
        with _translated("list_leads"):
            rows = await self._pool.fetch(_LIST_LEADS, limit, before_id, open_only)
        return [_lead_record(row) for row in rows]

    async def set_lead_status(self, lead_id: int, status: str) -> LeadRecord | None:
        """Idempotent: setting the status a lead already has changes nothing (``updated_at`` included)."""
        if status not in LEAD_STATUSES:
            raise ValueError(f"lead status must be one of {sorted(LEAD_STATUSES)}, got {status!r}")
        with _translated("set_lead_status"):
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(_SET_LEAD_STATUS, lead_id, status)
                row = await conn.fetchrow(_GET_LEAD, lead_id)
        return None if row is None else _lead_record(row)

    async def ping(self) -> None:
        with _translated("ping"):
            await self._pool.fetchval("SELECT 1")

    async def close(self) -> None:
        """Close gracefully; connections still busy after ``close_timeout_s`` are terminated."""
        try:
            async with asyncio.timeout(self._close_timeout_s):
                await self._pool.close()
        except TimeoutError:
            self._pool.terminate()


def _call_record(row: asyncpg.Record) -> CallRecord:
    values = dict(row)
    values["providers"] = tuple(values["providers"])
    values["turn_latencies_ms"] = tuple(values["turn_latencies_ms"] or ())
    return CallRecord(**values)


def _lead_record(row: asyncpg.Record) -> LeadRecord:
    values = dict(row)
    values["calls"] = tuple(values["calls"])
    values["unconfirmed"] = tuple(values["unconfirmed"])
    return LeadRecord(**values)
