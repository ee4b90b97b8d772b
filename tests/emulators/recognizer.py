"""How the provider emulators turn received audio into words.

An emulator must answer with *real* words, so that a failover test can compare the transcript of a call that
switched providers with one that did not: :class:`EmulatorRecognizer` runs the local Moonshine engine (the
same :class:`~switchboard.transcribe.moonshine.RecognizerPool` the server uses). Load tests need text that
costs nothing instead: :class:`ScriptedRecognizer` hands out scripted lines in order.

Both take one utterance of 16 kHz int16 mono audio, which is what every emulator works in internally.
``partial`` serves interim results: a guess at the words of an utterance still being spoken.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from switchboard.transcribe.base import Pcm16
from switchboard.transcribe.moonshine import RecognizerPool

RATE = 16_000


class Recognizer(Protocol):
    """What an emulator needs from a speech recogniser."""

    async def recognize(self, pcm16k: Pcm16) -> str:
        """The words of one finished utterance."""
        ...

    async def partial(self, pcm16k: Pcm16) -> str:
        """A guess at the words of an utterance still in progress; "" when the recogniser does not guess."""
        ...


def _check(pcm16k: Pcm16) -> Pcm16:
    if not isinstance(pcm16k, np.ndarray) or pcm16k.dtype != np.int16 or pcm16k.ndim != 1:
        raise TypeError(f"expected 1-D int16 PCM at {RATE} Hz, got {getattr(pcm16k, 'dtype', type(pcm16k))}")
    return pcm16k


class EmulatorRecognizer:
    """Moonshine behind a worker pool: real words from real audio.

    Pass a ``pool`` to share one loaded model between emulators (each engine is ≈450 MB); otherwise one is
    created here and released by :meth:`aclose`. Interim guesses re-decode the open utterance, which costs as
    much as a final, so they are off unless ``partials=True``.
    """

    def __init__(self, pool: RecognizerPool | None = None, *, workers: int = 1, partials: bool = False) -> None:
        self._owned = pool is None
        self._pool = RecognizerPool(workers) if pool is None else pool
        self._partials = partials

    async def recognize(self, pcm16k: Pcm16) -> str:
        samples = _check(pcm16k).astype(np.float32) / np.float32(32768.0)
        return await self._pool.recognize(samples)

    async def partial(self, pcm16k: Pcm16) -> str:
        return await self.recognize(pcm16k) if self._partials else ""

    async def aclose(self) -> None:
        """Release the pool if this recogniser created it."""
        if self._owned:
            await self._pool.aclose()


class ScriptedRecognizer:
    """Answers each utterance with the next scripted line, cycling; the audio only sets the partials' length.

    ``partial`` returns the first words of the line the next final will use, about ``words_per_s`` per second
    of audio so far, so interims grow as real ones do. ``delay_s`` simulates recognition time.
    """

    def __init__(self, texts: Sequence[str], *, words_per_s: float = 2.5, delay_s: float = 0.0) -> None:
        if not texts:
            raise ValueError("ScriptedRecognizer needs at least one line")
        self._texts = tuple(texts)
        self._words_per_s = words_per_s
        self._delay_s = delay_s
        self.calls = 0
        """Finals handed out so far."""

    async def recognize(self, pcm16k: Pcm16) -> str:
        _check(pcm16k)
        text = self._texts[self.calls % len(self._texts)]
        self.calls += 1  # taken before the delay: concurrent callers get distinct lines in call order
        if self._delay_s:
            await asyncio.sleep(self._delay_s)
        return text

    async def partial(self, pcm16k: Pcm16) -> str:
        words = self._texts[self.calls % len(self._texts)].split()
        count = math.ceil(len(_check(pcm16k)) / RATE * self._words_per_s)
        if self._delay_s:
            await asyncio.sleep(self._delay_s)
        return " ".join(words[: max(1, min(count, len(words)))])


__all__ = ["EmulatorRecognizer", "Recognizer", "ScriptedRecognizer"]
