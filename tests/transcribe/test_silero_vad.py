"""SileroDetector on real speech, silence and noise; the detector pool's reuse."""

from __future__ import annotations

import importlib.util
import wave
from pathlib import Path

import numpy as np
import pytest

from audio.detectors import SpeechDetector, frames
from audio.errors import InvalidPcmError, UnsupportedRateError
from switchboard.transcribe.vad import DetectorPool, SileroDetector

RATE = 16_000


def _beckett() -> np.ndarray:
    spec = importlib.util.find_spec("moonshine_cpp")
    assert spec is not None and spec.origin is not None
    with wave.open(str(Path(spec.origin).parent / "test-data" / "beckett.wav"), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


@pytest.fixture(scope="module")
def detector() -> SileroDetector:
    return SileroDetector()


def probabilities(detector: SileroDetector, pcm: np.ndarray) -> np.ndarray:
    detector.reset()
    return np.array([detector.probability(f) for f in frames(pcm, detector.frame_samples)])


def test_shape_matches_the_speech_detector_protocol(detector: SileroDetector) -> None:
    assert isinstance(detector, SpeechDetector)
    assert (detector.sample_rate, detector.frame_samples) == (16_000, 512)
    assert SileroDetector(8000).frame_samples == 256


def test_speech_scores_high(detector: SileroDetector) -> None:
    # "Ever tried." spans ≈ 0.35–1.2 s of beckett.wav; its core is unmistakable speech.
    p = probabilities(detector, _beckett()[: int(1.3 * RATE)])
    core = p[int(0.45 * RATE) // 512 : int(1.1 * RATE) // 512]
    assert core.min() > 0.8
    assert p[: int(0.25 * RATE) // 512].max() < 0.2  # the lead-in before the first word


def test_silence_and_noise_score_low(detector: SileroDetector) -> None:
    rng = np.random.default_rng(7)
    assert probabilities(detector, np.zeros(2 * RATE, dtype=np.int16)).max() < 0.1
    white = rng.normal(0, 1000, 2 * RATE).clip(-32768, 32767).astype(np.int16)  # ≈ -30 dBFS hiss
    assert probabilities(detector, white).mean() < 0.2
    hum = (3000 * np.sin(2 * np.pi * 50 * np.arange(2 * RATE) / RATE)).astype(np.int16)
    assert probabilities(detector, hum).max() < 0.2


def test_reset_makes_a_stream_independent_of_the_last(detector: SileroDetector) -> None:
    speech = _beckett()[: RATE]
    first = probabilities(detector, speech)
    for f in frames(_beckett()[RATE : 2 * RATE], 512):  # pollute the recurrent state
        detector.probability(f)
    assert np.array_equal(probabilities(detector, speech), first)


def test_bad_frames_are_rejected(detector: SileroDetector) -> None:
    with pytest.raises(InvalidPcmError):
        detector.probability(np.zeros(320, dtype=np.int16))
    with pytest.raises(InvalidPcmError):
        detector.probability(np.zeros(512, dtype=np.float32))  # type: ignore[arg-type]
    with pytest.raises(UnsupportedRateError):
        SileroDetector(44_100)


async def test_pool_reuses_reset_detectors() -> None:
    built: list[SileroDetector] = []

    def build() -> SileroDetector:
        built.append(SileroDetector())
        return built[-1]

    pool = DetectorPool(build, max_idle=1)
    a = await pool.acquire()
    b = await pool.acquire()
    assert a is not b and len(built) == 2
    speech = _beckett()[: RATE]
    fresh = [a.probability(f) for f in frames(speech, 512)]
    pool.release(a)
    pool.release(b)  # over max_idle: dropped
    assert pool.idle == 1
    again = await pool.acquire()
    assert again is a and len(built) == 2
    assert [again.probability(f) for f in frames(speech, 512)] == fresh
