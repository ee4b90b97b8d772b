"""Cheap detectors on synthetic phone audio: line noise vs voiced, syllabic bursts; framing; bad frames."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audio.detectors import (
    SILENT_DBFS,
    EnergyDetector,
    ResettableDetector,
    SpeechDetector,
    WebRtcDetector,
    frames,
    level_dbfs,
)
from audio.endpoint import EndpointConfig, Endpointer
from audio.errors import AudioError, InvalidPcmError, UnsupportedRateError

RATE = 8000
Float = npt.NDArray[np.float64]


def noise(seconds: float, dbfs: float, seed: int = 0) -> Float:
    rng = np.random.default_rng(seed)
    return rng.normal(0.0, 32768 * 10 ** (dbfs / 20), int(seconds * RATE))


def voiced(seconds: float, dbfs: float, f0: float = 140.0) -> Float:
    """A harmonic buzz (a crude vowel) whose level rises and falls 4 times a second, like syllables."""
    t = np.arange(int(seconds * RATE)) / RATE
    buzz = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 20))
    x = buzz * 0.5 * (1 - np.cos(2 * np.pi * 4 * t))
    return np.asarray(x / np.sqrt(np.mean(x**2)) * 32768 * 10 ** (dbfs / 20))


def pcm(x: Float) -> npt.NDArray[np.int16]:
    return np.clip(np.round(x), -32768, 32767).astype(np.int16)


def call(speech_dbfs: float = -25.0, noise_dbfs: float = -50.0) -> npt.NDArray[np.int16]:
    """2 s of line noise, 2 s of speech over it, 2 s of noise."""
    x = noise(6, noise_dbfs)
    x[2 * RATE : 4 * RATE] += voiced(2, speech_dbfs)
    return pcm(x)


def crests() -> npt.NDArray[np.bool_]:
    """Frames of the 2 s of :func:`voiced` in the loud half of a syllable (envelope above one half)."""
    t = (np.arange(100) + 0.5) * 0.02
    return np.asarray(0.5 * (1 - np.cos(2 * np.pi * 4 * t)) > 0.5)


def probabilities(det: SpeechDetector, audio: npt.NDArray[np.int16]) -> Float:
    return np.array([det.probability(f) for f in frames(audio, det.frame_samples)])


# --- framing ------------------------------------------------------------------------------------------------


@given(n=st.integers(0, 2000), size=st.integers(1, 400), pad=st.booleans())
def test_frames_tile_the_signal_and_drop_or_pad_the_tail(n: int, size: int, pad: bool) -> None:
    x = (np.arange(n) % 30000 + 1).astype(np.int16)
    out = list(frames(x, size, pad=pad))
    assert all(f.shape == (size,) and f.dtype == np.int16 for f in out)
    joined = np.concatenate(out) if out else np.zeros(0, np.int16)
    whole = n - n % size
    assert np.array_equal(joined[:whole], x[:whole])
    if pad and n % size:
        assert len(out) == whole // size + 1 and np.array_equal(joined[whole:n], x[whole:])
        assert not joined[n:].any()
    else:
        assert len(joined) == whole


def test_full_frames_are_views_not_copies() -> None:
    x = np.ones(480, np.int16)
    assert all(np.shares_memory(f, x) for f in frames(x, 160))


@pytest.mark.parametrize(
    ("data", "size", "error"),
    [
        (np.zeros(320, np.float32), 160, InvalidPcmError),
        (np.zeros((2, 160), np.int16), 160, InvalidPcmError),
        (b"\x00" * 320, 160, InvalidPcmError),
        (np.zeros(320, np.int16), 0, AudioError),
    ],
)
def test_frames_rejects_what_is_not_mono_int16(data: object, size: int, error: type[Exception]) -> None:
    with pytest.raises(error):
        list(frames(data, size))  # type: ignore[arg-type]


# --- levels -------------------------------------------------------------------------------------------------


def test_level_dbfs_is_relative_to_full_scale() -> None:
    t = np.arange(RATE // 50) / RATE
    assert level_dbfs(np.full(160, 32767, np.int16)) == pytest.approx(0.0, abs=0.01)
    assert level_dbfs(pcm(3277 * np.sin(2 * np.pi * 400 * t))) == pytest.approx(-20 - 3.01, abs=0.05)
    assert level_dbfs(np.zeros(160, np.int16)) == SILENT_DBFS


# --- energy detector ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("speech_dbfs", [-30.0, -20.0, -10.0])
def test_energy_separates_line_noise_from_speech(speech_dbfs: float) -> None:
    det = EnergyDetector()
    p = probabilities(det, call(speech_dbfs))
    assert np.mean(p[25:100] < 0.2) > 0.95  # noise after the floor has settled
    assert np.mean(p[200:] < 0.2) > 0.95  # noise after the speech: the floor did not climb during it
    assert np.all(p[100:200][crests()] > 0.9)
    assert det.floor_dbfs == pytest.approx(-50.0, abs=2.0)


def test_energy_floor_follows_a_step_in_line_noise() -> None:
    det = EnergyDetector()
    p = probabilities(det, pcm(np.concatenate([noise(2, -60), noise(3, -40, seed=1)])))
    assert p[100] > 0.9  # the step itself looks like speech...
    assert np.all(p[100 + 100 :] < 0.5)  # ...but within 2 s (the 1.5 s floor window) it is noise again
    assert det.floor_dbfs == pytest.approx(-40.0, abs=2.0)


def test_energy_ignores_digital_silence_and_leaves_the_floor_alone() -> None:
    det = EnergyDetector()
    probabilities(det, pcm(noise(2, -50)))
    floor = det.floor_dbfs
    assert all(det.probability(np.zeros(160, np.int16)) == 0.0 for _ in range(200))
    assert det.floor_dbfs == floor
    assert det.probability(pcm(noise(0.02, -50, seed=3))) < 0.2  # a filled gap does not make noise look loud


def test_energy_floor_never_drops_below_its_minimum() -> None:
    det = EnergyDetector(min_floor_dbfs=-65.0)
    probabilities(det, pcm(noise(2, -90)))
    assert det.floor_dbfs == -65.0
    assert det.probability(pcm(noise(0.02, -62, seed=4))) < 0.1  # faint hiss is not speech


def test_energy_with_the_endpointer_finds_the_speech() -> None:
    det = EnergyDetector()
    ep = Endpointer(EndpointConfig(sample_rate=RATE))
    out = []
    for p in probabilities(det, call()):
        out += ep.push(float(p), det.frame_samples)
    out += ep.flush()
    assert len(out) == 1
    # Speech 2..4 s; the syllable envelope is near zero at both ends, so allow 150 ms beyond the 200 ms padding.
    assert abs(out[0].start_sample - int(1.8 * RATE)) <= 0.15 * RATE
    assert abs(out[0].end_sample - int(4.2 * RATE)) <= 0.15 * RATE


@pytest.mark.parametrize(
    "kwargs",
    [
        {"sample_rate": 11025},
        {"frame_ms": 0},
        {"slope_db": 0.0},
        {"floor_window_ms": 10},
    ],
)
def test_energy_rejects_bad_settings(kwargs: dict[str, float]) -> None:
    with pytest.raises(AudioError):
        EnergyDetector(**kwargs)  # type: ignore[arg-type]


# --- webrtcvad ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_webrtc_calls_voiced_sound_speech_and_silence_not(mode: int) -> None:
    p = probabilities(WebRtcDetector(mode=mode), call())
    assert set(np.unique(p)) <= {0.0, 1.0}
    assert np.mean(p[100:200]) > 0.9 and np.mean(p[25:100]) < 0.2
    fresh = WebRtcDetector(mode=mode)  # webrtcvad holds its own ~100 ms hangover in modes 0 and 1
    assert all(fresh.probability(np.zeros(160, np.int16)) == 0.0 for _ in range(10))


def test_webrtc_at_16k_in_10ms_frames() -> None:
    det = WebRtcDetector(sample_rate=16_000, frame_ms=10)
    assert (det.sample_rate, det.frame_samples, det.mode) == (16_000, 160, 2)
    assert det.probability(np.zeros(160, np.int16)) == 0.0


def test_webrtc_rejects_bad_settings() -> None:
    with pytest.raises(UnsupportedRateError):
        WebRtcDetector(sample_rate=22_050)
    with pytest.raises(AudioError, match="25"):
        WebRtcDetector(frame_ms=25)
    with pytest.raises(AudioError, match="mode"):
        WebRtcDetector(mode=4)


def test_webrtc_reset_forgets_the_hangover_of_the_last_stream() -> None:
    det = WebRtcDetector(mode=0)
    probabilities(det, pcm(voiced(1, -20)))
    silence = np.zeros(160, np.int16)
    carried = WebRtcDetector(mode=0)
    probabilities(carried, pcm(voiced(1, -20)))
    assert carried.probability(silence) == 1.0  # mode 0 keeps calling speech for a while after it
    det.reset()
    assert det.mode == 0 and det.probability(silence) == 0.0


def test_energy_reset_returns_to_the_initial_floor() -> None:
    det = EnergyDetector(initial_floor_dbfs=-55.0)
    probabilities(det, pcm(noise(2, -40)))
    assert det.floor_dbfs == pytest.approx(-40.0, abs=2.0)
    det.reset()
    assert det.floor_dbfs == -55.0
    assert det.probability(pcm(noise(0.02, -40, seed=5))) > 0.5  # the old line's floor no longer masks it


# --- the protocol and bad frames ----------------------------------------------------------------------------


@pytest.mark.parametrize("make", [EnergyDetector, WebRtcDetector])
def test_detectors_implement_the_protocol_and_reject_bad_frames(make: type[SpeechDetector]) -> None:
    det = make()
    assert isinstance(det, SpeechDetector) and isinstance(det, ResettableDetector)
    assert (det.sample_rate, det.frame_samples) == (8000, 160)
    for bad in (np.zeros(159, np.int16), np.zeros(161, np.int16), np.zeros(160, np.float32), b"\x00" * 320):
        with pytest.raises(InvalidPcmError):
            det.probability(bad)  # type: ignore[arg-type]


def test_importing_the_detectors_does_not_import_webrtcvad() -> None:
    code = "import sys, audio.detectors, audio.endpoint; sys.exit('webrtcvad' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
