"""A write error while recording (here EFBIG from RLIMIT_FSIZE, a real kernel refusal like ENOSPC) never escapes the
recorder: it finishes the file over what reached the disk, with a valid header, and reports itself incomplete."""

from __future__ import annotations

import resource
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from audio.wav import WavReader
from switchboard.call.recorder import StereoRecorder

SECONDS = 10


def coded(i: int, track: int) -> bytes:
    """Frame i of a track: bytes that name their position, never the silence code."""
    return bytes(((i * 160 + k) * 7 + 101 * track) % 251 for k in range(160))


@contextmanager
def file_size_limit(limit: int) -> Iterator[None]:
    """Writes past ``limit`` bytes of any file fail with EFBIG (SIGXFSZ ignored), for this block only."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


@pytest.mark.parametrize("limit", [20, 100, 4_000, 16_100, 48_000, 160_030, 160_200])
def test_disk_full_at_any_point_finishes_the_file_and_never_raises(tmp_path: Path, limit: int) -> None:
    """Every limit from "not even the header" to "all but the header rewrite at close" (160 044 bytes in all)."""
    path = tmp_path / "call.wav"
    with file_size_limit(limit):
        recorder = StereoRecorder(path)
        for i in range(SECONDS * 50):
            recorder.write("inbound", i * 20, coded(i, 0))
            recorder.write("outbound", i * 20, coded(i, 1))
        media_ms = recorder.close()
    expected = b"".join(bytes(x for pair in zip(coded(i, 0), coded(i, 1), strict=True) for x in pair)
                        for i in range(SECONDS * 50))
    if limit >= len(expected) + 58:
        assert not recorder.incomplete and media_ms == SECONDS * 1000
    else:
        assert recorder.incomplete and "errno 27" in (recorder.error or ""), recorder.error
        assert media_ms < SECONDS * 1000
        assert recorder.stats()["error"] == recorder.error
    if limit < 58:  # not even the header reached the disk: nothing to finish
        assert media_ms == 0 and "header not finished" in (recorder.error or "")
        return
    with WavReader(path) as wav:  # a valid, closed header over whole frames
        assert wav.channels == 2 and wav.n_frames // 8 == media_ms
        assert wav.read(wav.n_frames) == expected[: wav.n_frames * 2]
    assert path.stat().st_size <= max(limit, 58 + wav.n_frames * 2)
