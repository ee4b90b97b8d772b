"""One track of one call: jitter buffer → recorder, and μ-law decode → 16 kHz resample → transcript stream.

Batching by what is already waiting, never by waiting for more: frames released by the jitter buffer are recorded at
once and collected; :meth:`TrackPipeline.hand_off` decodes and resamples everything collected in one go, and the
session calls it once per event-loop wake-up (after every message that was already read has been pushed). At real
time that is one frame per hand-off, so batching adds no latency; when the server falls behind, the frames read in
one wake-up go out as one batch, so the per-call overhead of decode and resample falls just when CPU is short.
``max_batch_ms`` (40) bounds what a pipeline collects between hand-offs (a caller that never calls it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict

import numpy as np

from audio import SAMPLES_PER_MS, STT_RATE, TWILIO_RATE
from audio.jitter import Frame, JitterBuffer
from audio.media_time import ms_to_samples, samples_to_ms
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
                 max_batch_ms: int = 40, lag: Histogram | None = None) -> None:
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
        self._batch_bytes = ms_to_samples(max_batch_ms, TWILIO_RATE)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._lag = lag
        self._oldest_arrival = 0.0

    def push(self, chunk: int, timestamp_ms: int, payload: bytes) -> None:
        if not self._heard:
            self._heard = True
            self._catch_up(timestamp_ms)
        if not self._pending:
            self._oldest_arrival = time.perf_counter()
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
        self.hand_off()
        self._to_stream(self._resampler.flush())
        self._stream.end()

    def _emit(self, frames: list[Frame]) -> None:
        if not frames:
            return
        for frame in frames:
            if not frame.filled:  # the aligner fills gaps from timestamps itself
                self._record(self.track, frame.timestamp_ms, frame.payload, frame.offset)
            self._pending.append(frame.payload)
            self._pending_bytes += len(frame.payload)
        if self._pending_bytes >= self._batch_bytes:
            self.hand_off()

    @property
    def pending(self) -> bool:
        """Frames are collected that :meth:`hand_off` has not yet passed on."""
        return bool(self._pending)

    def hand_off(self) -> None:
        """Pass every collected frame to the resampler in one batch; push what it releases to the transcript stream.

        The resampler keeps μ-law until soxr has a block to give (never later than soxr itself would), so most hand-offs
        only append bytes."""
        if self._pending:
            pending = self._pending
            payload = pending[0] if len(pending) == 1 else b"".join(pending)
            pending.clear()
            self._pending_bytes = 0
            self._to_stream(self._resampler.push(payload))
            if self._lag is not None:
                self._lag.observe(time.perf_counter() - self._oldest_arrival)

    def _to_stream(self, pcm: np.ndarray) -> None:
        if pcm.size:
            self._stream.push(pcm, samples_to_ms(self._samples_out, STT_RATE))
            self._samples_out += pcm.size

    def stats(self) -> dict[str, object]:
        return {"jitter": asdict(self._jitter.stats()), "stt_samples": self._samples_out}
