"""μ-law in, resampled int16 out, with soxr called only when it has a block to give back.

soxr works in blocks. Fed Twilio's 20 ms frames at MQ, 8 → 16 kHz, it returns nothing for five or six frames and then
1732 samples at once; every call in between costs its fixed overhead (the Python wrapper, a float32 copy, the C call:
about 3 µs, most of the per-frame audio path) and returns nothing. Which call returns a block depends only on how many
input samples soxr has been given in all: block *k* comes out of the call that brings the total to ``first + k·step``
(MQ 8 → 16 kHz: 945 + 866·k). So :class:`MulawResampler` keeps the μ-law bytes and hands them over, decoded straight
to float32, on the push that reaches the next block. Its output, the values and the push each sample comes out of, is
exactly what decoding and resampling every push at once gives (tested against :class:`StreamResampler` on random
chunkings): no sample waits longer than soxr itself makes it wait.

The schedule is measured on a scratch soxr stream (a binary search, once per rate pair and quality in a process), not
read from soxr's source, so another soxr version cannot silently break it. If the measured releases are not periodic,
or a block that was due does not come out, the resampler feeds soxr on every push from then on: slower, never later.
"""

from __future__ import annotations

import functools
from typing import Final, Literal

import numpy as np
import numpy.typing as npt
import soxr

from audio import TWILIO_RATE
from audio.errors import InvalidPcmError
from audio.mulaw import decode
from audio.resample import StreamResampler

__all__ = ["MulawResampler", "block_schedule"]

_AS_FLOAT32: Final = decode(bytes(range(256))).astype(np.float32)
"""μ-law code → its int16 value as float32: the values :meth:`StreamResampler.push` would convert to."""
_AS_FLOAT32.flags.writeable = False
_PROBE_LIMIT: Final = 1 << 16
"""Input samples beyond which a probe gives up (soxr's blocks are a few thousand samples at most)."""
_EMPTY: Final = np.zeros(0, dtype=np.int16)
_EMPTY.flags.writeable = False


def _releases(in_rate: int, out_rate: int, quality: str, before: int, n: int) -> bool:
    """Whether a fresh stream given ``before`` samples in one call returns anything for ``n`` more in the next."""
    stream = soxr.ResampleStream(in_rate, out_rate, 1, dtype="float32", quality=quality)
    if before:
        stream.resample_chunk(np.zeros(before, dtype=np.float32))
    return bool(stream.resample_chunk(np.zeros(n, dtype=np.float32)).size)


def _next_release(in_rate: int, out_rate: int, quality: str, before: int) -> int | None:
    """The fewest samples after ``before`` that make the stream return output (None past the probe limit)."""
    hi = 64
    while not _releases(in_rate, out_rate, quality, before, hi):
        if hi >= _PROBE_LIMIT:
            return None
        hi *= 2
    lo = hi // 2 + 1 if hi > 64 else 1
    while lo < hi:  # more input never releases less, so the answer is a threshold
        mid = (lo + hi) // 2
        if _releases(in_rate, out_rate, quality, before, mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


@functools.cache
def block_schedule(in_rate: int, out_rate: int, quality: str) -> tuple[int, int] | None:
    """``(first, step)``: soxr returns block *k* on the call that brings its input to ``first + k·step`` samples.

    None when the releases measured are not periodic (then no call may be skipped). Cached: a pure function of the
    arguments and the soxr library loaded.
    """
    first = _next_release(in_rate, out_rate, quality, 0)
    if first is None:
        return None
    step = _next_release(in_rate, out_rate, quality, first)
    if step is None or _next_release(in_rate, out_rate, quality, first + step) != step:
        return None
    return first, step


class MulawResampler:
    """One track's 8 kHz μ-law → ``out_rate`` int16, chunk by chunk; see the module docstring.

    ``push`` any number of μ-law bytes (zero included) and get back whatever output is ready; ``flush`` once at the
    end for what the filter still holds. Output sample *k* is at media time *k* / ``out_rate``, as with
    :class:`StreamResampler`.
    """

    def __init__(self, out_rate: int, quality: str = "MQ", *,
                 schedule: tuple[int, int] | Literal["measure"] | None = "measure") -> None:
        """``schedule``: "measure" asks soxr (cached), None feeds every push, a pair is taken as given (tests)."""
        self._resampler = StreamResampler(TWILIO_RATE, out_rate, quality)
        self._ratio: Final = out_rate / TWILIO_RATE
        self._schedule = block_schedule(TWILIO_RATE, out_rate, quality) if schedule == "measure" else schedule
        self._due = self._schedule[0] if self._schedule else 0
        """Input samples (fed + pending) at which soxr's next block comes out."""
        self._pending = bytearray()
        self.samples_in = 0
        """μ-law bytes (samples) pushed so far, including those not yet handed to soxr."""

    @property
    def samples_out(self) -> int:
        """Output samples returned so far."""
        return self._resampler.samples_out

    @property
    def delay_samples(self) -> int:
        """Output samples owed for the input pushed so far (what :meth:`flush` would release now)."""
        return self._resampler.delay_samples + round(len(self._pending) * self._ratio)

    @property
    def held_samples(self) -> int:
        """μ-law samples pushed but not yet handed to soxr (no output is owed for them before the next block)."""
        return len(self._pending)

    @property
    def finished(self) -> bool:
        return self._resampler.finished

    @property
    def skips_calls(self) -> bool:
        """Whether soxr is called only when a block is due (False after the fallback to every push)."""
        return self._schedule is not None

    def push(self, ulaw: bytes | bytearray | memoryview) -> npt.NDArray[np.int16]:
        """Take μ-law bytes; return the output now ready (usually empty: soxr releases in blocks)."""
        if self._resampler.finished:
            self._resampler.push(_EMPTY)  # raises: the stream is finished
        if not isinstance(ulaw, (bytes, bytearray, memoryview)):
            raise InvalidPcmError(f"MulawResampler.push needs μ-law bytes, got {type(ulaw).__name__}")
        self._pending += ulaw
        self.samples_in += len(ulaw)
        if self.samples_in < self._due or not self._pending:
            return _EMPTY
        return self._feed()

    def flush(self) -> npt.NDArray[np.int16]:
        """End the stream: everything pending and what the filter still holds. A second call returns nothing."""
        if self._resampler.finished:
            return _EMPTY
        head = self._feed(due=False) if self._pending else _EMPTY
        tail = self._resampler.flush()
        return np.concatenate([head, tail]) if head.size and tail.size else (head if head.size else tail)

    def _feed(self, due: bool = True) -> npt.NDArray[np.int16]:
        # The frombuffer view is a temporary: gone once take() returns, so the bytearray may be resized after.
        samples = _AS_FLOAT32.take(np.frombuffer(self._pending, dtype=np.uint8))
        del self._pending[:]
        out = self._resampler.push_float32(samples)
        if due and self._schedule is not None:
            if not out.size:  # the block we waited for did not come: stop skipping calls (slower, never later)
                self._schedule, self._due = None, 0
            else:
                step = self._schedule[1]
                while self._due <= self.samples_in:
                    self._due += step
        return out
