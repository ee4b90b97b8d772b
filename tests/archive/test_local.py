"""LocalArchive: atomic copies into root/key, the same-file no-op, error mapping; the key helpers."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from switchboard.archive import (
    ArchiveRejected,
    ArchiveSourceError,
    ArchiveUnavailable,
    LocalArchive,
    recording_key,
    transcript_key,
    validate_key,
)
from switchboard.archive.local import write_atomic

KEY = "recordings/2026/01/31/CA0123.wav"


def read(path: Path) -> bytes:
    return path.read_bytes()


@pytest.fixture
def source(tmp_path: Path) -> Path:
    path = tmp_path / "spooled" / "CA0123.wav"
    path.parent.mkdir()
    path.write_bytes(os.urandom(3 << 20) + b"tail")
    return path


async def test_put_file_copies_into_nested_folders(tmp_path: Path, source: Path) -> None:
    archive = LocalArchive(tmp_path / "archive")
    stored = await archive.put_file(KEY, source, "audio/wav")
    dest = tmp_path / "archive" / "recordings" / "2026" / "01" / "31" / "CA0123.wav"
    assert read(dest) == read(source)
    assert (stored.key, stored.size, stored.url) == (KEY, len(read(source)), dest.resolve().as_uri())
    assert [p.name for p in dest.parent.iterdir()] == ["CA0123.wav"]  # no temp file left behind
    assert await archive.exists(KEY)
    assert not await archive.exists("recordings/2026/01/31/CA9999.wav")


async def test_put_file_replaces_an_existing_copy(tmp_path: Path, source: Path) -> None:
    archive = LocalArchive(tmp_path / "archive")
    await archive.put_bytes(KEY, b"old", "audio/wav")
    await archive.put_file(KEY, source, "audio/wav")
    assert read(archive.path_for(KEY)) == read(source)


async def test_put_file_onto_itself_is_a_no_op(tmp_path: Path) -> None:
    """The recorder writes under <data dir>/recordings/…; with the data dir as root there is nothing to copy."""
    archive = LocalArchive(tmp_path)
    path = archive.path_for(KEY)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"RIFF....WAVE")
    inode = path.stat().st_ino
    stored = await archive.put_file(KEY, path, "audio/wav")
    assert path.stat().st_ino == inode  # not rewritten through a temp file
    assert path.read_bytes() == b"RIFF....WAVE"
    assert stored.size == 12


async def test_put_bytes_writes_the_transcript_beside(tmp_path: Path) -> None:
    archive = LocalArchive(tmp_path)
    stored = await archive.put_bytes(transcript_key(KEY), b'{"segments": []}', "application/json")
    assert stored.key == "recordings/2026/01/31/CA0123.json"
    assert (tmp_path / stored.key).read_bytes() == b'{"segments": []}'


async def test_missing_source_is_a_source_error(tmp_path: Path) -> None:
    with pytest.raises(ArchiveSourceError) as info:
        await LocalArchive(tmp_path).put_file(KEY, tmp_path / "gone.wav", "audio/wav")
    assert not info.value.retryable


async def test_destination_blocked_by_a_file_is_rejected(tmp_path: Path, source: Path) -> None:
    (tmp_path / "recordings").write_bytes(b"a file where a folder must be")
    with pytest.raises(ArchiveRejected):
        await LocalArchive(tmp_path).put_file(KEY, source, "audio/wav")


async def test_check_reports_an_unusable_root(tmp_path: Path) -> None:
    await LocalArchive(tmp_path / "new" / "root").check()
    assert (tmp_path / "new" / "root").is_dir()
    (tmp_path / "blocked").write_bytes(b"")
    with pytest.raises(ArchiveUnavailable):
        await LocalArchive(tmp_path / "blocked" / "root").check()


@pytest.mark.parametrize("key", ["", "/abs/x.wav", "a/../../etc/passwd", "a//b", "a/./b", "a\\b", "a/"])
async def test_keys_that_could_escape_the_root_are_rejected(tmp_path: Path, key: str) -> None:
    with pytest.raises(ArchiveRejected):
        await LocalArchive(tmp_path).put_bytes(key, b"x", "text/plain")


def test_write_atomic_leaves_no_temp_file_when_the_writer_fails(tmp_path: Path) -> None:
    def boom(f: object) -> None:
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        write_atomic(tmp_path / "x.json", boom)
    assert list(tmp_path.iterdir()) == []


def test_key_layout() -> None:
    at = datetime(2026, 3, 7, 23, 59, tzinfo=UTC)
    key = recording_key("CAabc", at)
    assert key == "recordings/2026/03/07/CAabc.wav"
    assert transcript_key(key) == "recordings/2026/03/07/CAabc.json"
    assert validate_key(key) == key
