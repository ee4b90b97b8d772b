"""SegmentWriter under supervision: a disk that refuses writes while the database is down crashes the loop,
nothing is lost, and the restarted loop spools and then stores every segment.

The disk is made to refuse with RLIMIT_FSIZE (every write that grows a file fails with EFBIG, as a full disk fails
with ENOSPC), which needs no privileges; SIGXFSZ is ignored meanwhile so the refusal is an OSError, not a signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import signal
from collections.abc import Iterator
from pathlib import Path

from switchboard.store import PgStore, SegmentWriter
from switchboard.supervisor import RestartPolicy, Supervisor, TaskState
from tests.pg_plugin import PgProxy
from tests.store.test_writer import FAST, make_calls, segments, until

POLICY = RestartPolicy(min_backoff_s=0.05, max_backoff_s=0.1, max_crashes=1000, window_s=600)


@contextlib.contextmanager
def disk_refuses_writes() -> Iterator[None]:
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


async def test_spool_enospc_crashes_the_loop_keeps_the_segments_and_the_restart_stores_them(
        store: PgStore, pg_proxy: PgProxy, tmp_path: Path) -> None:
    await make_calls(store, "CA1")
    via_proxy = await PgStore.connect(pg_proxy.dsn, max_size=2, command_timeout=2, run_migrations=False)
    writer = SegmentWriter(via_proxy, spool_dir=tmp_path / "spool", max_batch=10, **FAST)
    try:
        await pg_proxy.stop()
        async with Supervisor(POLICY) as supervisor:
            supervisor.start("segment-writer", writer.run)
            with disk_refuses_writes():
                for seg in segments("CA1", 25):
                    writer.add(seg)
                await until(lambda: supervisor.statuses()[0].crashes >= 2, within_s=30)
            status = supervisor.statuses()[0]
            assert status.last_error is not None and "File too large" in status.last_error
            assert writer.stats().queued == 25  # held in memory across the crashes, none dropped
            await until(lambda: writer.stats().spooled >= 25, within_s=30)  # the disk is back: the next run spools
            await pg_proxy.start()  # the database is back: the spool is replayed
            await until(lambda: writer.stats().replayed >= 25 and writer.stats().queued == 0, within_s=30)
            assert supervisor.statuses()[0].state is TaskState.RUNNING
            await writer.aclose()
            await until(lambda: supervisor.statuses()[0].state is TaskState.STOPPED)
    finally:
        await via_proxy.close()
    assert [s.seq for s in await store.get_segments("CA1")] == list(range(25))


async def test_a_crashed_writer_can_run_again_but_a_closed_one_cannot(store: PgStore, tmp_path: Path) -> None:
    writer = SegmentWriter(store, spool_dir=tmp_path, **FAST)
    task = asyncio.create_task(writer.run())
    await asyncio.sleep(0)
    await writer.aclose()
    await task
    try:
        await writer.run()
    except RuntimeError as exc:
        assert "finished" in str(exc)
    else:
        raise AssertionError("a closed writer ran again")
