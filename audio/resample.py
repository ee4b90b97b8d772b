"""Streaming sample-rate conversion on ``soxr.ResampleStream``: one instance per track for a whole call.

Why a stream and not per-frame ``soxr.resample``: resampling each 20 ms frame on its own leaves an edge
artefact every frame and costs ~10× more. A stream keeps the filter state between frames, so its output is the
signal one-shot resampling of the whole call would give. The state is never reset, not even across long
silences: peers that reset after a short silence cut off the filter tail of the last word.

Why float32 inside although the API is int16: with ``dtype="int16"`` libsoxr dithers its output (digital
silence comes out as ±1), so the result depends on how the input was chunked (±2 LSB here). Resampling in
float32 (on the int16 scale, not normalised) and rounding once at the end makes the output bit-identical for
any chunking and keeps silence silent, for ~2 µs a frame (amortised, measured on a busy 2-core box).

Latency: soxr works in blocks, not per frame. Fed 20 ms frames at MQ, 8 kHz → 16 kHz, it returns nothing for
five frames, then 1732 samples (108 ms) at once; the output lags the input by 160–1888 samples (10–118 ms,
64 ms on average; LQ halves that; QQ, a mere cubic interpolator, has almost none). ``delay_samples`` reports
the lag at any moment and ``flush`` releases it at the end. The output is time-aligned with the input (output
sample *k* is at input time *k* / ``out_rate``): the first sample of a returned chunk is at media time
``samples_out / out_rate``, read before the call. There is no constant offset to subtract.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import soxr

from audio.errors import AudioError, InvalidPcmError, UnsupportedRateError

__all__ = ["QUALITIES", "SUPPORTED_RATES", "StreamResampler"]

SUPPORTED_RATES: Final = frozenset({8000, 16000, 22050, 24000, 44100, 48000})
"""Rates met in telephony, recognisers and TTS; any pair of them converts."""
QUALITIES: Final = ("QQ", "LQ", "MQ", "HQ", "VHQ")
"""soxr quality recipes. MQ is the default: the same CPU as HQ with a shorter filter (less latency)."""

_INT16_MIN: Final = np.float32(-32768)
_INT16_MAX: Final = np.float32(32767)
_INT16: Final = np.dtype(np.int16)  # dtype objects, not scalar types: comparing with these is ~3× cheaper
_FLOAT32: Final = np.dtype(np.float32)


class StreamResampler:
    """Convert one mono int16 stream from ``in_rate`` to ``out_rate``, chunk by chunk.

    ``push`` any number of samples (zero included) and get back whatever output is ready; ``flush`` once at
    the end to release what the filter still holds. There is deliberately no ``reset``: a new stream gets a
    new instance.
    """

    def __init__(self, in_rate: int, out_rate: int, quality: str = "MQ") -> None:
        for rate in (in_rate, out_rate):
            if rate not in SUPPORTED_RATES:
                raise UnsupportedRateError(
                    f"cannot resample {in_rate} Hz → {out_rate} Hz: {rate} Hz is not one of {sorted(SUPPORTED_RATES)}"
                )
        if quality not in QUALITIES:
            raise AudioError(f"unknown resampler quality {quality!r}; expected one of {QUALITIES}")
        self.in_rate: Final = in_rate
        self.out_rate: Final = out_rate
        self.quality: Final = quality
        self.samples_in = 0
        """Input samples pushed so far."""
        self.samples_out = 0
        """Output samples returned so far (by ``push`` and ``flush``)."""
        self._stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)
        self._finished = False
        self._empty: Final = np.zeros(0, dtype=_INT16)
        self._empty.flags.writeable = False

    @property
    def delay_samples(self) -> int:
        """Output samples owed for the input pushed so far: the current latency, which ``flush`` releases.

        It varies from call to call because soxr emits in blocks (see the module docstring); 0 once flushed.
        """
        return round(float(self._stream.delay()))

    @property
    def finished(self) -> bool:
        """True once :meth:`flush` has ended the stream."""
        return self._finished

    def push(self, pcm: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
        """Feed a 1-D int16 chunk; return the output now ready (often empty: soxr emits in blocks)."""
        self._ensure_open()
        if not isinstance(pcm, np.ndarray) or pcm.dtype != _INT16 or pcm.ndim != 1:
            got = f"{pcm.dtype} {pcm.shape}" if isinstance(pcm, np.ndarray) else type(pcm).__name__
            raise InvalidPcmError(f"StreamResampler.push needs a 1-D int16 array, got {got}")
        out = self._stream.resample_chunk(pcm.astype(_FLOAT32))
        self.samples_in += pcm.shape[0]
        return self._to_int16(out)

    def push_float32(self, samples: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
        """:meth:`push` for samples already in float32 on the int16 scale (not normalised): no conversion on the way.

        For callers that decode straight to float32 (:class:`audio.mulaw_resample.MulawResampler`); the output is
        what :meth:`push` gives for the same values as int16.
        """
        self._ensure_open()
        if not isinstance(samples, np.ndarray) or samples.dtype != _FLOAT32 or samples.ndim != 1:
            got = f"{samples.dtype} {samples.shape}" if isinstance(samples, np.ndarray) else type(samples).__name__
            raise InvalidPcmError(f"StreamResampler.push_float32 needs a 1-D float32 array, got {got}")
        out = self._stream.resample_chunk(samples)
        self.samples_in += samples.shape[0]
        return self._to_int16(out)

    def flush(self) -> npt.NDArray[np.int16]:
        """End the stream and return the samples the filter still held.

        Calling it again returns an empty array (shutdown paths may flush twice); ``push`` after it raises.
        """
        if self._finished:
            return self._empty
        self._finished = True
        out = self._stream.resample_chunk(np.zeros(0, dtype=_FLOAT32), last=True)
        return self._to_int16(out)

    def _ensure_open(self) -> None:
        if self._finished:
            raise AudioError("StreamResampler was flushed: the stream is finished, create a new resampler")

    def _to_int16(self, out: npt.NDArray[np.float32]) -> npt.NDArray[np.int16]:
        """Round to int16 with saturation (a full-scale input can overshoot after filtering)."""
        if not out.size:
            return self._empty  # most pushes return nothing: skip three ufunc calls on an empty array
        np.rint(out, out=out)
        np.minimum(out, _INT16_MAX, out=out)  # minimum/maximum: ~30% cheaper than np.clip here
        np.maximum(out, _INT16_MIN, out=out)
        self.samples_out += out.shape[0]
        return out.astype(np.int16)
