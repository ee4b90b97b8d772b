"""A transcriber that consumes audio and emits nothing: the server benchmark's stand-in for recognition."""

from __future__ import annotations

import asyncio

from switchboard.transcribe.base import Pcm16, TranscriptEvent, check_push


class NullStream:
    """Counts what it is given; its iterator yields nothing and ends at ``end()`` or ``aclose()``."""

    def __init__(self, track: str) -> None:
        self.track = track
        self.samples = 0
        self._done = asyncio.Event()

    def push(self, pcm: Pcm16, pts_ms: int) -> None:
        check_push(pcm, ended=self._done.is_set(), track=self.track, provider=NullTranscriber.name)
        self.samples += len(pcm)

    def end(self) -> None:
        self._done.set()

    def __aiter__(self) -> NullStream:
        return self

    async def __anext__(self) -> TranscriptEvent:
        await self._done.wait()
        raise StopAsyncIteration

    async def aclose(self) -> None:
        self._done.set()


class NullTranscriber:
    """:class:`~switchboard.transcribe.base.Transcriber` with no recogniser behind it."""

    name = "null"

    async def open(self, track: str, sample_rate: int) -> NullStream:
        return NullStream(track)


__all__ = ["NullStream", "NullTranscriber"]
