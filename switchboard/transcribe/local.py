"""Offline transcription: Silero + the ``audio`` endpointer cut utterances, Moonshine decodes each at its end.

Per stream the work is driven by the iterating coroutine, so there is no background task to orphan: ``push``
only appends to a buffer and wakes the iterator; ``__anext__`` runs the detector and endpointer over the new
audio (~0.1–0.5 ms per 32 ms window), hands each finished utterance to the :class:`RecognizerPool` (one
decode in flight per stream, so finals come out in order) and waits on "more audio" or "decode done". Audio
is kept from :attr:`Endpointer.retain_from` on, i.e. only the open utterance plus padding (≤ max utterance +
padding) and whatever the iterator has not yet looked at.

Overflow policy: audio the iterator has not looked at is bounded by ``max_backlog_ms``. A stream nobody
iterates any more (its consumer stopped after an error) would otherwise grow for the rest of the call, so past
the bound newer audio is dropped and counted (``stats().dropped_samples``); media timestamps stay right because
the next accepted push re-anchors the clock at its ``pts_ms``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from audio import STT_RATE
from audio.cutter import Closed, UtteranceCutter
from audio.detectors import ResettableDetector
from audio.endpoint import EndpointConfig
from audio.errors import UnsupportedRateError
from audio.media_time import ms_to_samples
from switchboard.transcribe.base import Pcm16, TranscriptEvent, check_push
from switchboard.transcribe.moonshine import Recognition, RecognizerPool
from switchboard.transcribe.vad import DetectorPool
from switchboard.transcribe.waker import Waker

log = logging.getLogger(__name__)

PARTIAL_MAX_MS: Final = 4_000
"""Pseudo-partials re-decode the whole open utterance, whose cost grows super-linearly: stop past 4 s."""


@dataclass(frozen=True, slots=True)
class _Job:
    start_ms: int  # media times are fixed when the job is cut: the clock forgets anchors as audio ages
    end_ms: int
    is_final: bool
    samples: npt.NDArray[np.float32]


@dataclass(frozen=True, slots=True)
class LocalStreamStats:
    pushed_samples: int
    backlog_samples: int
    """Pushed but not yet run through the detector."""
    retained_samples: int
    dropped_samples: int
    """Pushed while the backlog was over ``max_backlog_ms``: never transcribed."""
    finals: int
    partials: int


class LocalStream:
    """One track's :class:`~switchboard.transcribe.base.TranscriptStream`; a single coroutine iterates it."""

    def __init__(self, track: str, pool: RecognizerPool, detector: ResettableDetector, detectors: DetectorPool,
                 config: EndpointConfig, partial_interval_ms: int, provider: str, max_backlog_ms: int) -> None:
        self.track = track
        self._pool, self._detector, self._detectors = pool, detector, detectors
        self._cutter = UtteranceCutter(detector, config, max_backlog_ms)
        self._partial_every = config.samples(partial_interval_ms)
        self._next_partial: int | None = None
        self._provider = provider
        self._jobs: deque[_Job] = deque()
        self._inflight: tuple[_Job, asyncio.Future[Recognition]] | None = None
        self._waker = Waker()
        self._ended = self._closed = False
        self._finals = self._partials = 0

    def push(self, pcm: Pcm16, pts_ms: int) -> None:
        """Append audio (int16, 16 kHz) whose first sample is at media time ``pts_ms``; never blocks."""
        check_push(pcm, ended=self._ended, track=self.track, provider=self._provider)
        if not self._cutter.push(pcm, pts_ms):
            if self._cutter.dropped_samples == len(pcm):
                log.warning("track %s: transcription backlog over its bound, dropping audio (is the stream "
                            "still iterated?)", self.track)
            return
        if len(pcm):
            self._waker.wake()

    def end(self) -> None:
        """No more audio: the open utterance is flushed and iteration stops after the last final."""
        self._ended = True
        self._cutter.finish()
        self._waker.wake()

    def __aiter__(self) -> LocalStream:
        return self

    async def __anext__(self) -> TranscriptEvent:
        while not self._closed:
            more = self._advance()
            event = self._collect()
            if event is not None:
                return event
            if self._cutter.flushed and not self._jobs and self._inflight is None:
                self._finish()
                break
            if more:
                await asyncio.sleep(0)  # let the media path run between detector batches
            else:
                await self._waker.wait()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Abandon the stream: queued decodes are dropped, a running one is left to finish and ignored."""
        self._ended = True
        if self._inflight is not None:
            future = self._inflight[1]
            if future.done() and not future.cancelled():
                future.exception()  # abandoned on purpose: mark a failure as seen, not "never retrieved"
            future.cancel()
            self._inflight = None
        self._jobs.clear()
        self._finish()
        self._waker.wake()

    def stats(self) -> LocalStreamStats:
        c = self._cutter
        return LocalStreamStats(c.end + c.dropped_samples, c.backlog, c.retained, c.dropped_samples, self._finals,
                                self._partials)

    def _advance(self) -> bool:
        """Run a step of the cutter and queue the utterances it closed; True if audio is left to look at."""
        for event in self._cutter.step():
            if isinstance(event, Closed):
                self._jobs.append(self._job(event.cut.start_sample, event.cut.end_sample, is_final=True))
                self._next_partial = None
        self._maybe_partial()
        return self._cutter.pending

    def _job(self, start: int, end: int, is_final: bool) -> _Job:
        samples = self._cutter.view(start, end).astype(np.float32) / np.float32(32768.0)
        return _Job(self._cutter.ms(start), self._cutter.ms(end), is_final, samples)

    def _maybe_partial(self) -> None:
        cutter = self._cutter
        start = cutter.speech_start
        if start is None:
            self._next_partial = None
            return
        # In the hangover nothing new is being said: re-decoding trailing quiet would only cost CPU.
        if not self._partial_every or cutter.flushed or not cutter.speaking:
            return
        if self._next_partial is None:
            self._next_partial = start + self._partial_every
        busy = self._jobs or self._inflight is not None
        short = cutter.position - start <= ms_to_samples(PARTIAL_MAX_MS, cutter.rate)
        if cutter.position >= self._next_partial and short and not busy:
            self._jobs.append(self._job(start, cutter.position, is_final=False))
            self._next_partial = cutter.position + self._partial_every

    def _collect(self) -> TranscriptEvent | None:
        """Take a finished decode's result (in order) and start the next queued one."""
        event = None
        if self._inflight is not None and self._inflight[1].done():
            (job, future), self._inflight = self._inflight, None
            stale = not job.is_final and any(j.is_final for j in self._jobs)  # a final supersedes it
            self._start_next()
            heard = future.result()  # a TranscriptionError surfaces here, to the iterating caller
            if heard.text and not stale:
                event = TranscriptEvent(self.track, heard.text, job.is_final, job.start_ms, job.end_ms,
                                        self._provider, alternatives=heard.alternatives)
                self._finals += job.is_final
                self._partials += not job.is_final
        self._start_next()
        return event

    def _start_next(self) -> None:
        if self._inflight is None and self._jobs:
            job = self._jobs.popleft()
            future = self._pool.submit(job.samples)
            future.add_done_callback(lambda _: self._waker.wake())
            self._inflight = (job, future)

    def _finish(self) -> None:
        if not self._closed:
            self._closed = True
            self._detectors.release(self._detector)


class LocalTranscriber:
    """:class:`~switchboard.transcribe.base.Transcriber` on Moonshine + Silero; needs no network and no
    keys."""

    name = "local"

    def __init__(self, pool: RecognizerPool, *, endpoint: EndpointConfig | None = None,
                 partial_interval_ms: int = 0, detectors: DetectorPool | None = None,
                 max_backlog_ms: int = 60_000) -> None:
        self._config = endpoint if endpoint is not None else EndpointConfig(sample_rate=STT_RATE)
        if self._config.sample_rate != STT_RATE:
            raise UnsupportedRateError(f"endpointing runs at {STT_RATE} Hz, not {self._config.sample_rate}")
        if partial_interval_ms < 0:
            raise ValueError("partial_interval_ms must be >= 0 (0 = no partials)")
        if max_backlog_ms < self._config.max_utterance_ms:
            raise ValueError("max_backlog_ms must cover at least one maximal utterance")
        self._pool = pool
        self._partial_interval_ms = partial_interval_ms
        self._max_backlog_ms = max_backlog_ms
        self._detectors = detectors if detectors is not None else DetectorPool()

    async def warm(self) -> None:
        """Load the model and one detector now, so the first stream opens at once. As a failover backup the local
        engine is cold until a cloud provider fails, and a cold open (model load, seconds on a busy machine) would
        turn a one-second failover into a lost transcript (the open timeout) exactly when it is needed."""
        await self._pool.wait_ready()
        self._detectors.release(await self._detectors.acquire())

    async def open(self, track: str, sample_rate: int) -> LocalStream:
        """A stream for ``track``; loads the model on first use, so a broken install fails here."""
        if sample_rate != STT_RATE:
            raise UnsupportedRateError(f"the local transcriber takes {STT_RATE} Hz PCM, got {sample_rate}")
        await self._pool.wait_ready()
        detector = await self._detectors.acquire()
        return LocalStream(track, self._pool, detector, self._detectors, self._config,
                           self._partial_interval_ms, self.name, self._max_backlog_ms)


__all__ = ["LocalStream", "LocalStreamStats", "LocalTranscriber"]
