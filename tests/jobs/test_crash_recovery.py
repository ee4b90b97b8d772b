"""SIGKILL a worker process mid-job, start another: every job completes, each effect is applied exactly once.

The worker runs in a real subprocess (``crash_worker.py``) against the test database, so nothing of it survives
the kill except what PostgreSQL holds: the jobs it had claimed stay ``running`` under a lease nobody renews.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from switchboard.jobs import JobQueue
from switchboard.store import PgStore

SCRIPT = Path(__file__).with_name("crash_worker.py")
ROOT = Path(__file__).resolve().parents[2]
JOBS = 6
HOLD_S = 0.6

SCHEMA = """
CREATE TABLE crash_runs (id serial PRIMARY KEY, job_id bigint NOT NULL, attempt int NOT NULL, pid int NOT NULL);
CREATE TABLE crash_effects (key text PRIMARY KEY, job_id bigint NOT NULL, pid int NOT NULL);
"""


@pytest.fixture
async def db(pg_migrated_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_migrated_dsn)
    await conn.execute(SCHEMA)
    try:
        yield conn
    finally:
        await conn.close()


async def spawn(dsn: str, log: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("ab") as sink:
        return await asyncio.create_subprocess_exec(sys.executable, str(SCRIPT), dsn, str(HOLD_S), env=env,
                                                    cwd=ROOT, stdout=sink, stderr=sink)  # fmt: skip


async def wait_for(db: asyncpg.Connection, query: str, timeout_s: float) -> None:
    async with asyncio.timeout(timeout_s):
        while True:  # polling the database: another process changes it
            if await db.fetchval(query):
                return
            await asyncio.sleep(0.02)


async def test_sigkill_mid_job_then_restart_completes_every_job_once(
    db: asyncpg.Connection, store: PgStore, pg_migrated_dsn: str, tmp_path: Path
) -> None:
    queue = JobQueue(store)
    ids = [await queue.enqueue("crash", {"key": f"effect-{i}"}, dedupe_key=f"crash:{i}") for i in range(JOBS)]
    log = tmp_path / "workers.log"

    first = await spawn(pg_migrated_dsn, log)
    try:
        # Mid-way: some jobs done, and a handler inside its hold (effect applied, outcome not yet recorded).
        await wait_for(db, "SELECT count(*) >= 2 FROM jobs WHERE status = 'done'", 20)
        await wait_for(db, "SELECT count(*) > 0 FROM jobs j JOIN crash_effects e ON e.job_id = j.id "
                           "WHERE j.status = 'running'", 5)  # fmt: skip
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    assert first.returncode == -signal.SIGKILL
    await asyncio.sleep(0.2)  # let the server finish a statement the dead client had already sent
    interrupted = {r["id"] for r in await db.fetch("SELECT id FROM jobs WHERE status = 'running'")}
    assert interrupted, "the kill must land while a job is running"
    assert await db.fetchval("SELECT count(*) FROM jobs WHERE status = 'pending'") > 0, "and before the end"

    second = await spawn(pg_migrated_dsn, log)
    try:
        await wait_for(db, f"SELECT count(*) = {JOBS} FROM jobs WHERE status = 'done'", 20)
    finally:
        second.send_signal(signal.SIGTERM)
        await second.wait()
    assert second.returncode == 0, log.read_text()

    jobs = {job.id: job for job in await queue.list()}
    assert set(jobs) == set(ids) and all(job.status == "done" for job in jobs.values())
    effects = await db.fetch("SELECT key, job_id FROM crash_effects ORDER BY key")
    assert [(r["key"], r["job_id"]) for r in effects] == sorted((f"effect-{i}", ids[i]) for i in range(JOBS))
    runs = await db.fetch("SELECT job_id, attempt, pid FROM crash_runs ORDER BY id")
    for job_id in interrupted:  # ran twice (at least once), first in the killed process, then in the new one
        mine = [(r["attempt"], r["pid"]) for r in runs if r["job_id"] == job_id]
        assert mine == [(1, first.pid), (2, second.pid)]
        assert jobs[job_id].attempts == 2 and jobs[job_id].result == {"pid": second.pid}
    for job_id in set(ids) - interrupted:  # everything else ran exactly once
        assert [r["attempt"] for r in runs if r["job_id"] == job_id] == [1]
