"""NullTranscriber: consumes audio, emits nothing, ends when told."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from switchboard.transcribe.base import Transcriber, TranscriptStream
from switchboard.transcribe.errors import StreamClosedError
from switchboard.transcribe.null import NullTranscriber


async def test_counts_audio_and_ends_without_events() -> None:
    transcriber = NullTranscriber()
    assert isinstance(transcriber, Transcriber)
    stream = await transcriber.open("inbound", 16_000)
    assert isinstance(stream, TranscriptStream)
    iterating = asyncio.create_task(_drain(stream))
    for i in range(10):
        stream.push(np.zeros(320, dtype=np.int16), i * 20)
    await asyncio.sleep(0)
    assert not iterating.done()  # waits for end(), like a real stream
    stream.end()
    assert await asyncio.wait_for(iterating, 1) == []
    assert stream.samples == 3200
    with pytest.raises(StreamClosedError):
        stream.push(np.zeros(320, dtype=np.int16), 200)


async def test_aclose_ends_iteration() -> None:
    stream = await NullTranscriber().open("outbound", 16_000)
    iterating = asyncio.create_task(_drain(stream))
    await asyncio.sleep(0)
    await stream.aclose()
    await stream.aclose()
    assert await asyncio.wait_for(iterating, 1) == []


async def _drain(stream: TranscriptStream) -> list[object]:
    return [event async for event in stream]
