"""transcribe_file: stereo and mono call recordings through the live audio path, with a fake recogniser."""

from __future__ import annotations

import importlib.util
import json
import wave
from pathlib import Path

import numpy as np
import pytest
import soxr

from audio import mulaw
from audio.wav import WavWriter
from switchboard.transcribe.moonshine import RecognizerPool
from switchboard.transcribe.offline import transcribe_file


class CountingEngine:
    """Answers with the number of 16 kHz samples it was given."""

    def transcribe(self, samples: np.ndarray) -> str:
        return str(samples.size)

    def self_test(self) -> str:
        return "ok"

    def close(self) -> None:
        pass


def _beckett_8k() -> np.ndarray:
    spec = importlib.util.find_spec("moonshine_cpp")
    assert spec is not None and spec.origin is not None
    with wave.open(str(Path(spec.origin).parent / "test-data" / "beckett.wav"), "rb") as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return soxr.resample(pcm.astype(np.float32), 16_000, 8000).clip(-32768, 32767).astype(np.int16)


PHRASE = _beckett_8k()[: int(1.6 * 8000)]  # "Ever tried." (speech ≈ 0.35–1.2 s)


def quiet(seconds: float) -> np.ndarray:
    return np.zeros(int(seconds * 8000), dtype=np.int16)


def write_wav(path: Path, *channels: np.ndarray) -> Path:
    interleaved = np.stack(channels, axis=1).reshape(-1).astype(np.int16)
    with WavWriter(path, channels=len(channels)) as writer:
        writer.write(mulaw.encode(interleaved))
    return path


@pytest.fixture
async def pool():
    pool = RecognizerPool(engine_factory=CountingEngine)
    yield pool
    await pool.aclose()


async def test_stereo_call_gives_both_speakers_in_time_order(tmp_path: Path, pool: RecognizerPool) -> None:
    # Caller speaks at 0 s and 4 s, the agent at 2 s: the segments must interleave by media time.
    left = np.concatenate([PHRASE, quiet(2.4), PHRASE, quiet(1.0)])
    right = np.concatenate([quiet(2.0), PHRASE, quiet(3.0)])
    result = await transcribe_file(write_wav(tmp_path / "call.wav", left, right), pool)

    assert [(s.track, s.speaker) for s in result.segments] == [
        ("inbound", "caller"), ("outbound", "agent"), ("inbound", "caller")]
    expected_onsets = [350, 2350, 4350]  # phrase onset + where it was placed
    for segment, onset in zip(result.segments, expected_onsets, strict=True):
        assert abs(segment.start_ms - (onset - 200)) <= 120  # 200 ms padding before the onset
        assert int(segment.text) == pytest.approx((segment.end_ms - segment.start_ms) * 16, abs=32)
    assert result.duration_ms == 6600
    document = json.loads(json.dumps(result.to_json()))
    assert set(document) == {"caller", "agent", "segments"}
    assert document["caller"] == f"{result.segments[0].text} {result.segments[2].text}"
    assert document["agent"] == result.segments[1].text
    assert document["segments"][1] == {"track": "outbound", "speaker": "agent",
                                       "start_ms": result.segments[1].start_ms,
                                       "end_ms": result.segments[1].end_ms, "text": result.segments[1].text,
                                       "alternatives": []}


async def test_mono_file_is_the_caller_alone(tmp_path: Path, pool: RecognizerPool) -> None:
    result = await transcribe_file(write_wav(tmp_path / "mono.wav", np.concatenate([PHRASE, quiet(1.0)])), pool)
    assert [s.speaker for s in result.segments] == ["caller"]
    assert result.agent == "" and result.caller == result.segments[0].text
