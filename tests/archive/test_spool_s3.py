"""ArchiveSpool over S3Archive and a real SeaweedFS that goes down and comes back."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path

from switchboard.archive import ArchiveSpool
from switchboard.archive.s3 import S3Archive
from tests.s3_plugin import SeaweedFS

KEY = "recordings/2026/01/31/CAoutage.wav"


def s3_archive(server: SeaweedFS, bucket: str) -> S3Archive:
    return S3Archive(
        bucket,
        endpoint_url=server.endpoint_url,
        access_key=server.access_key,
        secret_key=server.secret_key,
        region="us-east-1",
        max_attempts=1,
        connect_timeout=1,
        read_timeout=10,
    )


def object_bytes(server: SeaweedFS, bucket: str, key: str) -> bytes:
    body: bytes = server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


async def wait_for(condition: Callable[[], bool], within_s: float) -> None:
    for _ in range(int(within_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not done within {within_s}s")


async def test_outage_spools_then_uploads_when_the_server_returns(
    seaweedfs: SeaweedFS, s3_bucket: str, tmp_path: Path
) -> None:
    data = os.urandom(300_000)
    src = tmp_path / "CAoutage.wav"
    src.write_bytes(data)
    archive = s3_archive(seaweedfs, s3_bucket)
    spool = ArchiveSpool(archive, tmp_path / "spool", retry_min_s=0.05, retry_max_s=0.5)
    seaweedfs.stop()
    try:
        spool.enqueue(KEY, src, "audio/wav", metadata={"call-sid": "CAoutage"})
        task = asyncio.create_task(spool.run())
        await wait_for(lambda: spool.backlog().consecutive_failures >= 3, within_s=10)
        stats = spool.backlog()
        assert stats.pending == 1 and stats.uploaded == 0
        assert "unreachable" in (stats.last_error or "")
        assert len(list((tmp_path / "spool" / "pending").glob("*.json"))) == 1

        startup_s = await asyncio.to_thread(seaweedfs.start)
        await wait_for(lambda: spool.backlog().pending == 0, within_s=15)
        assert spool.backlog().failed == 0, spool.backlog().last_error  # the restart never looked like a refusal
        assert list((tmp_path / "spool" / "pending").iterdir()) == []
        assert await asyncio.to_thread(object_bytes, seaweedfs, s3_bucket, KEY) == data
        assert startup_s < 30
    finally:
        await spool.aclose(drain_s=2)
        archive.close()
    assert task.done()


async def test_restarted_process_uploads_what_the_last_one_left(
    seaweedfs: SeaweedFS, s3_bucket: str, tmp_path: Path
) -> None:
    src = tmp_path / "CAleft.wav"
    src.write_bytes(b"RIFF" + os.urandom(5000))
    transcript = tmp_path / "CAleft.json"
    transcript.write_bytes(b'{"segments": []}')
    first_archive = s3_archive(seaweedfs, s3_bucket)
    first = ArchiveSpool(first_archive, tmp_path / "spool")
    first.enqueue("recordings/2026/01/31/CAleft.wav", src, "audio/wav")
    first.enqueue("recordings/2026/01/31/CAleft.json", transcript, "application/json")
    first_archive.close()  # the process died before its run() uploaded anything

    archive = s3_archive(seaweedfs, s3_bucket)
    second = ArchiveSpool(archive, tmp_path / "spool", retry_min_s=0.05)
    task = asyncio.create_task(second.run())
    try:
        await wait_for(lambda: second.backlog().pending == 0, within_s=10)
        assert await archive.exists("recordings/2026/01/31/CAleft.wav")
        assert await archive.exists("recordings/2026/01/31/CAleft.json")
        assert second.backlog().uploaded == 2
    finally:
        await second.aclose()
        archive.close()
    assert task.done()
