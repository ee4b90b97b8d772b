"""``JobQueue``: durable jobs in the ``jobs`` table (``migrations/0002_leads_jobs.sql``), on asyncpg.

A job is a row before it runs. Workers claim due rows with ``FOR UPDATE SKIP LOCKED`` (concurrent workers never
block on or share a row) and lease them until ``locked_until``; a worker that dies stops renewing, the lease runs
out and the next claim takes the job again. Execution is therefore at-least-once and handlers must be idempotent.
Each claim increments ``attempts``, so ``(id, attempts)`` names one claim and every later write is fenced by it: a
worker whose lease expired cannot overwrite the outcome of the claim that replaced it. An expired lease on the
last attempt fails the job, so a job that kills its worker does not loop forever.

Times come from the database clock (``now()``), the one clock every instance shares. JSON goes over the wire as
text (``::text::jsonb``) so the queue does not depend on the pool's type codecs.
"""

from __future__ import annotations

import builtins
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal, cast

import asyncpg
import orjson

from switchboard.store.pg import PgStore, translate_errors

JobStatus = Literal["pending", "running", "done", "failed"]
STATUSES: Final = frozenset({"pending", "running", "done", "failed"})
CHANNEL: Final = "switchboard_jobs"
"""NOTIFY channel; the table's insert trigger signals it with the job's kind."""

_COLUMNS: Final = (
    "id, kind, call_sid, payload::text AS payload, dedupe_key, status, attempts, max_attempts, next_run_at,"
    " locked_until, locked_by, last_error, result::text AS result, created_at, updated_at"
)
_ENQUEUE: Final = """
INSERT INTO jobs (kind, call_sid, payload, dedupe_key, next_run_at, max_attempts)
VALUES ($1, $2, $3::text::jsonb, $4, coalesce($5, now()), $6)
ON CONFLICT (dedupe_key) DO NOTHING RETURNING id
"""
_CLAIM: Final = f"""
WITH picked AS (
    SELECT id FROM jobs
    WHERE kind = ANY($1::text[]) AND attempts < max_attempts
      AND ((status = 'pending' AND next_run_at <= now()) OR (status = 'running' AND locked_until <= now()))
    ORDER BY next_run_at, id LIMIT $2
    FOR UPDATE SKIP LOCKED
)
UPDATE jobs AS j SET status = 'running', attempts = j.attempts + 1, locked_until = now() + make_interval(secs => $3),
                     locked_by = $4, updated_at = now()
FROM picked WHERE j.id = picked.id
RETURNING {_COLUMNS.replace("id,", "j.id,", 1)}
"""
_FENCE: Final = "WHERE id = $1 AND attempts = $2 AND status = 'running'"
_COMPLETE: Final = f"""
UPDATE jobs SET status = 'done', result = $3::text::jsonb, locked_until = NULL, updated_at = now() {_FENCE}
"""
# $3 = delay in seconds; the job fails instead when its attempts are used up (or $5: not retryable).
_SETTLE: Final = f"""
UPDATE jobs SET status = CASE WHEN $5 AND attempts < max_attempts THEN 'pending' ELSE 'failed' END,
                next_run_at = now() + make_interval(secs => $3), locked_until = NULL, last_error = $4,
                updated_at = now()
{_FENCE} RETURNING status
"""
_RELEASE: Final = f"""
UPDATE jobs SET status = 'pending', next_run_at = now(), locked_until = NULL, updated_at = now() {_FENCE}
"""
_EXTEND: Final = """
UPDATE jobs SET locked_until = now() + make_interval(secs => $3)
WHERE status = 'running' AND (id, attempts) IN (SELECT * FROM unnest($1::bigint[], $2::int[]))
"""
_REAP: Final = """
UPDATE jobs SET status = 'failed', locked_until = NULL, updated_at = now(),
                last_error = 'lease expired on the last attempt (the worker stopped or died); was: '
                             || coalesce(last_error, 'no error')
WHERE status = 'running' AND locked_until <= now() AND attempts >= max_attempts
"""
_LIST: Final = f"""
SELECT {_COLUMNS} FROM jobs WHERE ($1::text IS NULL OR call_sid = $1) AND ($2::text IS NULL OR status = $2)
ORDER BY id LIMIT $3
"""
_STATS: Final = """
SELECT count(*) FILTER (WHERE status = 'pending') AS pending,
       count(*) FILTER (WHERE status = 'pending' AND next_run_at <= now()) AS due,
       count(*) FILTER (WHERE status = 'running') AS running,
       count(*) FILTER (WHERE status = 'done') AS done,
       count(*) FILTER (WHERE status = 'failed') AS failed,
       extract(epoch FROM now() - min(next_run_at) FILTER (WHERE status = 'pending' AND next_run_at <= now()))
           AS oldest_due_s
FROM jobs
"""


@dataclass(frozen=True, slots=True)
class Job:
    """One row of ``jobs``. ``attempts`` counts claims so far (the running one included)."""

    id: int
    kind: str
    call_sid: str | None
    payload: dict[str, Any]
    dedupe_key: str | None
    status: str
    attempts: int
    max_attempts: int
    next_run_at: datetime
    locked_until: datetime | None
    locked_by: str | None
    last_error: str | None
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        """The API's view: times as ISO 8601."""
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = value.isoformat() if isinstance(value, datetime) else value
        return out


@dataclass(frozen=True, slots=True)
class JobSpec:
    """One job to enqueue with :meth:`JobQueue.enqueue_many` (the arguments of :meth:`JobQueue.enqueue`)."""

    kind: str
    payload: Mapping[str, Any]
    call_sid: str | None = None
    dedupe_key: str | None = None
    run_at: datetime | None = None
    max_attempts: int = 8

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {self.max_attempts}")
        if self.run_at is not None and self.run_at.utcoffset() is None:
            raise ValueError(f"run_at must be timezone-aware, got {self.run_at!r}")

    def args(self) -> tuple[Any, ...]:
        body = orjson.dumps(dict(self.payload)).decode()
        return self.kind, self.call_sid, body, self.dedupe_key, self.run_at, self.max_attempts


@dataclass(frozen=True, slots=True)
class QueueStats:
    """Counts by status; ``oldest_due_s`` is how long the oldest due job has waited (backlog, for /readyz)."""

    pending: int
    due: int
    running: int
    done: int
    failed: int
    oldest_due_s: float | None


class JobQueue:
    """Enqueue and inspect jobs; the claim/settle methods are the :class:`~.worker.JobWorker`'s side."""

    def __init__(self, pool_or_store: asyncpg.Pool | PgStore) -> None:
        self._pool = pool_or_store.pool if isinstance(pool_or_store, PgStore) else pool_or_store

    async def enqueue(
        self,
        kind: str,
        payload: Mapping[str, Any],
        *,
        call_sid: str | None = None,
        dedupe_key: str | None = None,
        run_at: datetime | None = None,
        max_attempts: int = 8,
    ) -> int | None:
        """Record a job; its id, or None when a job with ``dedupe_key`` already exists (whatever its status)."""
        spec = JobSpec(kind, payload, call_sid, dedupe_key, run_at, max_attempts)
        with translate_errors("enqueue"):
            job_id = await self._pool.fetchval(_ENQUEUE, *spec.args())
        return None if job_id is None else int(job_id)

    async def enqueue_many(self, specs: Sequence[JobSpec]) -> builtins.list[int | None]:
        """Record several jobs in one transaction: all of them or none (a crash cannot leave half a plan)."""
        ids: builtins.list[int | None] = []
        with translate_errors("enqueue_many"):
            async with self._pool.acquire() as conn, conn.transaction():
                for spec in specs:
                    job_id = await conn.fetchval(_ENQUEUE, *spec.args())
                    ids.append(None if job_id is None else int(job_id))
        return ids

    async def get(self, job_id: int) -> Job | None:
        with translate_errors("get_job"):
            row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM jobs WHERE id = $1", job_id)
        return None if row is None else _job(row)

    async def list_jobs(
        self, call_sid: str | None = None, status: JobStatus | None = None, *, limit: int = 200
    ) -> builtins.list[Job]:
        """Jobs in creation order, optionally of one call and/or one status."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status must be one of {sorted(STATUSES)}, got {status!r}")
        with translate_errors("list_jobs"):
            rows = await self._pool.fetch(_LIST, call_sid, status, limit)
        return [_job(row) for row in rows]

    async def stats(self) -> QueueStats:
        with translate_errors("job_stats"):
            row = await self._pool.fetchrow(_STATS)
        oldest = row["oldest_due_s"]
        return QueueStats(row["pending"], row["due"], row["running"], row["done"], row["failed"],
                          None if oldest is None else float(oldest))  # fmt: skip

    async def claim(self, kinds: Sequence[str], limit: int, *, lease_s: float, worker: str) -> builtins.list[Job]:
        """Lease up to ``limit`` due jobs of ``kinds`` (pending, or running with an expired lease)."""
        with translate_errors("claim_jobs"):
            rows = await self._pool.fetch(_CLAIM, list(kinds), limit, lease_s, worker)
        return sorted((_job(row) for row in rows), key=lambda job: (job.next_run_at, job.id))

    async def extend(self, claims: Sequence[tuple[int, int]], lease_s: float) -> int:
        """Renew the leases of running claims ``(id, attempts)``; returns how many are still held."""
        if not claims:
            return 0
        ids, attempts = zip(*claims, strict=True)
        with translate_errors("extend_leases"):
            status = await self._pool.execute(_EXTEND, list(ids), list(attempts), lease_s)
        return _count(status)

    async def complete(self, job: Job, result: Mapping[str, Any] | None) -> bool:
        """Mark the claim done with its result; False if the claim was lost (lease expired and re-claimed)."""
        body = None if result is None else orjson.dumps(dict(result)).decode()
        with translate_errors("complete_job"):
            return _count(await self._pool.execute(_COMPLETE, job.id, job.attempts, body)) == 1

    async def settle_failure(self, job: Job, error: str, *, retryable: bool, delay_s: float) -> JobStatus | None:
        """Schedule another attempt after ``delay_s`` or fail the job; the new status, None if the claim was lost."""
        with translate_errors("settle_job"):
            status = await self._pool.fetchval(_SETTLE, job.id, job.attempts, delay_s, error[:4000], retryable)
        return None if status is None else cast(JobStatus, status)

    async def release(self, job: Job) -> bool:
        """Give an interrupted claim back (shutdown): due at once; the attempt it used stays counted."""
        with translate_errors("release_job"):
            return _count(await self._pool.execute(_RELEASE, job.id, job.attempts)) == 1

    async def reap_expired(self) -> int:
        """Fail jobs whose last attempt's lease expired; returns how many."""
        with translate_errors("reap_jobs"):
            return _count(await self._pool.execute(_REAP))

    @contextlib.asynccontextmanager
    async def listening(self, on_notify: Callable[[str], None]) -> AsyncIterator[asyncpg.Connection]:
        """Hold a pooled connection that LISTENs on :data:`CHANNEL`, calling ``on_notify(kind)`` per new job.

        Yields the connection so the caller can wait for it to be lost (``add_termination_listener``)."""
        with translate_errors("listen"):
            conn = await self._pool.acquire()

        def callback(_conn: object, _pid: int, _channel: str, kind: str) -> None:
            on_notify(kind)

        try:
            with translate_errors("listen"):
                await conn.add_listener(CHANNEL, callback)
            yield conn
        finally:
            # The callback is dropped before UNLISTEN is sent, so if that fails (connection lost) the pool can
            # still take the connection back (and discard it when dead): nothing is left to clean up.
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await conn.remove_listener(CHANNEL, callback)
            await self._pool.release(conn)


def _job(row: asyncpg.Record) -> Job:
    values = dict(row)
    values["payload"] = orjson.loads(values["payload"])
    values["result"] = None if values["result"] is None else orjson.loads(values["result"])
    return Job(**values)


def _count(status: str) -> int:
    """Rows affected, from a command tag such as ``UPDATE 3``."""
    return int(status.rsplit(" ", 1)[-1])
