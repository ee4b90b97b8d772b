"""Live extraction: runs after new caller speech, debounced, one at a time, published as live events."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from switchboard.extract import IncrementalExtractor, OfflineExtractor, Transcript
from switchboard.live import InMemoryHub
from switchboard.live_extraction import LiveExtraction


class CountingExtractor:
    """Reports each run (loop time at its start, the transcript it saw) on ``runs``, for the test to await."""

    def __init__(self) -> None:
        self.seen: list[str] = []
        self.runs: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
        self._offline = OfflineExtractor()

    async def extract(self, transcript: Transcript):  # type: ignore[no-untyped-def]
        started = asyncio.get_running_loop().time()
        self.seen.append(transcript.render())
        result = await self._offline.extract(transcript)
        self.runs.put_nowait((started, transcript.render()))
        return result


async def test_caller_speech_triggers_debounced_runs_published_live() -> None:
    hub = InMemoryHub()
    extractor = CountingExtractor()
    live = LiveExtraction("CA1", extractor, hub, policy=IncrementalExtractor(min_interval_s=0.2, max_runs=5))
    loop = asyncio.create_task(live.run())
    try:
        live.note_final("agent", "Northgate maintenance, how can I help?", 0)  # agent speech alone: no run
        live.note_final("caller", "There's a gas smell in my kitchen, it's an emergency.", 2000)
        first_at, first = await asyncio.wait_for(extractor.runs.get(), 5)
        assert "gas smell" in first and "LS6 2AB" not in first
        live.note_final("caller", "My postcode is LS6 2AB.", 5000)  # within the debounce interval
        second_at, second = await asyncio.wait_for(extractor.runs.get(), 5)
        assert "LS6 2AB" in second and second_at - first_at >= 0.2  # waited out the interval, then ran
        assert extractor.runs.empty() and len(extractor.seen) == 2
    finally:
        live.close()
        await asyncio.wait_for(loop, 1)
    events = [e async for e in _drain(hub)]
    assert [e["type"] for e in events] == ["extraction", "extraction"]
    assert events[-1]["facts"]["postcode"] == "LS6 2AB" and events[-1]["final"] is False


async def test_events_carry_evidence_and_the_caller_id_fallback() -> None:
    hub = InMemoryHub()
    lookups: list[str] = []

    async def caller_id() -> str | None:
        lookups.append("CA3")
        return "+447700900555"

    live = LiveExtraction("CA3", OfflineExtractor(), hub, policy=IncrementalExtractor(min_interval_s=0),
                          caller_id=caller_id)
    loop = asyncio.create_task(live.run())
    try:
        live.note_final("caller", "My postcode is C S twenty four, three H Q.", 0)
        await _until(lambda: live.published == 1)
        live.note_final("caller", "And my name is Ann Lee.", 3000)
        await _until(lambda: live.published == 2)
    finally:
        live.close()
        await asyncio.wait_for(loop, 1)
    events = [e async for e in _drain(hub, "CA3")]
    facts = events[-1]["facts"]
    assert lookups == ["CA3"]  # looked up once
    assert (facts["postcode"], facts["callback_number"]) == ("CF24 3HQ", "+447700900555")
    assert facts["evidence"]["callback_number"]["source"] == "caller_id"
    assert facts["needs_confirmation"] == ["callback_number", "postcode"]


async def test_the_recognisers_other_readings_reach_the_live_extraction() -> None:
    hub = InMemoryHub()
    live = LiveExtraction("CA4", OfflineExtractor(), hub, policy=IncrementalExtractor(min_interval_s=0))
    loop = asyncio.create_task(live.run())
    try:
        live.note_final("caller", "Bristol, post-cognacic, sig, say char.", 0,
                        ("Bristol, postcode, sick, six H R.", "Bristol, postcode B S six, six H R."))
        await _until(lambda: live.published == 1)
    finally:
        live.close()
        await asyncio.wait_for(loop, 1)
    facts = [e async for e in _drain(hub, "CA4")][-1]["facts"]
    assert facts["postcode"] == "BS6 6HR" and facts["needs_confirmation"] == ["postcode"]


async def _until(condition: Callable[[], bool], limit_s: float = 10.0) -> None:
    """Poll until ``condition`` holds (generous limit: only a hang reaches it)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {limit_s} s")
        await asyncio.sleep(0.01)


async def test_close_stops_the_loop_without_starting_runs() -> None:
    hub = InMemoryHub()
    extractor = CountingExtractor()
    live = LiveExtraction("CA2", extractor, hub, policy=IncrementalExtractor(min_interval_s=10))
    loop = asyncio.create_task(live.run())
    live.close()
    live.note_final("caller", "Hello", 0)
    await asyncio.wait_for(loop, 1)
    assert extractor.seen == []


async def test_a_held_run_waits_until_the_hold_is_released() -> None:
    """An agent call holds runs while its reply is being prepared: the final that ended the caller's turn starts
    no extraction until the agent has answered."""
    hub = InMemoryHub()
    extractor = CountingExtractor()
    thinking_done = asyncio.Event()
    live = LiveExtraction("CA4", extractor, hub, policy=IncrementalExtractor(min_interval_s=0),
                          hold=thinking_done.wait)
    loop = asyncio.create_task(live.run())
    try:
        live.note_final("caller", "My boiler has stopped working.", 0)
        for _ in range(20):
            await asyncio.sleep(0)
        assert extractor.seen == []  # due, but held
        thinking_done.set()
        _, seen = await asyncio.wait_for(extractor.runs.get(), 5)
        assert "boiler" in seen
    finally:
        live.close()
        await asyncio.wait_for(loop, 1)


async def _drain(hub: InMemoryHub, call_sid: str = "CA1"):  # type: ignore[no-untyped-def]
    sub = hub.subscribe(call_sid)
    hub.close()
    async for event in sub:
        yield event
