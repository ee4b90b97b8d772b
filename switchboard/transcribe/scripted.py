"""A scripted :class:`~switchboard.transcribe.base.Transcriber`: deterministic "recognition" plus injected faults.

Failover has to be tested without networks or models, and a load test needs a provider that costs nothing,
so this fake reads its "words" from the audio itself: every ``word_ms`` slot of media time whose first
sample is ``WORD_BASE + k`` is the word ``w{k}``, and a slot of zeros is silence (:func:`encode_words` makes
such audio). A run of word slots followed by a silent slot is an utterance, emitted as a final with the
media times of its slots; ``partials=True`` also emits a partial per word. ``texts`` replaces the decoded
words with scripted sentences (one per final, cycling) for load tests on arbitrary audio.

Faults come from ``faults``, one entry per ``open()`` (``None`` = healthy; opens past the list use
``default``). Mid-stream faults strike once ``after_ms`` of audio has been received: audio past that point
is never recognised, events already produced are still delivered, then the fault shows.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

import numpy as np

from audio import STT_RATE
from audio.media_time import ms_to_samples
from switchboard.transcribe.base import Pcm16, TranscriptEvent, check_push
from switchboard.transcribe.errors import ProviderAuthError, ProviderUnavailable, RecognitionFailed
from switchboard.transcribe.waker import Waker

WORD_BASE: Final = 1000
"""Marker of word 0; far above line noise so speech detectors take the slots for speech."""


class FaultKind(StrEnum):
    OPEN_ERROR = "open_error"  # open() raises ProviderUnavailable(retryable)
    OPEN_AUTH = "open_auth"  # open() raises ProviderAuthError
    OPEN_HANG = "open_hang"  # open() never returns
    ERROR = "error"  # the iterator raises RecognitionFailed(retryable) after after_ms
    PUSH_ERROR = "push_error"  # push() raises StreamClosedError after after_ms (a dropped socket)
    EARLY_END = "early_end"  # the iterator ends after after_ms although end() was not called
    STALL = "stall"  # nothing more is emitted after after_ms, and the iterator never ends
    DROP_FINAL = "drop_final"  # after end(): the last final is never sent and the iterator ends
    HANG_AFTER_END = "hang_after_end"  # after end(): the last final is never sent and the iterator hangs


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    after_ms: int = 0
    retryable: bool = True
    hang_on_close: bool = False
    """``aclose()`` never returns (until cancelled): checks that callers bound it."""


def encode_words(words: Iterable[int | None], sample_rate: int = STT_RATE, word_ms: int = 100) -> Pcm16:
    """Audio in which slot ``i`` carries word ``words[i]`` (``None`` = a silent slot)."""
    slot = ms_to_samples(word_ms, sample_rate)
    values = [0 if w is None else WORD_BASE + w for w in words]
    return np.repeat(np.asarray(values, dtype=np.int16), slot)


class ScriptedStream:
    """One track of a :class:`ScriptedTranscriber`; see the module docstring for its behaviour."""

    def __init__(self, track: str, sample_rate: int, owner: ScriptedTranscriber, fault: Fault | None) -> None:
        self.track, self.rate, self.fault = track, sample_rate, fault
        self._owner = owner
        self._slot = ms_to_samples(owner.word_ms, sample_rate)
        mid_stream = fault is not None and fault.kind in _MID_STREAM
        self._limit = ms_to_samples(fault.after_ms, sample_rate) if fault is not None and mid_stream else None
        self.received_samples = 0
        self.pushes: list[tuple[int, int]] = []
        """(pts_ms, n_samples) of every push, replays included."""
        self._last_slot: int | None = None
        self._words: list[int] = []
        self._start_slot = self._end_slot = 0
        self._events: deque[TranscriptEvent] = deque()
        self._ended = self.closed = False
        self._waker = Waker()

    @property
    def struck(self) -> bool:
        """The mid-stream fault has happened (all the audio it lets through was received)."""
        return self._limit is not None and self.received_samples >= self._limit

    def push(self, pcm: Pcm16, pts_ms: int) -> None:
        dropped = self.struck and self._kind is FaultKind.PUSH_ERROR  # as a socket that died would
        check_push(pcm, ended=self._ended or dropped, track=self.track, provider=self._owner.name)
        self.pushes.append((pts_ms, len(pcm)))
        heard = len(pcm) if self._limit is None else max(0, min(len(pcm), self._limit - self.received_samples))
        first = ms_to_samples(pts_ms, self.rate)
        if heard:  # a slot is read at the first of its samples that arrives; the rest of it is the same
            for slot in range(first // self._slot, (first + heard - 1) // self._slot + 1):
                if self._last_slot is None or slot > self._last_slot:
                    self._on_slot(slot, int(pcm[max(0, slot * self._slot - first)]))
        self.received_samples += len(pcm)
        self._waker.wake()

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            if self._kind not in (FaultKind.DROP_FINAL, FaultKind.HANG_AFTER_END):
                self._emit_final()
            self._waker.wake()

    def __aiter__(self) -> ScriptedStream:
        return self

    async def __anext__(self) -> TranscriptEvent:
        while not self.closed:
            if self._events:
                return self._events.popleft()
            if self.struck and self._kind is FaultKind.ERROR:
                raise RecognitionFailed("scripted failure", retryable=self.fault.retryable if self.fault else None,
                                        provider=self._owner.name)
            if (self.struck and self._kind is FaultKind.EARLY_END) or (
                    self._ended and self._kind not in (FaultKind.STALL, FaultKind.HANG_AFTER_END)):
                break
            await self._waker.wait()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self.closed = self._ended = True
        self._waker.wake()
        if self.fault is not None and self.fault.hang_on_close:
            await asyncio.Event().wait()

    @property
    def _kind(self) -> FaultKind | None:
        return None if self.fault is None else self.fault.kind

    def _on_slot(self, slot: int, value: int) -> None:
        self._last_slot = slot
        if value >= WORD_BASE:
            if not self._words:
                self._start_slot = slot
            self._words.append(value - WORD_BASE)
            self._end_slot = slot + 1
            if self._owner.partials:
                self._emit(is_final=False)
        else:
            self._emit_final()

    def _emit_final(self) -> None:
        if self._words:
            self._emit(is_final=True)
            self._words = []

    def _emit(self, is_final: bool) -> None:
        owner = self._owner
        text = " ".join(f"w{w}" for w in self._words)
        if is_final and owner.texts:
            text = owner.texts[owner.finals % len(owner.texts)]
            owner.finals += 1
        self._events.append(TranscriptEvent(self.track, text, is_final, self._start_slot * owner.word_ms,
                                            self._end_slot * owner.word_ms, owner.name, None))


_MID_STREAM: Final = frozenset({FaultKind.ERROR, FaultKind.PUSH_ERROR, FaultKind.EARLY_END, FaultKind.STALL})


class ScriptedTranscriber:
    """:class:`~switchboard.transcribe.base.Transcriber` whose streams follow a script; keeps every stream
    it opened (``streams``) so tests can look at what each provider received."""

    def __init__(self, name: str = "scripted", *, faults: Sequence[Fault | None] = (), default: Fault | None = None,
                 word_ms: int = 100, partials: bool = False, texts: Sequence[str] = ()) -> None:
        self.name = name
        self.faults: deque[Fault | None] = deque(faults)
        self.default = default
        self.word_ms, self.partials, self.texts = word_ms, partials, list(texts)
        self.opens = self.finals = 0
        self.streams: list[ScriptedStream] = []

    async def open(self, track: str, sample_rate: int) -> ScriptedStream:
        self.opens += 1
        fault = self.faults.popleft() if self.faults else self.default
        if fault is not None and fault.kind is FaultKind.OPEN_HANG:
            await asyncio.Event().wait()
        if fault is not None and fault.kind is FaultKind.OPEN_AUTH:
            raise ProviderAuthError("scripted auth refusal", provider=self.name)
        if fault is not None and fault.kind is FaultKind.OPEN_ERROR:
            raise ProviderUnavailable("scripted connect failure", retryable=fault.retryable, provider=self.name)
        await asyncio.sleep(0)  # a real open awaits I/O: let the loop run, as it would
        stream = ScriptedStream(track, sample_rate, self, fault)
        self.streams.append(stream)
        return stream


__all__ = ["WORD_BASE", "Fault", "FaultKind", "ScriptedStream", "ScriptedTranscriber", "encode_words"]
