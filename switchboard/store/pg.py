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

from .base import CallMode, CallRecord, Segment, status_applies
from .errors import StoreQueryError, StoreUnavailable
from .migrate import migrate

_CALL_COLUMNS: Final = (
    "id, call_sid, account_sid, from_number, to_number, direction, mode, status, status_seq, created_at,"
    " answered_at, started_at, ended_at, duration_s, media_ms, stream_sid, end_reason, recording_key,"
    " recording_status, providers, stats"
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
INSERT INTO calls AS c (call_sid, stream_sid, started_at, created_at) VALUES ($1, $2, $3, $3)
ON CONFLICT (call_sid) DO UPDATE SET
    stream_sid = coalesce(c.stream_sid, excluded.stream_sid),
    started_at = coalesce(c.started_at, excluded.started_at)
"""
_END_CALL: Final = """
INSERT INTO calls AS c
    (call_sid, created_at, ended_at, end_reason, media_ms, recording_key, recording_status, providers, stats)
VALUES ($1, $2, $2, $3, $4, $5, $6, $7, $8)
ON CONFLICT (call_sid) DO UPDATE SET
    ended_at = coalesce(c.ended_at, excluded.ended_at),
    end_reason = coalesce(c.end_reason, excluded.end_reason),
    media_ms = greatest(c.media_ms, excluded.media_ms),
    recording_key = coalesce(excluded.recording_key, c.recording_key),
    recording_status = coalesce(excluded.recording_status, c.recording_status),
    providers = ARRAY(
        SELECT p FROM unnest(c.providers || excluded.providers) WITH ORDINALITY AS t (p, i)
        GROUP BY p ORDER BY min(i)
    ),
    stats = excluded.stats || coalesce(c.stats, '{}'::jsonb)
"""
_ADD_SEGMENTS: Final = """
INSERT INTO transcript_segments (call_sid, track, seq, start_ms, end_ms, text, provider, confidence)
SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::int[], $5::int[], $6::text[], $7::text[], $8::real[])
ON CONFLICT (call_sid, track, seq) DO NOTHING
"""
_GET_CALL: Final = f"SELECT {_CALL_COLUMNS} FROM calls WHERE call_sid = $1"
_LIST_CALLS: Final = (
    f"SELECT {_CALL_COLUMNS} FROM calls WHERE ($2::bigint IS NULL OR id < $2) ORDER BY id DESC LIMIT $1"
)
_GET_SEGMENTS: Final = """
SELECT call_sid, track, seq, start_ms, end_ms, text, provider, confidence
FROM transcript_segments WHERE call_sid = $1 ORDER BY start_ms, track, seq
"""

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
        mode: CallMode,
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

    async def stream_started(self, call_sid: str, *, stream_sid: str, at: datetime) -> None:
        with _translated("stream_started"):
            await self._pool.execute(_STREAM_STARTED, call_sid, stream_sid, _aware(at))

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
    ) -> None:
        """First end wins for ``ended_at``/``end_reason`` and existing ``stats`` keys; media_ms only grows;
        a later non-null recording key/status replaces the earlier one (uploads finish after the call)."""
        with _translated("end_call"):
            await self._pool.execute(
                _END_CALL,
                call_sid, _aware(at), reason, media_ms, recording_key, recording_status,
                list(dict.fromkeys(providers)), dict(stats),
            )  # fmt: skip

    async def add_segments(self, segments: Sequence[Segment]) -> None:
        """One statement (``unnest`` of column arrays) per batch; duplicates are skipped by the unique key."""
        if not segments:
            return
        rows = [(s.call_sid, s.track, s.seq, s.start_ms, s.end_ms, s.text, s.provider, s.confidence) for s in segments]
        columns = [list(column) for column in zip(*rows, strict=True)]
        with _translated("add_segments"):
            await self._pool.execute(_ADD_SEGMENTS, *columns)

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

    async def get_segments(self, call_sid: str) -> list[Segment]:
        with _translated("get_segments"):
            rows = await self._pool.fetch(_GET_SEGMENTS, call_sid)
        return [Segment(**dict(row)) for row in rows]

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
    return CallRecord(**values)
