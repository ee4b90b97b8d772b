"""CallEndSpool against a real PostgreSQL behind a proxy that goes down: ends are kept on disk, applied (row and
jobs) once the database and the transcript spool are back, at least once and harmlessly twice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

from switchboard.extract import FallbackExtractor, OfflineExtractor
from switchboard.jobs import JobQueue
from switchboard.jobs.end_spool import CallEnd, CallEndSpool, apply_call_end
from switchboard.jobs.handlers import PostCallHandlers
from switchboard.store.pg import PgStore
from tests.pg_plugin import PgProxy

SID = "CA" + "e" * 32
T0 = datetime(2026, 12, 2, 16, 0, tzinfo=UTC)


def an_end(sid: str = SID, reason: str = "stop") -> CallEnd:
    return CallEnd(sid, "AC" + "0" * 32, T0, T0.replace(minute=5), reason, 300_000, "recordings/x.wav", None,
                   ["local"], {"recording": {"media_ms": 300_000}}, recording_incomplete=True)


def test_call_end_round_trips_through_json() -> None:
    end = an_end()
    assert CallEnd.from_json(end.to_json()) == end


async def until(check: Callable[[], Awaitable[bool]], within_s: float = 30) -> None:
    async with asyncio.timeout(within_s):
        while True:
            if await check():
                return
            await asyncio.sleep(0.05)


async def test_spooled_end_is_applied_when_the_database_and_the_transcript_are_back(
        pg_proxy: PgProxy, tmp_path: Path) -> None:
    store = await PgStore.connect(pg_proxy.dsn, max_size=2)
    settled = False
    handlers = PostCallHandlers(store, JobQueue(store), FallbackExtractor(None, OfflineExtractor()))
    spool = CallEndSpool(tmp_path / "ends", store, handlers, settled=lambda: settled, retry_min_s=0.05,
                         retry_max_s=0.2)
    try:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(spool.run())
            await pg_proxy.stop()
            assert await spool.put(an_end())
            assert spool.pending() == 1
            await pg_proxy.start()
            await asyncio.sleep(0.5)  # the database is back but the transcript spool is not replayed yet
            assert spool.pending() == 1 and spool.applied == 0
            settled = True

            async def applied() -> bool:
                return spool.pending() == 0

            await until(applied)
            await spool.aclose()
        call = await store.get_call(SID)
        assert call is not None and call.ended_at == T0.replace(minute=5) and call.end_reason == "stop"
        assert call.recording_incomplete and call.media_ms == 300_000
        assert [job.kind for job in await handlers.queue.list_jobs(call_sid=SID)] == ["extract"]
        # applying the same end again (a crash between the database write and the unlink) changes nothing
        await apply_call_end(store, handlers, an_end(reason="a later, different end"))
        again = await store.get_call(SID)
        assert again is not None and again.end_reason == "stop"
        assert len(await handlers.queue.list_jobs(call_sid=SID)) == 1
    finally:
        await store.close()


async def test_an_unreadable_entry_is_set_aside(store: PgStore, tmp_path: Path) -> None:
    directory = tmp_path / "ends"
    directory.mkdir()
    (directory / f"{SID}.1.json").write_bytes(b"{not json")
    spool = CallEndSpool(directory, store, None, retry_min_s=0.05, retry_max_s=0.2)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(spool.run())

        async def set_aside() -> bool:
            return (directory / "failed" / f"{SID}.1.json").exists()

        await until(set_aside)
        await spool.aclose()
    assert spool.pending() == 0
