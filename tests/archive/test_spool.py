"""ArchiveSpool with an in-memory archive: durability before upload, order, backoff, refusals, resume, shutdown."""

from __future__ import annotations

import asyncio
import itertools
import json
import random
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from switchboard.archive import (
    ArchiveRejected,
    ArchiveSourceError,
    ArchiveSpool,
    ArchiveUnavailable,
)
from switchboard.backoff import backoff_s

if TYPE_CHECKING:
    from tests.archive.conftest import FakeArchive


def fast_spool(archive: FakeArchive, spool_dir: Path, **kwargs: Any) -> ArchiveSpool:
    """A spool with 10–50 ms backoff."""
    return ArchiveSpool(archive, spool_dir, retry_min_s=0.01, retry_max_s=0.05, **kwargs)


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def recording(tmp_path: Path, name: str, data: bytes = b"RIFFdata") -> Path:
    path = tmp_path / "recordings" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def pending_files(spool_dir: Path) -> list[Path]:
    return sorted((spool_dir / "pending").glob("*.json"))


async def until(condition: Callable[[], bool], within_s: float = 5.0) -> None:
    """Poll ``condition`` (state owned by another task) every 5 ms; fail after ``within_s``."""
    for _ in range(int(within_s / 0.005)):
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"condition not met within {within_s}s")


@pytest.fixture
async def running() -> AsyncIterator[Callable[[ArchiveSpool], None]]:
    """Start ``spool.run()`` as a task owned by the test; ``aclose()`` it afterwards and check it ended."""
    started: list[tuple[ArchiveSpool, asyncio.Task[None]]] = []

    def start(spool: ArchiveSpool) -> None:
        started.append((spool, asyncio.create_task(spool.run())))

    yield start
    for spool, task in started:
        await spool.aclose(drain_s=1)
        assert task.done()


def test_backoff_grows_with_jitter_and_is_capped() -> None:
    rng = random.Random(1)
    first = [backoff_s(1, 1.0, 300.0, rng) for _ in range(50)]
    assert all(d == 1.0 for d in first)  # never below the minimum
    third = [backoff_s(3, 1.0, 300.0, rng) for _ in range(200)]
    assert all(2.0 <= d <= 4.0 for d in third) and len(set(third)) > 100  # jittered within [b/2, b]
    capped = [backoff_s(40, 1.0, 300.0, rng) for _ in range(200)]
    assert all(150.0 <= d <= 300.0 for d in capped)


async def test_enqueue_persists_before_any_upload(tmp_path: Path, fake_archive: FakeArchive) -> None:
    clock = Clock()
    spool = ArchiveSpool(fake_archive, tmp_path / "spool", clock=clock)
    src = recording(tmp_path, "CA1.wav", b"x" * 1000)
    spool.enqueue("recordings/2026/01/01/CA1.wav", src, "audio/wav", metadata={"call-sid": "CA1"})
    (entry,) = pending_files(tmp_path / "spool")
    record = json.loads(entry.read_text())
    assert record["key"] == "recordings/2026/01/01/CA1.wav"
    assert record["path"] == str(src.resolve())
    assert (record["size"], record["content_type"], record["metadata"]) == (1000, "audio/wav", {"call-sid": "CA1"})
    assert fake_archive.calls == []  # nothing uploaded: run() is not started
    clock.now += 42
    stats = spool.backlog()
    assert (stats.pending, stats.pending_bytes, stats.oldest_age_s) == (1, 1000, 42)


async def test_uploads_oldest_first_and_removes_entries(
    tmp_path: Path, fake_archive: FakeArchive, running: Callable[[ArchiveSpool], None]
) -> None:
    spool = fast_spool(fake_archive, tmp_path / "spool")
    keys = [f"recordings/2026/01/01/CA{i}.wav" for i in range(5)]
    for i, key in enumerate(keys):
        spool.enqueue(key, recording(tmp_path, f"CA{i}.wav", bytes([i]) * 10), "audio/wav")
    running(spool)
    await until(lambda: spool.backlog().pending == 0)
    assert fake_archive.calls == keys
    assert fake_archive.stored[keys[3]] == bytes([3]) * 10
    assert pending_files(tmp_path / "spool") == []
    assert spool.backlog().uploaded == 5
    assert (tmp_path / "recordings" / "CA0.wav").exists()  # kept by default


async def test_retryable_failures_back_off_then_succeed(
    tmp_path: Path, fake_archive: FakeArchive, running: Callable[[ArchiveSpool], None]
) -> None:
    fake_archive.script = [ArchiveUnavailable("connection refused")] * 3
    spool = ArchiveSpool(fake_archive, tmp_path / "spool", retry_min_s=0.05, retry_max_s=0.2)
    spool.enqueue("recordings/a/CA1.wav", recording(tmp_path, "CA1.wav"), "audio/wav")
    loop = asyncio.get_running_loop()
    times: list[float] = []
    fake_archive.on_call = lambda key: times.append(loop.time())
    running(spool)
    await until(lambda: spool.backlog().consecutive_failures == 2)
    stats = spool.backlog()
    assert stats.pending == 1 and "connection refused" in (stats.last_error or "")
    assert stats.next_retry_in_s is not None and stats.next_retry_in_s <= 0.2
    await until(lambda: spool.backlog().pending == 0)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert len(times) == 4 and gaps[0] >= 0.045 and gaps[1] >= 0.045  # waited, did not spin
    assert spool.backlog().consecutive_failures == 0  # reset by the success


async def test_refused_entries_move_to_failed_and_keep_the_file(
    tmp_path: Path, fake_archive: FakeArchive, running: Callable[[ArchiveSpool], None]
) -> None:
    fake_archive.script = [ArchiveRejected("NoSuchBucket", code="NoSuchBucket", status=404)]
    spool = fast_spool(fake_archive, tmp_path / "spool", delete_after_upload=True)
    src = recording(tmp_path, "CA1.wav")
    spool.enqueue("recordings/a/CA1.wav", src, "audio/wav")
    spool.enqueue("recordings/a/CA2.wav", recording(tmp_path, "CA2.wav"), "audio/wav")
    running(spool)
    await until(lambda: spool.backlog().pending == 0)
    (failed,) = (tmp_path / "spool" / "failed").glob("*.json")
    record = json.loads(failed.read_text())
    assert (record["key"], record["error_type"], record["error_code"]) == (
        "recordings/a/CA1.wav",
        "ArchiveRejected",
        "NoSuchBucket",
    )
    assert src.exists()  # never deleted, even with delete_after_upload
    assert not (tmp_path / "recordings" / "CA2.wav").exists()  # the next one went up and was deleted
    assert spool.backlog().failed == 1
    assert spool.requeue_failed() == 1
    await until(lambda: "recordings/a/CA1.wav" in fake_archive.stored)
    assert spool.backlog().failed == 0


async def test_a_new_instance_resumes_pending_entries(
    tmp_path: Path, fake_archive: FakeArchive, running: Callable[[ArchiveSpool], None]
) -> None:
    crashed = ArchiveSpool(type(fake_archive)(), tmp_path / "spool")
    crashed.enqueue("recordings/a/CA1.wav", recording(tmp_path, "CA1.wav"), "audio/wav")
    crashed.enqueue("recordings/a/CA1.json", recording(tmp_path, "CA1.json", b"{}"), "application/json")
    (tmp_path / "spool" / "pending" / ".half-written.json.ab12.tmp").write_bytes(b'{"key')  # crash mid-enqueue
    (tmp_path / "spool" / "pending" / "00000000000000000001-garbage.json").write_bytes(b"not json")
    resumed = fast_spool(fake_archive, tmp_path / "spool")
    assert resumed.backlog().pending == 2
    running(resumed)
    await until(lambda: resumed.backlog().pending == 0)
    assert fake_archive.calls == ["recordings/a/CA1.wav", "recordings/a/CA1.json"]
    assert sorted(p.name for p in (tmp_path / "spool" / "pending").iterdir()) == []
    assert [p.name for p in (tmp_path / "spool" / "failed").iterdir()] == ["00000000000000000001-garbage.corrupt"]


async def test_same_key_enqueued_twice_is_one_upload_of_the_newest_file(
    tmp_path: Path, fake_archive: FakeArchive, running: Callable[[ArchiveSpool], None]
) -> None:
    clock = Clock()
    spool = fast_spool(fake_archive, tmp_path / "spool", clock=clock)
    spool.enqueue("recordings/a/CA1.wav", recording(tmp_path, "old.wav", b"old"), "audio/wav")
    clock.now += 10
    spool.enqueue("recordings/a/CA1.wav", recording(tmp_path, "new.wav", b"new"), "audio/wav")
    assert len(pending_files(tmp_path / "spool")) == 1
    assert spool.backlog().oldest_age_s == 10  # still waiting since the first enqueue
    running(spool)
    await until(lambda: spool.backlog().pending == 0)
    assert fake_archive.calls == ["recordings/a/CA1.wav"]
    assert fake_archive.stored["recordings/a/CA1.wav"] == b"new"


async def test_re_enqueue_during_an_upload_is_not_lost(
    tmp_path: Path, fake_archive: FakeArchive, running: Callable[[ArchiveSpool], None]
) -> None:
    """The recorder rewrote the file while its first upload was in flight: upload again, delete only after that."""
    gate = asyncio.Event()
    fake_archive.script = [gate]
    spool = fast_spool(fake_archive, tmp_path / "spool", delete_after_upload=True)
    src = recording(tmp_path, "CA1.wav", b"v1")
    spool.enqueue("recordings/a/CA1.wav", src, "audio/wav")
    running(spool)
    await until(lambda: fake_archive.calls == ["recordings/a/CA1.wav"])
    await asyncio.to_thread(src.write_bytes, b"v2")
    await spool.aenqueue("recordings/a/CA1.wav", src, "audio/wav")
    gate.set()
    await until(lambda: spool.backlog().pending == 0)
    assert fake_archive.calls == ["recordings/a/CA1.wav"] * 2
    assert fake_archive.stored["recordings/a/CA1.wav"] == b"v2"
    assert spool.backlog().failed == 0
    assert not src.exists()  # deleted once, after the upload of the version that was current


async def test_enqueue_from_another_thread_wakes_the_loop(
    tmp_path: Path, fake_archive: FakeArchive, running: Callable[[ArchiveSpool], None]
) -> None:
    spool = fast_spool(fake_archive, tmp_path / "spool")
    running(spool)
    await asyncio.sleep(0.01)  # the loop is idle, waiting
    src = recording(tmp_path, "CA1.wav")
    await asyncio.to_thread(spool.enqueue, "recordings/a/CA1.wav", src, "audio/wav")
    await until(lambda: "recordings/a/CA1.wav" in fake_archive.stored, within_s=2)


async def test_missing_source_fails_at_enqueue(tmp_path: Path, fake_archive: FakeArchive) -> None:
    spool = ArchiveSpool(fake_archive, tmp_path / "spool")
    with pytest.raises(ArchiveSourceError):
        spool.enqueue("recordings/a/CA1.wav", tmp_path / "nope.wav", "audio/wav")
    with pytest.raises(ArchiveRejected):
        spool.enqueue("../escape.wav", recording(tmp_path, "CA1.wav"), "audio/wav")
    assert pending_files(tmp_path / "spool") == []


async def test_aclose_cancels_a_stuck_upload_and_leaves_no_task(tmp_path: Path, fake_archive: FakeArchive) -> None:
    fake_archive.script = [asyncio.Event()]  # never set: an upload that hangs
    spool = fast_spool(fake_archive, tmp_path / "spool")
    spool.enqueue("recordings/a/CA1.wav", recording(tmp_path, "CA1.wav"), "audio/wav")
    before = asyncio.all_tasks()
    task = asyncio.create_task(spool.run())
    await until(lambda: fake_archive.calls != [])
    await spool.aclose(drain_s=0.05)
    assert task.cancelled()  # cancellation reached run() and was not swallowed
    assert asyncio.all_tasks() == before
    assert len(pending_files(tmp_path / "spool")) == 1  # still pending for the next start


async def test_aclose_during_backoff_returns_promptly(tmp_path: Path, fake_archive: FakeArchive) -> None:
    fake_archive.script = [ArchiveUnavailable("down")]
    spool = ArchiveSpool(fake_archive, tmp_path / "spool", retry_min_s=60, retry_max_s=60)
    spool.enqueue("recordings/a/CA1.wav", recording(tmp_path, "CA1.wav"), "audio/wav")
    task = asyncio.create_task(spool.run())
    await until(lambda: spool.backlog().consecutive_failures == 1)
    async with asyncio.timeout(1):
        await spool.aclose()
    assert task.done() and not task.cancelled()  # ended by itself, not by cancellation


async def test_run_twice_is_refused(tmp_path: Path, fake_archive: FakeArchive) -> None:
    spool = ArchiveSpool(fake_archive, tmp_path / "spool")
    task = asyncio.create_task(spool.run())
    await asyncio.sleep(0)
    with pytest.raises(RuntimeError, match="already running"):
        await spool.run()
    await spool.aclose()
    assert task.done()
