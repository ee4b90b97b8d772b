"""A worker process for ``test_crash_recovery``: ``python crash_worker.py DSN HOLD_S``.

Runs a :class:`JobWorker` for kind ``crash``. The handler logs every execution in ``crash_runs``, applies its effect
idempotently (``crash_effects`` has the payload's key as primary key), then holds for ``HOLD_S`` seconds, the
window in which the test kills the process. SIGTERM stops it gracefully.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Mapping
from typing import Any

from switchboard.jobs import Job, JobQueue, JobWorker
from switchboard.store import PgStore


async def main(dsn: str, hold_s: float) -> None:
    store = await PgStore.connect(dsn, max_size=4, run_migrations=False)
    pid = os.getpid()

    async def handler(job: Job) -> Mapping[str, Any]:
        async with store.pool.acquire() as conn:
            await conn.execute("INSERT INTO crash_runs (job_id, attempt, pid) VALUES ($1, $2, $3)",
                               job.id, job.attempts, pid)  # fmt: skip
            await conn.execute("INSERT INTO crash_effects (key, job_id, pid) VALUES ($1, $2, $3) "
                               "ON CONFLICT (key) DO NOTHING", job.payload["key"], job.id, pid)  # fmt: skip
        await asyncio.sleep(hold_s)
        return {"pid": pid}

    worker = JobWorker(JobQueue(store), {"crash": handler}, concurrency=2, lease_s=1.0, poll_s=0.1, drain_s=0.5)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(worker.run())
            await stop.wait()
            await worker.aclose()
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], float(sys.argv[2])))
