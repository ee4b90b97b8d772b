"""Cheap speech detectors: one int16 frame in, a speech probability in [0, 1] out.

They feed :class:`audio.endpoint.Endpointer`. The accurate model detector (Silero) lives with the
transcription code and implements the same :class:`SpeechDetector` protocol; these are the no-model options,
good as a pre-gate or where the model is unavailable (their accuracy on our fixtures: ``scripts/vad_accuracy.py``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Final, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from audio.errors import AudioError, InvalidPcmError, UnsupportedRateError
from audio.pcm import check_pcm

if TYPE_CHECKING:
    import webrtcvad

Pcm = npt.NDArray[np.int16]
FULL_SCALE_POWER: Final = 32768.0**2
SILENT_DBFS: Final = -120.0
"""Level reported for digital silence (all-zero frames), which has no finite dBFS."""


@runtime_checkable
class SpeechDetector(Protocol):
    """Speech probability per frame of exactly ``frame_samples`` int16 samples at ``sample_rate``."""

    @property
    def sample_rate(self) -> int: ...

    @property
    def frame_samples(self) -> int: ...

    def probability(self, frame: Pcm) -> float:
        """Probability in [0, 1] that ``frame`` is speech; a wrong-sized frame raises InvalidPcmError."""
        ...


@runtime_checkable
class ResettableDetector(SpeechDetector, Protocol):
    """A detector that carries state between frames and can forget it, so one instance serves many streams."""

    def reset(self) -> None:
        """Forget everything seen, ready for an unrelated stream."""
        ...


def check_frame(frame: object, frame_samples: int) -> Pcm:
    """``frame`` if it is a 1-D int16 array of ``frame_samples`` samples, else raise InvalidPcmError."""
    frame = check_pcm(frame)
    if frame.shape[0] != frame_samples:
        raise InvalidPcmError(f"expected a frame of {frame_samples} samples, got {frame.shape[0]}")
    return frame


def frames(pcm: Pcm, frame_samples: int, *, pad: bool = False) -> Iterator[Pcm]:
    """Consecutive ``frame_samples`` views of ``pcm``; a short tail is dropped, or zero-padded if ``pad``."""
    if frame_samples <= 0:
        raise AudioError(f"frame_samples must be positive, got {frame_samples}")
    check_pcm(pcm)
    whole = len(pcm) - len(pcm) % frame_samples
    for start in range(0, whole, frame_samples):
        yield pcm[start : start + frame_samples]
    if pad and whole < len(pcm):
        tail = np.zeros(frame_samples, dtype=np.int16)
        tail[: len(pcm) - whole] = pcm[whole:]
        yield tail


def _frame_samples(sample_rate: int, frame_ms: int) -> int:
    if sample_rate <= 0 or frame_ms <= 0 or sample_rate * frame_ms % 1000:
        raise AudioError(f"{frame_ms} ms is not a whole number of samples at {sample_rate} Hz")
    return sample_rate * frame_ms // 1000


def level_dbfs(frame: Pcm) -> float:
    """RMS level of ``frame`` in dB relative to a full-scale square wave; :data:`SILENT_DBFS` if all zero."""
    x = frame.astype(np.float64)
    power = float(np.dot(x, x)) / (len(x) * FULL_SCALE_POWER)
    return max(10.0 * math.log10(power), SILENT_DBFS) if power > 0.0 else SILENT_DBFS


class EnergyDetector:
    """Frame level against a tracked noise floor, mapped to a probability by a logistic.

    The floor is the minimum frame level over the last ``floor_window_ms`` (minimum statistics: speech has
    gaps between words, line noise does not), never below ``min_floor_dbfs`` so that near-digital silence does
    not make faint hiss look like speech. ``p = logistic((level − floor − margin_db) / slope_db)``: with the
    defaults, μ-law line noise at about −50 dBFS scores near 0 and speech at −30..−10 dBFS near 1. All-zero
    frames (gaps the jitter buffer filled) score 0 and leave the floor alone: they say nothing about the line.
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        frame_ms: int = 20,
        *,
        margin_db: float = 10.0,
        slope_db: float = 2.0,
        floor_window_ms: int = 1500,
        min_floor_dbfs: float = -65.0,
        initial_floor_dbfs: float = -55.0,
    ) -> None:
        self._frame_samples = _frame_samples(sample_rate, frame_ms)
        self._sample_rate = sample_rate
        if slope_db <= 0.0:
            raise AudioError(f"EnergyDetector.slope_db must be positive, got {slope_db}")
        if floor_window_ms < frame_ms:
            raise AudioError(f"EnergyDetector.floor_window_ms must be >= frame_ms, got {floor_window_ms}")
        self._margin = margin_db
        self._slope = slope_db
        self._min_floor = min_floor_dbfs
        self._initial_floor = max(initial_floor_dbfs, min_floor_dbfs)
        self._window = floor_window_ms // frame_ms
        self._count = 0
        # Monotonic deque of (frame index, level): the front is the minimum of the window.
        self._minima: deque[tuple[int, float]] = deque([(0, self._initial_floor)])

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def frame_samples(self) -> int:
        return self._frame_samples

    @property
    def floor_dbfs(self) -> float:
        """Current noise-floor estimate."""
        return max(self._minima[0][1], self._min_floor)

    def probability(self, frame: Pcm) -> float:
        level = level_dbfs(check_frame(frame, self._frame_samples))
        if level <= SILENT_DBFS:
            return 0.0
        self._track(level)
        z = (level - self.floor_dbfs - self._margin) / self._slope
        return 1.0 / (1.0 + math.exp(-z)) if z > -50.0 else 0.0

    def reset(self) -> None:
        """Back to the initial noise floor (the last line's floor says nothing about the next one)."""
        self._count = 0
        self._minima = deque([(0, self._initial_floor)])

    def _track(self, level: float) -> None:
        self._count += 1
        minima = self._minima
        while minima and minima[-1][1] >= level:
            minima.pop()
        minima.append((self._count, level))
        if minima[0][0] <= self._count - self._window:
            minima.popleft()


class WebRtcDetector:
    """``webrtcvad.Vad`` as a SpeechDetector: 0.0 or 1.0 per frame.

    Cheap (≈ 10 µs per 20 ms) but blunt on a noisy phone line: mode 0 calls nearly everything speech and
    mode 3 misses a lot: a pre-gate, not a final answer. ``webrtcvad`` is imported in the constructor,
    not at module import, so the rest of :mod:`audio` does not need it.
    """

    RATES: Final = (8000, 16000, 32000, 48000)
    FRAME_MS: Final = (10, 20, 30)

    def __init__(self, sample_rate: int = 8000, frame_ms: int = 20, mode: int = 2) -> None:
        if sample_rate not in self.RATES:
            raise UnsupportedRateError(f"webrtcvad takes {self.RATES} Hz, got {sample_rate}")
        if frame_ms not in self.FRAME_MS:
            raise AudioError(f"webrtcvad takes frames of {self.FRAME_MS} ms, got {frame_ms}")
        if mode not in (0, 1, 2, 3):
            raise AudioError(f"webrtcvad mode must be 0..3, got {mode}")
        import webrtcvad  # lazy: only this detector needs the C extension

        self._vad: webrtcvad.Vad = webrtcvad.Vad(mode)
        self._sample_rate = sample_rate
        self._frame_samples = sample_rate * frame_ms // 1000
        self.mode = mode

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def frame_samples(self) -> int:
        return self._frame_samples

    def probability(self, frame: Pcm) -> float:
        pcm = check_frame(frame, self._frame_samples)
        return 1.0 if self._vad.is_speech(pcm.astype("<i2", copy=False).tobytes(), self._sample_rate) else 0.0

    def reset(self) -> None:
        """A fresh ``Vad``: its noise estimate and hangover belong to the stream it heard."""
        import webrtcvad

        self._vad = webrtcvad.Vad(self.mode)
