"""UtteranceCutter: PCM with its media time in, utterance boundaries out (sans-I/O; no asyncio, no clock).

Every transcriber that endpoints on our side (local Moonshine, WisprFlow) does the same work before anything
specific to its recogniser: keep the pushed audio addressed by sample index (:class:`SampleLog`), map indices
back to media time (:class:`MediaClock`), run a speech detector over each window, feed the probabilities to the
:class:`Endpointer`, score the last short window zero-padded at the end of the stream, and forget audio no
utterance can need any more. This class is that work; the caller keeps only what its recogniser needs.

Audio the cutter has not looked at is bounded (``max_backlog``): past it, pushes are dropped and counted, so a
stream nobody drives any more cannot grow for the rest of the call; the next accepted push re-anchors the media
clock at its own ``pts_ms``, so timestamps stay right.

:meth:`step` returns, in order, what happened to the open utterance while it ran:

    Opened(start)   speech began (``start`` = first sample, padding applied)
    Closed(cut)     the utterance ended (``cut.forced``: at ``max_utterance_ms``; the next one opens at its end)
    Dropped()       the open utterance was discarded (too little speech)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from audio.detectors import SpeechDetector
from audio.endpoint import EndpointConfig, Endpointer, EndpointState, Utterance
from audio.errors import UnsupportedRateError
from audio.media_time import MediaClock, SampleLog
from audio.pcm import Pcm16

FRAMES_PER_STEP: Final = 64
"""Detector windows per :meth:`UtteranceCutter.step` (~2 s of audio): a caller on an event loop yields between
steps, so a backlog never hogs it."""


@dataclass(frozen=True, slots=True)
class Opened:
    start: int


@dataclass(frozen=True, slots=True)
class Closed:
    cut: Utterance


@dataclass(frozen=True, slots=True)
class Dropped:
    pass


CutEvent = Opened | Closed | Dropped


class UtteranceCutter:
    """One track's audio, detector and endpointer; see the module docstring."""

    def __init__(self, detector: SpeechDetector, config: EndpointConfig, max_backlog_ms: int) -> None:
        if detector.sample_rate != config.sample_rate:
            raise UnsupportedRateError(f"detector runs at {detector.sample_rate} Hz, endpointer at "
                                       f"{config.sample_rate}")
        self.rate = config.sample_rate
        self.frame_samples = detector.frame_samples
        self._detector = detector
        self._ep = Endpointer(config)
        self._log = SampleLog(self.rate)
        self._clock = MediaClock(self.rate)
        self._max_backlog = config.samples(max_backlog_ms)
        self._open = self._ending = self.flushed = False
        self.dropped_samples = 0

    # -- input ------------------------------------------------------------------------------------------------------

    def push(self, pcm: Pcm16, pts_ms: int) -> bool:
        """Append ``pcm`` (checked by the caller) whose first sample is at media time ``pts_ms``; False if it was
        dropped because the backlog is over ``max_backlog_ms``."""
        if self.backlog + len(pcm) > self._max_backlog:
            self.dropped_samples += len(pcm)
            return False
        if len(pcm):
            self._clock.note(self._log.end, pts_ms)
            self._log.append(pcm)
        return True

    def finish(self) -> None:
        """No more audio: the next :meth:`step` that reaches the end scores the tail and closes the utterance."""
        self._ending = True

    # -- work -------------------------------------------------------------------------------------------------------

    def step(self, max_frames: int = FRAMES_PER_STEP) -> list[CutEvent]:
        """Run up to ``max_frames`` detector windows over the audio not yet looked at.

        Audio older than what the open utterance may need is forgotten at the start of the next step, so samples
        an event names stay readable (:meth:`view`) until then."""
        self._log.drop_before(self._ep.retain_from)
        self._clock.drop_before(self._log.origin)
        events: list[CutEvent] = []
        size, ep = self.frame_samples, self._ep
        for _ in range(max_frames):
            start = ep.position
            if self._log.end - start < size:
                break
            self._note(ep.push(self._detector.probability(self._log.view(start, start + size)), size), events)
        if self._ending and not self.pending and not self.flushed:
            tail = self._log.view(ep.position, self._log.end)
            if len(tail):  # the last, short window: scored zero-padded, counted by its real samples
                frame = np.zeros(size, dtype=np.int16)
                frame[: len(tail)] = tail
                self._note(ep.push(self._detector.probability(frame), len(tail)), events)
            self._note(ep.flush(), events)
            self.flushed = True
        return events

    def _note(self, cuts: list[Utterance], events: list[CutEvent]) -> None:
        for cut in cuts:
            events.append(Closed(cut))
            self._open = False
        start = self._ep.speech_start
        if start is not None and not self._open:
            events.append(Opened(start))
            self._open = True
        elif self._open and not self._ep.in_speech and not cuts:
            events.append(Dropped())
            self._open = False

    # -- reading ----------------------------------------------------------------------------------------------------

    def view(self, start: int, end: int) -> Pcm16:
        """Samples ``[start, end)``; valid until the next :meth:`push` or :meth:`step`."""
        return self._log.view(start, end)

    def ms(self, sample: int) -> int:
        """Media time (ms) of sample index ``sample``."""
        return self._clock.ms(sample)

    @property
    def pending(self) -> bool:
        """At least one whole detector window has not been looked at yet."""
        return self._log.end - self._ep.position >= self.frame_samples

    @property
    def backlog(self) -> int:
        """Samples pushed but not yet looked at."""
        return self._log.end - self._ep.position

    @property
    def end(self) -> int:
        """Samples accepted since the stream began."""
        return self._log.end

    @property
    def retained(self) -> int:
        return self._log.end - self._log.origin

    @property
    def position(self) -> int:
        """Samples looked at (the endpointer's position)."""
        return self._ep.position

    @property
    def speech_start(self) -> int | None:
        return self._ep.speech_start

    @property
    def speaking(self) -> bool:
        """In speech proper (not in the hangover after it): new words may be arriving."""
        return self._ep.state is EndpointState.SPEECH

    @property
    def settled_until(self) -> int:
        return self._ep.settled_until


__all__ = ["FRAMES_PER_STEP", "Closed", "CutEvent", "Dropped", "Opened", "UtteranceCutter"]
