"""SegmentWriter: batching, spooling through real outages, replay at startup, shutdown and cancellation."""

import asyncio
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from switchboard.store import PgStore, Segment, SegmentWriter, StoreUnavailable
from switchboard.store.writer import ACTIVE_SPOOL, REJECTED, Spool
from tests.pg_plugin import PgProxy

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

FAST: dict[str, Any] = {"flush_interval_s": 0.02, "retry_min_s": 0.02, "retry_max_s": 0.1}


class CountingStore:
    """Thin wrapper over a real store: records the size of every add_segments round trip."""

    def __init__(self, inner: PgStore, *, fail_first: int = 0) -> None:
        self.inner = inner
        self.batches: list[int] = []
        self.fail_first = fail_first

    async def add_segments(self, segments: Sequence[Segment]) -> None:
        self.batches.append(len(segments))
        if self.fail_first > 0:
            self.fail_first -= 1
            raise StoreUnavailable("injected outage")
        await self.inner.add_segments(segments)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def until(predicate: Callable[[], bool], within_s: float = 5.0) -> None:
    """Poll: the writer exposes counters, not events, and a test must not hook into its internals."""
    async with asyncio.timeout(within_s):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.01)


def files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def segments(sid: str, n: int, track: str = "inbound") -> list[Segment]:
    return [Segment(sid, track, i, i * 100, i * 100 + 80, f"word {i}", "local", None) for i in range(n)]


def tear_last_line(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b'{"call_sid": "CA1", "track": "inb')  # the process died mid-write


async def make_calls(store: PgStore, *sids: str) -> None:
    for sid in sids:
        await store.create_call(sid, account_sid=None, from_number=None, to_number=None, direction=None,
                                mode="operator", status=None, at=T0)  # fmt: skip


async def test_batches_one_round_trip_each(store: PgStore, tmp_path: Path) -> None:
    await make_calls(store, "CA1")
    counting = CountingStore(store)
    writer = SegmentWriter(counting, spool_dir=tmp_path, max_batch=200, flush_interval_s=10)
    for seg in segments("CA1", 450):
        writer.add(seg)
    task = asyncio.create_task(writer.run())
    await until(lambda: writer.stats().written == 400)  # full batches go at once, not after 10 s
    assert writer.stats().queued == 50 and counting.batches == [200, 200]
    await writer.aclose()  # the partial batch is flushed on close
    await task
    assert counting.batches == [200, 200, 50]
    assert len(await store.get_segments("CA1")) == 450
    assert writer.stats().written == 450 and not files(tmp_path)


async def test_partial_batch_goes_after_flush_interval(store: PgStore, tmp_path: Path) -> None:
    await make_calls(store, "CA1")
    counting = CountingStore(store)
    writer = SegmentWriter(counting, spool_dir=tmp_path, flush_interval_s=0.05)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(writer.run())
        for seg in segments("CA1", 5):
            writer.add(seg)
        await until(lambda: writer.stats().written == 5)
        assert counting.batches == [5]
        await writer.aclose()


async def test_outage_spools_then_recovers(store: PgStore, tmp_path: Path) -> None:
    await make_calls(store, "CA1")
    flaky = CountingStore(store, fail_first=3)
    writer = SegmentWriter(flaky, spool_dir=tmp_path, max_batch=10, **FAST)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(writer.run())
        for seg in segments("CA1", 35):
            writer.add(seg)
        await until(lambda: writer.stats().written == 35 and not writer.stats().degraded)
        await writer.aclose()
    stats = writer.stats()
    assert stats.failures == 3 and stats.spooled >= 10 and stats.replayed >= 10
    assert stats.last_error is not None and "injected outage" in stats.last_error
    assert [s.seq for s in await store.get_segments("CA1")] == list(range(35))
    assert not files(tmp_path)  # spool replayed and deleted


async def test_real_database_outage(store: PgStore, pg_proxy: PgProxy, tmp_path: Path) -> None:
    await make_calls(store, "CA1", "CA2")
    via_proxy = await PgStore.connect(pg_proxy.dsn, max_size=2, command_timeout=2, run_migrations=False)
    try:
        await pg_proxy.stop()
        writer = SegmentWriter(via_proxy, spool_dir=tmp_path, max_batch=20, **FAST)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(writer.run())
            for seg in segments("CA1", 30) + segments("CA2", 30, "outbound"):
                writer.add(seg)
            await until(lambda: writer.stats().spooled >= 60)
            assert writer.stats().degraded and "StoreUnavailable" in (writer.stats().last_error or "")
            assert any(name.startswith("segments") for name in files(tmp_path))
            assert await store.get_segments("CA1") == []

            await pg_proxy.start()
            await until(lambda: not writer.stats().degraded and not files(tmp_path))
            await writer.aclose()
        assert len(await store.get_segments("CA1")) == 30 and len(await store.get_segments("CA2")) == 30
    finally:
        await via_proxy.close()


async def test_cancelled_writer_spools_and_next_start_replays(store: PgStore, tmp_path: Path) -> None:
    await make_calls(store, "CA1")
    down = CountingStore(store, fail_first=10**6)
    crashed = SegmentWriter(down, spool_dir=tmp_path, max_batch=10, flush_interval_s=10, retry_min_s=10)
    task = asyncio.create_task(crashed.run())
    for seg in segments("CA1", 25):
        crashed.add(seg)
    await until(lambda: crashed.stats().spooled == 20)  # two full batches failed and went to the spool
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task  # cancellation propagates...
    assert crashed.stats().spooled == 25 and crashed.stats().queued == 0  # ...after spooling what was queued
    crashed.add(Segment("CA1", "outbound", 0, 5, 6, "late", "local"))  # after stop: straight to disk

    fresh = SegmentWriter(store, spool_dir=tmp_path, **FAST)
    await fresh.aclose()  # never run: drains inline, which replays the leftover spool
    assert fresh.stats().replayed == 26
    assert len(await store.get_segments("CA1")) == 26 and not files(tmp_path)


async def test_startup_replays_spool_with_torn_last_line(store: PgStore, tmp_path: Path) -> None:
    await make_calls(store, "CA1")
    Spool(tmp_path).append(segments("CA1", 3))
    tear_last_line(tmp_path / ACTIVE_SPOOL)
    writer = SegmentWriter(store, spool_dir=tmp_path, **FAST)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(writer.run())
        await until(lambda: writer.stats().replayed == 3)
        await writer.aclose()
    assert [s.text for s in await store.get_segments("CA1")] == ["word 0", "word 1", "word 2"]
    assert not files(tmp_path)


async def test_queue_overflow_spills_to_spool(store: PgStore, tmp_path: Path) -> None:
    await make_calls(store, "CA1")
    writer = SegmentWriter(store, spool_dir=tmp_path, max_queue=10, **FAST)
    for seg in segments("CA1", 25):
        writer.add(seg)  # no writer task yet: the queue overflows twice
    assert (writer.stats().spooled, writer.stats().queued) == (22, 3)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(writer.run())
        await until(lambda: writer.stats().written == 25)
        await writer.aclose()
    assert len(await store.get_segments("CA1")) == 25


async def test_refused_segments_are_isolated(store: PgStore, tmp_path: Path) -> None:
    await make_calls(store, "CA1")
    writer = SegmentWriter(store, spool_dir=tmp_path, **FAST)
    good = segments("CA1", 4)
    orphan = Segment("CA-unknown", "inbound", 0, 0, 10, "orphan", "local")  # violates the foreign key
    for seg in [*good[:2], orphan, *good[2:]]:
        writer.add(seg)
    await writer.aclose()
    stats = writer.stats()
    assert (stats.written, stats.rejected, stats.spooled, stats.degraded) == (4, 1, 0, False)
    assert len(await store.get_segments("CA1")) == 4
    assert Spool.read(tmp_path / REJECTED) == [orphan]


async def test_run_only_once(store: PgStore, tmp_path: Path) -> None:
    writer = SegmentWriter(store, spool_dir=tmp_path)
    await writer.aclose()
    with pytest.raises(RuntimeError):
        await writer.run()
