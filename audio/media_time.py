"""Audio positions for the transcribers: a sample log addressed by absolute index, and sample index → media ms.

Every stream counts the samples it was given and must report results in media time (ms since the call's stream
began). The two differ wherever the pushed ``pts_ms`` jumps (a gap the jitter buffer did not fill, a replay that
starts mid-call), so the clock keeps an anchor at each jump.
"""

from __future__ import annotations

from collections import deque

import numpy as np

from audio import STT_RATE
from audio.pcm import Pcm16


def samples_to_ms(samples: int, rate: int) -> int:
    """Media time of ``samples`` at ``rate``, in whole ms (floored): the one conversion from samples to media time."""
    return samples * 1000 // rate


def ms_to_samples(ms: int, rate: int) -> int:
    """Samples in ``ms`` of media time at ``rate`` (floored): the one conversion from media time to samples."""
    return ms * rate // 1000


class SampleLog:
    """int16 samples addressed by absolute index since the stream began; the front is dropped as it ages."""

    def __init__(self, capacity: int = STT_RATE) -> None:
        self._buf = np.zeros(capacity, dtype=np.int16)
        self._head = 0  # buf[_head:_tail] holds samples origin..end
        self._tail = 0
        self.origin = 0

    @property
    def end(self) -> int:
        return self.origin + self._tail - self._head

    def append(self, pcm: Pcm16) -> None:
        n = len(pcm)
        if self._tail + n > len(self._buf):
            live = self._buf[self._head : self._tail]
            size = max(len(self._buf), 2 * (len(live) + n))
            buf = np.zeros(size, dtype=np.int16) if size > len(self._buf) else self._buf
            buf[: len(live)] = live  # overlapping copy to the front is safe: numpy buffers the slice
            self._buf, self._head, self._tail = buf, 0, len(live)
        self._buf[self._tail : self._tail + n] = pcm
        self._tail += n

    def view(self, start: int, end: int) -> Pcm16:
        """Samples ``[start, end)``; a view, valid until the next ``append``."""
        if not self.origin <= start <= end <= self.end:
            raise IndexError(f"samples [{start}, {end}) not held (have [{self.origin}, {self.end}))")
        return self._buf[self._head + start - self.origin : self._head + end - self.origin]

    def drop_before(self, index: int) -> None:
        keep_from = min(max(index, self.origin), self.end)
        self._head += keep_from - self.origin
        self.origin = keep_from


class MediaClock:
    """Sample index → media ms, re-anchored wherever the pushed ``pts_ms`` jumps away from the sample count."""

    def __init__(self, rate: int = STT_RATE) -> None:
        self.rate = rate
        self._anchors: deque[tuple[int, int]] = deque()  # (sample index, pts_ms), increasing

    def note(self, sample: int, pts_ms: int) -> None:
        if not self._anchors or abs(self.ms(sample) - pts_ms) > 1:  # 1 ms of rounding is not a jump
            self._anchors.append((sample, pts_ms))

    def ms(self, sample: int) -> int:
        anchor, pts = self._anchors[0] if self._anchors else (0, 0)
        for a, p in self._anchors:
            if a > sample:
                break
            anchor, pts = a, p
        return pts + samples_to_ms(sample - anchor, self.rate)

    def seconds_to_ms(self, seconds: float) -> int:
        return self.ms(round(seconds * self.rate))

    def drop_before(self, sample: int) -> None:
        while len(self._anchors) > 1 and self._anchors[1][0] <= sample:
            self._anchors.popleft()


__all__ = ["MediaClock", "SampleLog", "ms_to_samples", "samples_to_ms"]
