"""JobWorker against a real PostgreSQL: results, retries with backoff, failures, leases, wake-up, drain, outages."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import pytest

from switchboard.jobs import Job, JobQueue, JobWorker, PermanentJobError, RetryJob, RetryPolicy
from switchboard.store import PgStore, StoreUnavailable

FAST = RetryPolicy(base_s=0.05, max_s=0.2)


@contextlib.asynccontextmanager
async def running(*workers: JobWorker) -> AsyncIterator[None]:
    async with asyncio.TaskGroup() as group:
        for worker in workers:
            group.create_task(worker.run())
        try:
            yield
        finally:
            for worker in workers:
                await worker.aclose()


async def settled(queue: JobQueue, job_id: int | None, timeout_s: float = 15.0) -> Job:
    assert job_id is not None
    async with asyncio.timeout(timeout_s):
        while True:
            job = await queue.get(job_id)
            assert job is not None
            if job.status in ("done", "failed"):
                return job
            await asyncio.sleep(0.02)


@pytest.fixture
def queue(store: PgStore) -> JobQueue:
    return JobQueue(store)


def test_retry_policy_grows_with_jitter_and_caps() -> None:
    policy, rng = RetryPolicy(base_s=1.0, max_s=8.0), random.Random(7)
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [policy.delay(attempt, rng) for _ in range(200)]
        assert all(max(1.0, ceiling / 2) <= d <= ceiling for d in delays)
        assert len(set(delays)) > 1 or ceiling == 1.0


async def test_results_are_stored(queue: JobQueue) -> None:
    async def handler(job: Job) -> Mapping[str, Any]:
        return {"doubled": job.payload["n"] * 2}

    worker = JobWorker(queue, {"double": handler}, poll_s=0.05)
    ids = [await queue.enqueue("double", {"n": n}) for n in range(5)]
    async with running(worker):
        jobs = [await settled(queue, job_id) for job_id in ids]
    assert [job.result for job in jobs] == [{"doubled": 2 * n} for n in range(5)]
    assert all(job.status == "done" and job.attempts == 1 for job in jobs)
    stats = worker.stats()
    assert (stats.claimed, stats.done, stats.retried, stats.failed, stats.running) == (5, 5, 0, 0, 0)


async def test_two_workers_run_each_job_once(queue: JobQueue) -> None:
    runs: Counter[int] = Counter()
    by_worker: Counter[str] = Counter()

    def handler_for(name: str) -> Any:
        async def handler(job: Job) -> None:
            runs[job.id] += 1
            by_worker[name] += 1
            await asyncio.sleep(0.01)

        return handler

    ids = [await queue.enqueue("k", {"i": i}) for i in range(30)]
    workers = [JobWorker(queue, {"k": handler_for(name)}, concurrency=3, poll_s=0.02) for name in ("a", "b")]
    async with running(*workers):
        for job_id in ids:
            await settled(queue, job_id)
    assert set(runs) == set(ids) and set(runs.values()) == {1}
    assert by_worker["a"] > 0 and by_worker["b"] > 0


async def test_retryable_failures_back_off_then_succeed(queue: JobQueue) -> None:
    seen: list[float] = []

    async def flaky(job: Job) -> Mapping[str, Any]:
        seen.append(time.monotonic())
        if len(seen) < 3:
            raise StoreUnavailable("database blinked")  # retryable by its own attribute
        return {"ok": True}

    worker = JobWorker(queue, {"k": flaky}, poll_s=0.01, retry=FAST)
    job_id = await queue.enqueue("k", {})
    async with running(worker):
        job = await settled(queue, job_id)
    assert (job.status, job.attempts, job.result) == ("done", 3, {"ok": True})
    assert job.last_error == "StoreUnavailable: database blinked"  # the last failure stays for diagnosis
    gaps = [b - a for a, b in itertools.pairwise(seen)]
    assert gaps[0] >= 0.025 and gaps[1] >= 0.05  # U(b/2, b) with b = 0.05, then 0.1
    assert worker.stats().retried == 2


async def test_attempts_run_out_then_failed(queue: JobQueue) -> None:
    calls = 0

    async def broken(job: Job) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("unforeseen")  # no `retryable` attribute: retried

    job_id = await queue.enqueue("k", {}, max_attempts=3)
    async with running(JobWorker(queue, {"k": broken}, poll_s=0.01, retry=FAST)):
        job = await settled(queue, job_id)
    assert (job.status, job.attempts, calls, job.last_error) == ("failed", 3, 3, "RuntimeError: unforeseen")


async def test_permanent_error_fails_at_once_and_retry_job_sets_delay(queue: JobQueue) -> None:
    async def refuse(job: Job) -> None:
        raise PermanentJobError("invalid number")

    retried_at: list[float] = []

    async def later(job: Job) -> None:
        retried_at.append(time.monotonic())
        if job.attempts == 1:
            raise RetryJob("rate limited", delay_s=0.3)

    bad = await queue.enqueue("refuse", {})
    slow = await queue.enqueue("later", {})
    async with running(JobWorker(queue, {"refuse": refuse, "later": later}, poll_s=0.01, retry=FAST)):
        refused, done = await settled(queue, bad), await settled(queue, slow)
    assert (refused.status, refused.attempts, refused.last_error) == ("failed", 1, "PermanentJobError: invalid number")
    assert done.status == "done" and retried_at[1] - retried_at[0] >= 0.3


async def test_unserialisable_result_fails_the_job(queue: JobQueue) -> None:
    async def odd(job: Job) -> Mapping[str, Any]:
        return {"when": object()}

    job_id = await queue.enqueue("k", {})
    async with running(JobWorker(queue, {"k": odd}, poll_s=0.01)):
        job = await settled(queue, job_id)
    assert job.status == "failed" and job.attempts == 1 and "not JSON" in (job.last_error or "")


async def test_job_of_a_dead_worker_is_taken_over(queue: JobQueue) -> None:
    lease_s = 1.0
    job_id = await queue.enqueue("k", {})
    started = time.monotonic()  # before the claim: its lease cannot run out earlier than lease_s from here
    [claimed] = await queue.claim(["k"], 1, lease_s=lease_s, worker="crashed")  # claimed, then never renewed
    assert (claimed.id, claimed.attempts) == (job_id, 1)

    async def handler(job: Job) -> Mapping[str, Any]:
        return {"by": "survivor"}

    async with running(JobWorker(queue, {"k": handler}, poll_s=0.02, name="survivor")):
        job = await settled(queue, job_id)
    assert job.attempts == 2 and job.locked_by == "survivor" and job.result == {"by": "survivor"}
    # Not before the lease ran out (the lease is on the database clock: a little slack for the two clocks).
    assert time.monotonic() - started >= lease_s * 0.9


async def test_leases_are_renewed_while_a_handler_runs(queue: JobQueue) -> None:
    # The lease is renewed every lease_s / 3, so a renewal may come up to 2/3 of a lease late and the job is still
    # held: wide enough for a loaded machine. The handler outlasts the lease by far (several renewals needed):
    # without renewals the other worker, polling every 20 ms, would take the job over and run it again.
    lease_s, hold_s = 2.0, 4.5
    runs = 0

    async def long(job: Job) -> None:
        nonlocal runs
        runs += 1
        await asyncio.sleep(hold_s)

    job_id = await queue.enqueue("k", {})
    workers = [JobWorker(queue, {"k": long}, lease_s=lease_s, poll_s=0.02) for _ in range(2)]
    async with running(*workers):
        job = await settled(queue, job_id, timeout_s=hold_s + 30)
    assert runs == 1 and job.attempts == 1  # the lease was renewed, nobody took the job over


async def test_notify_wakes_an_idle_worker(queue: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    done, listening, polled = asyncio.Event(), asyncio.Event(), asyncio.Event()
    listen, claim = queue.listening, queue.claim

    @contextlib.asynccontextmanager
    async def spied_listening(on_notify: Callable[[str], None]) -> AsyncIterator[Any]:
        async with listen(on_notify) as conn:
            listening.set()  # the server has acknowledged LISTEN: every NOTIFY committed from now on is delivered
            yield conn

    async def spied_claim(*args: Any, **kwargs: Any) -> list[Job]:
        jobs = await claim(*args, **kwargs)
        polled.set()
        return jobs

    monkeypatch.setattr(queue, "listening", spied_listening)
    monkeypatch.setattr(queue, "claim", spied_claim)

    async def handler(job: Job) -> None:
        done.set()

    worker = JobWorker(queue, {"k": handler}, poll_s=120)
    async with running(worker):
        async with asyncio.timeout(10):  # LISTEN is up, and the first claim (which found nothing) is over
            await listening.wait()
            await polled.wait()
        await queue.enqueue("k", {})
        async with asyncio.timeout(10):  # far below the next poll (2 min away): only the NOTIFY can wake it
            await done.wait()


async def test_aclose_drains_then_releases(queue: JobQueue) -> None:
    finish, stuck = await queue.enqueue("finish", {}), await queue.enqueue("stuck", {})
    quick_started, stuck_started, closing = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def quick(job: Job) -> None:
        quick_started.set()
        await closing.wait()  # still running when aclose() is called: only the drain lets it finish

    async def forever(job: Job) -> None:
        stuck_started.set()
        await asyncio.Event().wait()

    worker = JobWorker(queue, {"finish": quick, "stuck": forever}, poll_s=0.01, drain_s=3.0)
    async with asyncio.TaskGroup() as group:
        group.create_task(worker.run())
        async with asyncio.timeout(10):
            await quick_started.wait()
            await stuck_started.wait()
        # aclose() stops claiming before its first await; this callback runs at that await, so `quick` ends
        # during the drain, with drain_s to spare on a loaded machine.
        asyncio.get_running_loop().call_soon(closing.set)
        await worker.aclose()
    quick_job, stuck_job = await queue.get(finish), await queue.get(stuck)  # type: ignore[arg-type]
    assert quick_job is not None and quick_job.status == "done" and quick_job.attempts == 1
    assert stuck_job is not None and stuck_job.status == "pending" and stuck_job.locked_until is None
    assert stuck_job.attempts == 1 and worker.stats().done == 1


async def test_worker_survives_a_database_outage(pg_proxy: Any, store: PgStore) -> None:
    proxied = await PgStore.connect(pg_proxy.dsn, max_size=3, run_migrations=False, command_timeout=1)
    try:
        ran = asyncio.Event()

        async def handler(job: Job) -> None:
            ran.set()

        worker = JobWorker(JobQueue(proxied), {"k": handler}, poll_s=0.05, listen=False)
        async with running(worker):
            await pg_proxy.stop()
            await asyncio.sleep(0.2)  # claims fail meanwhile
            await JobQueue(store).enqueue("k", {})  # direct connection: the database itself is up
            await pg_proxy.start()
            async with asyncio.timeout(5):
                await ran.wait()
        assert worker.stats().db_errors >= 1
    finally:
        await proxied.close()
