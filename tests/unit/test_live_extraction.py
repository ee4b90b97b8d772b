"""Live extraction: runs after new caller speech, debounced, one at a time, published as live events."""

from __future__ import annotations

import asyncio

from switchboard.extract import IncrementalExtractor, OfflineExtractor, Transcript
from switchboard.live import InMemoryHub
from switchboard.live_extraction import LiveExtraction


class CountingExtractor:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self._offline = OfflineExtractor()

    async def extract(self, transcript: Transcript):  # type: ignore[no-untyped-def]
        self.seen.append(transcript.render())
        await asyncio.sleep(0.01)
        return await self._offline.extract(transcript)


async def test_caller_speech_triggers_debounced_runs_published_live() -> None:
    hub = InMemoryHub()
    extractor = CountingExtractor()
    live = LiveExtraction("CA1", extractor, hub, policy=IncrementalExtractor(min_interval_s=0.2, max_runs=5))
    loop = asyncio.create_task(live.run())
    try:
        live.note_final("agent", "Northgate maintenance, how can I help?", 0)
        await asyncio.sleep(0.05)
        assert extractor.seen == []  # agent speech alone never triggers
        live.note_final("caller", "There's a gas smell in my kitchen, it's an emergency.", 2000)
        await asyncio.sleep(0.05)
        live.note_final("caller", "My postcode is LS6 2AB.", 5000)  # within the debounce interval
        await asyncio.sleep(0.05)
        assert len(extractor.seen) == 1
        await asyncio.sleep(0.3)
        assert len(extractor.seen) == 2 and "LS6 2AB" in extractor.seen[1]
    finally:
        live.close()
        await asyncio.wait_for(loop, 1)
    events = [e async for e in _drain(hub)]
    assert [e["type"] for e in events] == ["extraction", "extraction"]
    assert events[-1]["facts"]["postcode"] == "LS6 2AB" and events[-1]["final"] is False


async def test_close_stops_the_loop_without_starting_runs() -> None:
    hub = InMemoryHub()
    extractor = CountingExtractor()
    live = LiveExtraction("CA2", extractor, hub, policy=IncrementalExtractor(min_interval_s=10))
    loop = asyncio.create_task(live.run())
    live.close()
    live.note_final("caller", "Hello", 0)
    await asyncio.wait_for(loop, 1)
    assert extractor.seen == []


async def _drain(hub: InMemoryHub):  # type: ignore[no-untyped-def]
    sub = hub.subscribe("CA1")
    hub.close()
    async for event in sub:
        yield event
