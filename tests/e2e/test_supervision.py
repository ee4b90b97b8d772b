"""A background task that crashes is restarted; one that keeps crashing fails /healthz and is named in /readyz.

Before supervision, any of these crashes cancelled the lifespan: the registry drained and refused every stream
while /healthz kept answering 200, so an orchestrator kept sending calls to the zombie.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from switchboard.admission import Admission
from switchboard.call.registry import CallRegistry
from switchboard.lifecycle import Lifecycle
from switchboard.store import PgStore
from switchboard.supervisor import RestartPolicy, Supervisor
from tests.e2e.conftest import fresh_database, running_server
from tests.e2e.test_media_errors import Call, stream_then

pytestmark = pytest.mark.e2e


def lifecycle(max_crashes: int) -> Lifecycle:
    policy = RestartPolicy(min_backoff_s=0.05, max_backoff_s=0.2, max_crashes=max_crashes, window_s=600)
    return Lifecycle(Admission(10, 50), CallRegistry(), Supervisor(policy))


async def until(http: httpx.AsyncClient, path: str, check: Callable[[httpx.Response], bool],
                within_s: float = 60) -> httpx.Response:
    async with asyncio.timeout(within_s):
        while not check(response := await http.get(path)):  # noqa: ASYNC110 -- polling the server
            await asyncio.sleep(0.1)
    return response


def task(ready: httpx.Response, name: str) -> dict[str, Any]:
    tasks: dict[str, dict[str, Any]] = ready.json()["checks"]["tasks"]
    return tasks[name]


async def test_job_worker_that_keeps_crashing_fails_healthz_and_is_named(pg_dsn: str, tmp_path: Path) -> None:
    dsn = await fresh_database(pg_dsn, "supervise")
    async with running_server(dsn, tmp_path, transcriber="null", lifecycle=lifecycle(max_crashes=3)) as server, \
            httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        assert (await http.get("/healthz")).status_code == 200
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("ALTER TABLE jobs RENAME TO jobs_gone")  # every claim now fails: not an outage
        finally:
            await conn.close()
        health = await until(http, "/healthz", lambda r: r.status_code == 503)
        assert set(health.json()["dead"]) == {"job-worker"}
        ready = await http.get("/readyz")
        worker = task(ready, "job-worker")
        assert ready.status_code == 503 and ready.json()["status"] == "unhealthy"
        assert worker["state"] == "dead" and worker["crashes"] == 3 and "StoreQueryError" in worker["last_error"]
        assert task(ready, "segment-writer")["state"] == "running"
        # the rest of the instance still works: a call is recorded and ended (read from the database: the API's
        # call view lists the call's jobs, whose table is gone)
        call, code, _, _ = await stream_then(server, http, _stop)
        assert code == 1000
        store = await PgStore.connect(dsn)
        try:
            async with asyncio.timeout(30):
                while (row := await store.get_call(call.call_sid)) is None or row.ended_at is None:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
        finally:
            await store.close()
        assert row.end_reason == "stop" and row.media_ms == 1000


async def test_job_worker_is_restarted_and_runs_jobs_again(pg_dsn: str, tmp_path: Path) -> None:
    dsn = await fresh_database(pg_dsn, "supervise")
    async with running_server(dsn, tmp_path, transcriber="null", lifecycle=lifecycle(max_crashes=1000)) as server, \
            httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("ALTER TABLE jobs RENAME TO jobs_gone")
            await until(http, "/readyz", lambda r: task(r, "job-worker")["crashes"] >= 2)
            assert (await http.get("/healthz")).status_code == 200  # restarting is not dead
            await conn.execute("ALTER TABLE jobs_gone RENAME TO jobs")
        finally:
            await conn.close()
        await until(http, "/readyz", lambda r: task(r, "job-worker")["state"] == "running")
        call, _, _, _ = await stream_then(server, http, _stop)
        await call.stored()
        async with asyncio.timeout(60):  # the restarted worker runs the call's post-call jobs
            while True:
                jobs = (await http.get(f"/api/calls/{call.call_sid}", headers=server.auth())).json()["jobs"]
                if jobs and all(job["status"] == "done" for job in jobs):
                    break
                await asyncio.sleep(0.2)


async def _stop(ws: Any, call: Call) -> None:
    await ws.send(call.msg("stop", stop={"accountSid": "AC" + "0" * 32, "callSid": call.call_sid}))
