"""An offline voice (Piper or espeak-ng) behind the :class:`~switchboard.tts.base.VoiceStream` seam.

Text is cut into sentences as it is pushed (a turn's first sentence at its first clause break, so a long one
does not hold back the turn's first audio); each piece is synthesised in a worker thread (the engines block
and keep process-wide state, see their modules), resampled 22.05 kHz → 8 kHz with soxr, encoded μ-law with
:mod:`audio.mulaw` and re-cut into 20 ms-multiple chunks. The engines give no character timings, so each
sentence's characters are spread evenly over its audio (:func:`~switchboard.tts.rechunk.spread_chars`): a
barge-in keeps the words heard to within a word or two. One owned worker task per stream, cancelled by
``aclose``; a sentence already in its thread when ``cancel()`` comes finishes there and is dropped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from audio import TWILIO_RATE, mulaw
from audio.resample import StreamResampler
from switchboard.tasks import cancel_and_wait
from switchboard.tts.base import AudioChunk, TurnEnd, VoiceEvent
from switchboard.tts.errors import VoiceClosedError, VoiceError, VoiceProtocolError, VoiceUnavailable
from switchboard.tts.outbox import Outbox
from switchboard.tts.rechunk import DEFAULT_MAX_FRAMES, Rechunker, spread_chars
from switchboard.tts.sentences import SentenceSplitter


class Engine(Protocol):
    """A blocking synthesiser: int16 mono pieces at ``sample_rate`` for one utterance."""

    name: str
    sample_rate: int

    def synthesize(self, text: str) -> Iterator[np.ndarray]: ...


def synthesize_ulaw(engine: Engine, text: str) -> bytes:
    """Blocking: ``text`` spoken by ``engine`` as μ-law at 8 kHz (run it in a thread)."""
    pieces = [np.asarray(p, dtype=np.int16) for p in engine.synthesize(text)]
    if not pieces:
        return b""
    resampler = StreamResampler(engine.sample_rate, TWILIO_RATE)
    pcm = np.concatenate([resampler.push(np.concatenate(pieces)), resampler.flush()])
    return mulaw.encode(pcm)


LEAD_CLAUSE_CHARS = 12
"""A turn's first sentence is spoken from its first clause break this far in (:mod:`.sentences`): first audio
after a clause's synthesis, not a whole sentence's."""


@dataclass(frozen=True, slots=True)
class _Job:
    generation: int
    turn: int
    text: str
    turn_text: str | None
    """Set on the turn's last job: the text its :class:`TurnEnd` reports."""


class OfflineVoice:
    """:class:`~switchboard.tts.base.Voice` over an :class:`Engine`; ``open`` is instant (the engine is loaded)."""

    def __init__(self, engine: Engine, max_frames: int = DEFAULT_MAX_FRAMES) -> None:
        self.engine = engine
        self.name = engine.name
        self.max_frames = max_frames

    async def open(self) -> OfflineVoiceStream:
        return OfflineVoiceStream(self.engine, self.max_frames)

    async def render(self, text: str) -> tuple[AudioChunk, ...]:
        audio = await asyncio.to_thread(synthesize_ulaw, self.engine, text)
        chunker = Rechunker(0, self.name, self.max_frames)
        return tuple(chunker.push(audio, spread_chars(text, len(audio) // 8)) + chunker.finish())


class OfflineVoiceStream:
    def __init__(self, engine: Engine, max_frames: int = DEFAULT_MAX_FRAMES, max_jobs: int = 256,
                 lead_clause_chars: int | None = LEAD_CLAUSE_CHARS) -> None:
        self._engine = engine
        self._max_frames = max_frames
        self._max_jobs = max_jobs
        self._turn = 1
        self._turn_text: list[str] = []
        self._splitter = SentenceSplitter(lead_clause_chars)
        self._jobs: deque[_Job] = deque()
        self._wake = asyncio.Event()
        self._outbox = Outbox()
        self._characters = 0
        self._closed = False
        self._worker = asyncio.get_running_loop().create_task(self._run(), name=f"voice-{engine.name}")

    @property
    def provider(self) -> str:
        return self._engine.name

    @property
    def turn(self) -> int:
        return self._turn

    def push_text(self, text: str) -> None:
        self._check_open()
        self._turn_text.append(text)
        for sentence in self._splitter.push(text):
            self._queue(sentence)

    def flush(self) -> int:
        self._check_open()
        turn = self._turn
        self._queue(self._splitter.rest(), turn_text="".join(self._turn_text))
        self._turn += 1
        self._turn_text = []
        return turn

    def say(self, text: str) -> int:
        self.push_text(text)
        return self.flush()

    def cancel(self) -> None:
        self._outbox.cancel()
        self._jobs.clear()
        self._splitter.clear()
        if self._turn_text:
            self._turn += 1
            self._turn_text = []

    def characters(self) -> Mapping[str, int]:
        return {self._engine.name: self._characters}

    def __aiter__(self) -> OfflineVoiceStream:
        return self

    async def __anext__(self) -> VoiceEvent:
        return await self._outbox.get()

    async def aclose(self) -> None:
        self._closed = True
        self._outbox.end()
        await cancel_and_wait(self._worker)

    def _check_open(self) -> None:
        if self._closed or self._outbox.ended:
            raise VoiceClosedError("text pushed to a closed voice stream", provider=self._engine.name)

    def _queue(self, text: str, turn_text: str | None = None) -> None:
        """Queue one sentence; ``turn_text`` (the whole turn's text) marks the turn's last job."""
        if len(self._jobs) >= self._max_jobs:
            raise VoiceProtocolError(f"more than {self._max_jobs} sentences waiting to be spoken",
                                     retryable=False, provider=self._engine.name)
        self._jobs.append(_Job(self._outbox.generation, self._turn, text, turn_text))
        self._wake.set()

    async def _run(self) -> None:
        try:
            chunker: Rechunker | None = None
            while True:
                while not self._jobs:
                    self._wake.clear()
                    await self._wake.wait()
                job = self._jobs.popleft()
                if job.generation != self._outbox.generation:
                    continue
                if chunker is None or chunker.turn != job.turn:
                    chunker = Rechunker(job.turn, self._engine.name, self._max_frames)
                audio = b""
                if job.text.strip():
                    self._characters += len(job.text)
                    audio = await asyncio.to_thread(synthesize_ulaw, self._engine, job.text)
                events: list[VoiceEvent] = list(chunker.push(audio, spread_chars(job.text, len(audio) // 8)))
                if job.turn_text is not None:
                    events += chunker.finish()
                    events.append(TurnEnd(job.turn, job.turn_text, chunker.emitted_ms, (self._engine.name,)))
                    chunker = None
                for event in events:
                    await self._outbox.put(job.generation, event)
        except VoiceError as exc:
            self._outbox.end(exc)
        except Exception as exc:
            self._outbox.end(VoiceUnavailable(f"voice worker failed: {exc!r}", provider=self._engine.name))
            raise


__all__ = ["Engine", "OfflineVoice", "OfflineVoiceStream", "synthesize_ulaw"]
