"""A write error on the recording mid-call (EFBIG from RLIMIT_FSIZE: the kernel refusing the write, as with a full
disk) through a real server: the call goes on and ends normally (transcript, live events, database, post-call
jobs), the WAV is finished as far as it got with a valid header, and the call is marked ``recording_incomplete``."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from audio.wav import WavReader
from switchboard.replay.fixture import build_schedule
from switchboard.replay.twilio_fake import replay_call
from switchboard.transcribe.moonshine import RecognizerPool
from tests.e2e.conftest import fresh_database, running_server
from tests.unit.test_recorder_write_error import file_size_limit

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "real_librivox_reader.wav"  # 32 s of speech
LIMIT = 200_000  # bytes: the recording (16 000 bytes per second) stops after about 12.5 s


class Words:
    """A recogniser that answers every utterance with the same words (recognition is not the point here)."""

    def transcribe(self, samples: np.ndarray) -> str:
        return "words spoken"

    def self_test(self) -> str:
        return "ok"

    def close(self) -> None:
        pass


async def test_recording_write_error_keeps_the_call_going(pg_dsn: str, tmp_path: Path) -> None:
    dsn = await fresh_database(pg_dsn, "diskfull")
    pool = RecognizerPool(1, engine_factory=Words)
    async with running_server(dsn, tmp_path, transcriber="local", recognizers=pool) as server, \
            httpx.AsyncClient(timeout=30) as client:
        with file_size_limit(LIMIT):
            result = await replay_call(server.target, build_schedule(FIXTURE), speed=0, client=client)
        assert result.ended is not None and result.ended["reason"] == "stop"  # call.ended was published
        stored = result.stored
        assert stored is not None and stored["ended_at"] and stored["end_reason"] == "stop"
        assert stored["recording_incomplete"] is True
        assert "errno 27" in stored["stats"]["recording"]["error"]
        assert 10_000 < stored["media_ms"] < 14_000  # what reached the disk, not the 32 s sent
        path = server.settings.data_dir / stored["recording_key"]
        with WavReader(path) as wav, WavReader(FIXTURE) as source:
            assert wav.n_frames // 8 == stored["media_ms"]
            assert wav.read(wav.n_frames) == source.read(wav.n_frames)  # exactly the start of the call
        # transcription went on past the failure, and the post-call jobs were recorded
        ends = [seg["end_ms"] for seg in stored["transcript"]]
        assert ends and max(ends) > stored["media_ms"] + 5_000, ends
        assert {job["kind"] for job in stored["jobs"]} >= {"extract"}, stored["jobs"]
    await pool.aclose()
