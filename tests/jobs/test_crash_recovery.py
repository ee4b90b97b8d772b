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
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from switchboard.jobs import JobQueue
from switchboard.store import PgStore

SCRIPT = Path(__file__).with_name("crash_worker.py")
ROOT = Path(__file__).resolve().parents[2]
JOBS = 8
HOLD_S = 1.0
FRESH_S = HOLD_S - 0.2
"""An effect applied less than this long ago belongs to a handler still inside its hold (it sleeps ``HOLD_S``
after the insert returns): it cannot have asked to complete its job yet."""
FIRST = "crash-first"
"""``application_name`` of the first worker's connections, to see them gone after the kill."""

SCHEMA = """
CREATE TABLE crash_runs (id serial PRIMARY KEY, job_id bigint NOT NULL, attempt int NOT NULL, pid int NOT NULL);
CREATE TABLE crash_effects (key text PRIMARY KEY, job_id bigint NOT NULL, pid int NOT NULL,
                            applied_at timestamptz NOT NULL DEFAULT clock_timestamp());
-- Every claim of a job (attempts goes up), with the state it was taken from.
CREATE TABLE crash_claims (job_id bigint NOT NULL, attempt int NOT NULL, from_status text NOT NULL,
                           lease_expired bool);
CREATE FUNCTION crash_log_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.attempts > OLD.attempts THEN
        INSERT INTO crash_claims VALUES (NEW.id, NEW.attempts, OLD.status, OLD.locked_until <= now());
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER crash_log_claim AFTER UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION crash_log_claim();
"""
MID_JOB = f"""
SELECT (SELECT count(*) FROM jobs WHERE status = 'done') >= 2
   AND EXISTS (SELECT FROM jobs WHERE status = 'pending')
   AND EXISTS (SELECT FROM jobs j JOIN crash_effects e ON e.job_id = j.id
               WHERE j.status = 'running' AND e.applied_at > now() - interval '{FRESH_S} seconds')
"""
"""The kill condition, one snapshot: jobs done, jobs not started, and a handler inside its hold (effect applied,
outcome not recorded)."""


@pytest.fixture
async def db(pg_migrated_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(pg_migrated_dsn)
    await conn.execute(SCHEMA)
    try:
        yield conn
    finally:
        await conn.close()


def with_app_name(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(query="&".join(filter(None, [parts.query, f"application_name={name}"]))))


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


def is_stopped(pid: int) -> bool:
    """Whether the process is stopped (state ``T``): it runs no code, sends no statement."""
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] in ("T", "t")


async def freeze(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGSTOP)
    async with asyncio.timeout(5):
        while True:  # the signal is sent; the process stops at its next return to user space
            if is_stopped(proc.pid):
                return
            await asyncio.sleep(0.001)


async def kill_mid_job(proc: asyncio.subprocess.Process, db: asyncpg.Connection) -> None:
    """SIGKILL ``proc`` in a state where :data:`MID_JOB` holds.

    The condition is checked again with the worker frozen (SIGSTOP), so it still holds when the kill lands however
    long this process takes to send it. Only statements the worker had sent before the freeze can still change the
    database, and none of them can complete the handler seen inside its hold.
    """
    async with asyncio.timeout(30):
        while True:
            assert proc.returncode is None, "the worker exited before the kill (see workers.log)"
            if await db.fetchval(MID_JOB):
                await freeze(proc)
                if await db.fetchval(MID_JOB):
                    proc.send_signal(signal.SIGKILL)
                    await proc.wait()
                    return
                proc.send_signal(signal.SIGCONT)
            await asyncio.sleep(0.02)


async def test_sigkill_mid_job_then_restart_completes_every_job_once(
    db: asyncpg.Connection, store: PgStore, pg_migrated_dsn: str, tmp_path: Path
) -> None:
    queue = JobQueue(store)
    ids: list[int] = []
    for i in range(JOBS):
        job_id = await queue.enqueue("crash", {"key": f"effect-{i}"}, dedupe_key=f"crash:{i}")
        assert job_id is not None
        ids.append(job_id)
    log = tmp_path / "workers.log"

    first = await spawn(with_app_name(pg_migrated_dsn, FIRST), log)
    try:
        await kill_mid_job(first, db)
    finally:
        if first.returncode is None:
            first.send_signal(signal.SIGKILL)
            await first.wait()
    assert first.returncode == -signal.SIGKILL
    # A statement the dead worker had sent may still run; once its server sessions are gone nothing of it can.
    await wait_for(db, f"SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE application_name = '{FIRST}')", 20)
    at_kill = {r["id"]: (r["status"], r["attempts"]) for r in await db.fetch("SELECT id, status, attempts FROM jobs")}

    second = await spawn(pg_migrated_dsn, log)
    try:
        await wait_for(db, f"SELECT count(*) = {JOBS} FROM jobs WHERE status = 'done'", 60)
    finally:
        second.send_signal(signal.SIGTERM)
        await second.wait()
    assert second.returncode == 0, log.read_text()

    jobs = {job.id: job for job in await queue.list_jobs()}
    assert set(jobs) == set(ids) and all(job.status == "done" for job in jobs.values())
    # Every effect applied exactly once (the key is the primary key, a re-run inserts nothing), by its own job.
    effects = {r["key"]: (r["job_id"], r["pid"]) for r in await db.fetch("SELECT key, job_id, pid FROM crash_effects")}
    assert sorted((key, job_id) for key, (job_id, _) in effects.items()) == sorted(
        (f"effect-{i}", ids[i]) for i in range(JOBS))  # fmt: skip
    effect_pid = {job_id: pid for job_id, pid in effects.values()}
    runs: dict[int, list[tuple[int, int]]] = {job_id: [] for job_id in ids}
    for r in await db.fetch("SELECT job_id, attempt, pid FROM crash_runs ORDER BY attempt, id"):
        runs[r["job_id"]].append((r["attempt"], r["pid"]))

    claims: dict[int, list[tuple[int, str, bool | None]]] = {job_id: [] for job_id in ids}
    for r in await db.fetch("SELECT * FROM crash_claims ORDER BY attempt"):
        claims[r["job_id"]].append((r["attempt"], r["from_status"], r["lease_expired"]))

    # At least once, whatever the interleaving: a job is claimed once when due, and again only once the lease of
    # its claim ran out (never once done); each claim runs the handler once at most (one of the killed worker may
    # not have got to it); the killed worker's runs come before the new one's; the job's outcome is that of its
    # last claim, whose run is the last one.
    for job_id, job in jobs.items():
        mine, taken = runs[job_id], claims[job_id]
        assert [a for a, _, _ in taken] == list(range(1, job.attempts + 1)), taken
        assert [(state, expired) for _, state, expired in taken] == [("pending", None)] + [("running", True)] * (
            len(taken) - 1), taken  # fmt: skip
        attempts, pids = [a for a, _ in mine], [p for _, p in mine]
        assert len(set(attempts)) == len(attempts), mine
        assert pids == sorted(pids, key=lambda pid: pid == second.pid) and set(pids) <= {first.pid, second.pid}, mine
        assert mine and (job.attempts, job.result) == (mine[-1][0], {"pid": mine[-1][1]}), (job, mine)
        status, attempts_then = at_kill[job_id]
        if status == "done":  # completed before the kill: never run again
            assert pids[-1] == first.pid and job.attempts == attempts_then, (job, mine)
        else:  # running (interrupted) or pending at the kill: completed by the new worker
            assert status in ("running", "pending") and pids[-1] == second.pid, (status, job, mine)
            assert job.attempts > attempts_then, (status, job, mine)

    # The kill landed mid-way: jobs done, a job inside its hold (its effect applied by the killed worker, kept
    # through the re-run), and a job the killed worker never ran.
    assert sum(status == "done" for status, _ in at_kill.values()) >= 2
    assert any(at_kill[j][0] == "running" and effect_pid[j] == first.pid and runs[j][-1][1] == second.pid
               for j in ids)  # fmt: skip
    assert any(all(pid == second.pid for _, pid in runs[j]) for j in ids)
