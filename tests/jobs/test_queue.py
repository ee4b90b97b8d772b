"""JobQueue against a real PostgreSQL: dedupe, SKIP LOCKED claims, fencing, retry/fail settling, reaping."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from switchboard.jobs import JobQueue, JobSpec
from switchboard.store import PgStore, StoreQueryError


@pytest.fixture
def queue(store: PgStore) -> JobQueue:
    return JobQueue(store)


async def test_enqueue_dedupes_and_round_trips(queue: JobQueue) -> None:
    job_id = await queue.enqueue("sms", {"to": "+447700900001", "n": [1, 2]}, call_sid="CA1", dedupe_key="sms:CA1")
    assert job_id is not None
    assert await queue.enqueue("sms", {"to": "other"}, call_sid="CA1", dedupe_key="sms:CA1") is None
    second = await queue.enqueue("sms", {}, call_sid="CA1")  # no key: never deduplicated
    assert second is not None and second != job_id
    job = await queue.get(job_id)
    assert job is not None
    assert (job.kind, job.call_sid, job.payload, job.status) == (
        "sms",
        "CA1",
        {"to": "+447700900001", "n": [1, 2]},
        "pending",
    )
    assert (job.attempts, job.max_attempts, job.result, job.locked_until) == (0, 8, None, None)
    assert job.to_json()["created_at"] == job.created_at.isoformat()
    assert [j.id for j in await queue.list_jobs(call_sid="CA1")] == [job_id, second]
    assert await queue.list_jobs(call_sid="CA2") == []
    assert await queue.get(10_000) is None


async def test_enqueue_validates(queue: JobQueue) -> None:
    with pytest.raises(ValueError):
        await queue.enqueue("x", {}, max_attempts=0)
    with pytest.raises(ValueError):
        await queue.enqueue("x", {}, run_at=datetime(2030, 1, 1))  # naive
    with pytest.raises(ValueError):
        await queue.list_jobs(status="exploded")  # type: ignore[arg-type]


async def test_claim_takes_due_jobs_of_known_kinds(queue: JobQueue) -> None:
    due = await queue.enqueue("extract", {"i": 1})
    await queue.enqueue("extract", {"i": 2}, run_at=datetime.now(UTC) + timedelta(hours=1))
    await queue.enqueue("unknown", {"i": 3})
    claimed = await queue.claim(["extract", "lead"], 10, lease_s=30, worker="w1")
    assert [job.id for job in claimed] == [due]
    job = claimed[0]
    assert (job.status, job.attempts, job.locked_by) == ("running", 1, "w1")
    assert job.locked_until is not None and job.locked_until > job.updated_at + timedelta(seconds=29)
    assert await queue.claim(["extract"], 10, lease_s=30, worker="w2") == []  # leased: not claimable
    stats = await queue.stats()
    assert (stats.pending, stats.due, stats.running, stats.done, stats.failed) == (2, 1, 1, 0, 0)
    assert stats.oldest_due_s is not None and stats.oldest_due_s >= 0


async def test_concurrent_claims_never_share_a_job(store: PgStore, pg_migrated_dsn: str) -> None:
    ids = {await JobQueue(store).enqueue("k", {"i": i}) for i in range(40)}
    others = [await PgStore.connect(pg_migrated_dsn, max_size=2, run_migrations=False) for _ in range(4)]
    try:
        rounds = await asyncio.gather(
            *(JobQueue(s).claim(["k"], 7, lease_s=30, worker=f"w{n}") for n, s in enumerate(others) for _ in range(2))
        )
    finally:
        for s in others:
            await s.close()
    claimed = [job.id for batch in rounds for job in batch]
    assert len(claimed) == len(set(claimed)) == 40  # 8 claims of 7 rows: every job once, none twice
    assert set(claimed) == ids


async def test_expired_lease_is_reclaimed_and_fences_the_old_claim(queue: JobQueue) -> None:
    await queue.enqueue("k", {})
    [old] = await queue.claim(["k"], 1, lease_s=0.05, worker="dead")
    await asyncio.sleep(0.1)
    [new] = await queue.claim(["k"], 1, lease_s=30, worker="alive")
    assert new.id == old.id and new.attempts == 2 and new.locked_by == "alive"
    assert await queue.complete(old, {"from": "dead"}) is False  # the expired claim cannot settle the job
    assert await queue.settle_failure(old, "late", retryable=True, delay_s=0) is None
    assert await queue.extend([(old.id, old.attempts)], 30) == 0
    assert await queue.extend([(new.id, new.attempts)], 30) == 1
    assert await queue.complete(new, {"sid": "SM1"}) is True
    done = await queue.get(new.id)
    assert done is not None and done.status == "done" and done.result == {"sid": "SM1"} and done.locked_until is None


async def test_settle_failure_retries_then_fails(queue: JobQueue, store: PgStore) -> None:
    job_id = await queue.enqueue("k", {}, max_attempts=2)
    [first] = await queue.claim(["k"], 1, lease_s=30, worker="w")
    assert await queue.settle_failure(first, "boom 1", retryable=True, delay_s=60) == "pending"
    waiting = await queue.get(first.id)
    assert waiting is not None and waiting.last_error == "boom 1"
    assert waiting.next_run_at - waiting.updated_at >= timedelta(seconds=59)
    assert await queue.claim(["k"], 1, lease_s=30, worker="w") == []  # not due for a minute
    async with store.pool.acquire() as conn:
        await conn.execute("UPDATE jobs SET next_run_at = now() WHERE id = $1", job_id)
    [second] = await queue.claim(["k"], 1, lease_s=30, worker="w")
    assert await queue.settle_failure(second, "boom 2", retryable=True, delay_s=0) == "failed"  # 2 of 2 used
    assert await queue.claim(["k"], 1, lease_s=30, worker="w") == []


async def test_not_retryable_fails_at_once(queue: JobQueue) -> None:
    await queue.enqueue("k", {})
    [job] = await queue.claim(["k"], 1, lease_s=30, worker="w")
    assert await queue.settle_failure(job, "bad number", retryable=False, delay_s=0) == "failed"
    [failed] = await queue.list_jobs(status="failed")
    assert failed.attempts == 1 and failed.last_error == "bad number"


async def test_expired_last_attempt_is_reaped_not_rerun(queue: JobQueue) -> None:
    job_id = await queue.enqueue("k", {}, max_attempts=1)
    await queue.claim(["k"], 1, lease_s=0.05, worker="dies")
    await asyncio.sleep(0.1)
    assert await queue.claim(["k"], 1, lease_s=30, worker="w") == []
    assert await queue.reap_expired() == 1
    job = await queue.get(job_id)  # type: ignore[arg-type]
    assert job is not None and job.status == "failed" and "lease expired" in (job.last_error or "")


async def test_release_makes_a_job_due_again(queue: JobQueue) -> None:
    await queue.enqueue("k", {})
    [job] = await queue.claim(["k"], 1, lease_s=30, worker="w")
    assert await queue.release(job) is True
    [again] = await queue.claim(["k"], 1, lease_s=30, worker="w")
    assert again.id == job.id and again.attempts == 2


async def test_enqueue_many_is_all_or_nothing(queue: JobQueue) -> None:
    ids = await queue.enqueue_many([JobSpec("extract", {}, "CA1", "extract:CA1"), JobSpec("archive", {}, "CA1")])
    assert len(ids) == 2 and None not in ids
    again = await queue.enqueue_many([JobSpec("extract", {}, "CA1", "extract:CA1"), JobSpec("lead", {}, "CA1")])
    assert again[0] is None and again[1] is not None
    with pytest.raises(StoreQueryError):
        await queue.enqueue_many([JobSpec("a", {}, "CA2"), JobSpec(None, {}, "CA2")])  # type: ignore[arg-type]
    assert await queue.list_jobs(call_sid="CA2") == []  # the first insert was rolled back with the second
    with pytest.raises(ValueError):
        JobSpec("x", {}, max_attempts=0)
