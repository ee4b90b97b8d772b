"""One track of one call: jitter buffer → recorder, and μ-law → 16 kHz → transcript stream.

No batching on our side: every frame the jitter buffer releases is recorded and handed to the resampler at once,
inside the same call. :class:`~audio.mulaw_resample.MulawResampler` keeps the μ-law until soxr has a block to give
and decodes + resamples then, so most frames cost an append, the recogniser gets each block on the push that
completes it (never later than soxr itself releases it), and a server that falls behind pays the per-call overhead of
decode and resample once per block however the frames arrived. (Before, frames were collected and handed off once
per event-loop wake-up: a scheduled callback per message for work that is now an append.)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np

from audio import SAMPLES_PER_MS, STT_RATE
from audio.jitter import Frame, JitterBuffer
from audio.media_time import samples_to_ms
from audio.mulaw_resample import MulawResampler
from switchboard.metrics import Histogram
from switchboard.transcribe.base import TranscriptStream

RecordFn = Callable[[str, int, bytes, int], None]
KEEP_UP_MS = 2_000
"""How far a silent track may fall behind the other before its silence is released (far above any reordering)."""
CATCH_UP_STEP_MS = 60_000


class TrackPipeline:
    """Everything a track's audio goes through on the media path; synchronous and cheap per frame."""

    def __init__(self, track: str, stream: TranscriptStream, record: RecordFn, *, window_ms: int = 60,
                 lag: Histogram | None = None) -> None:
        self.track = track
        self._stream = stream
        self._record = record
        self._jitter = JitterBuffer(window_ms=window_ms)
        self._resampler = MulawResampler(STT_RATE)
        self._samples_out = 0
        self._finished = False
        self._heard = False
        """Whether this track has had any media: one that never did (an inbound-only stream's outbound track) is
        not fed silence, so its recogniser does no work for it."""
        self._lag = lag
        """Observed when audio reaches the recogniser: from the arrival of the frame whose push released it."""
        self._arrived = 0.0

    def push(self, chunk: int, timestamp_ms: int, payload: bytes) -> None:
        if not self._heard:
            self._heard = True
            self._catch_up(timestamp_ms)
        self._arrived = time.perf_counter()
        self._emit(self._jitter.push(chunk, timestamp_ms, payload))

    def release_until(self, timestamp_ms: int) -> None:
        self._emit(self._jitter.release_until(timestamp_ms))

    def keep_up(self, timestamp_ms: int) -> None:
        """Another track reached ``timestamp_ms``: if this one is more than ``KEEP_UP_MS`` behind, it is silent (an
        outbound track while nothing plays), so fill it up to there now. Its holes then never grow past a few
        seconds, and the jitter buffer's gap bound only ever meets hostile timestamps. A track that has had no media
        yet is left alone (the recording's aligner fills it; its recogniser has nothing to do)."""
        if not self._heard:
            return
        behind = timestamp_ms - KEEP_UP_MS
        if behind * SAMPLES_PER_MS > self._jitter.next_sample and not self._finished:
            self.release_until(behind)

    def _catch_up(self, timestamp_ms: int) -> None:
        """A track's first frame, minutes into the call: its silence goes to the recogniser a minute at a time (its
        media times stay right, and memory stays bounded however late it starts)."""
        while timestamp_ms - KEEP_UP_MS > self._jitter.next_sample // SAMPLES_PER_MS + CATCH_UP_STEP_MS:
            self.release_until(self._jitter.next_sample // SAMPLES_PER_MS + CATCH_UP_STEP_MS)

    def finish(self) -> None:
        """Release everything held, drain the resampler's delay line and tell the recogniser the track ended."""
        if self._finished:
            return
        self._finished = True
        self._emit(self._jitter.flush())
        self._to_stream(self._resampler.flush())
        self._stream.end()

    def _emit(self, frames: list[Frame]) -> None:
        record, resampler = self._record, self._resampler
        for frame in frames:
            payload = frame.payload
            if not frame.filled:  # the aligner fills gaps from timestamps itself
                record(self.track, frame.timestamp_ms, payload, frame.offset)
            pcm = resampler.push(payload)
            if pcm.size:
                self._to_stream(pcm)
                if self._lag is not None and not self._finished:
                    self._lag.observe(time.perf_counter() - self._arrived)

    def _to_stream(self, pcm: np.ndarray) -> None:
        if pcm.size:
            self._stream.push(pcm, samples_to_ms(self._samples_out, STT_RATE))
            self._samples_out += pcm.size

    def stats(self) -> dict[str, object]:
        return {"jitter": asdict(self._jitter.stats()), "stt_samples": self._samples_out}
