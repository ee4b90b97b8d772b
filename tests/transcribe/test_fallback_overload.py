"""Our own overload must not look like a provider stall: FallbackTranscriber on a LoopLagMonitor clock.

Real loop, real time, scripted providers. A final is pending (an utterance pushed, its trailing silence not yet)
when our code blocks the loop for longer than the stall timeout; the provider's answer comes right after the
block, but the failover watchdog's overdue timer fires first. On ``time.monotonic`` that is a ``stall`` and a
switch (the control); on ``mon.effective_time`` the blocked stretch does not count.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from switchboard.loop_lag import LoopLagMonitor
from switchboard.transcribe.base import Pcm16, ProviderSwitched, StreamItem, SwitchReason, TranscriptEvent
from switchboard.transcribe.breaker import CircuitBreakerBoard
from switchboard.transcribe.fallback import FallbackStream, FallbackTranscriber
from switchboard.transcribe.scripted import Fault, FaultKind, ScriptedTranscriber, encode_words

RATE = 16_000
CHUNK = 640  # 40 ms
STALL_S = 0.3
# Three utterances of five 100 ms words, each followed by 300 ms of silence: A over 0-500 ms, B 800-1300, C 1600-2100.
AUDIO = encode_words([*range(5), None, None, None, *range(5, 10), None, None, None, *range(10, 15), None], RATE)
B_WORDS_END = 1300  # ms: pushing up to here leaves B's final pending (it comes with the silence after it)
EXPECTED = [f"w{i}" for i in range(15)]


def _push(stream: FallbackStream, audio: Pcm16, start_ms: int, stop_ms: int | None = None) -> None:
    stop = len(audio) if stop_ms is None else stop_ms * RATE // 1000
    for i in range(start_ms * RATE // 1000, stop, CHUNK):
        stream.push(audio[i : min(i + CHUNK, stop)], i * 1000 // RATE)


async def _collect(stream: FallbackStream, events: list[StreamItem]) -> None:
    async for event in stream:
        events.append(event)


async def _until(condition: Callable[[], bool], within_s: float = 10.0) -> None:
    """Poll ``condition``; a generous wall-time limit (a loaded CI machine stretches wall time), only against
    hangs: what a test claims about timing it asserts on the clock it means."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition not reached")


def _hog_the_loop(seconds: float) -> None:
    """Our own code blocking the event loop (what overload looks like from the loop's side)."""
    time.sleep(seconds)


def _words(events: list[StreamItem]) -> list[str]:
    return " ".join(e.text for e in events if isinstance(e, TranscriptEvent) and e.is_final).split()


def _switches(events: list[StreamItem]) -> list[SwitchReason]:
    return [e.reason for e in events if isinstance(e, ProviderSwitched)]


async def _overloaded_call(clock: Callable[[], float]) -> tuple[FallbackStream, list[StreamItem]]:
    """A call whose loop is blocked for 0.6 s (twice the stall timeout) while B's final is pending."""
    primary, backup = ScriptedTranscriber("primary"), ScriptedTranscriber("backup")
    fallback = FallbackTranscriber(primary, backup, breaker=CircuitBreakerBoard(clock=clock), clock=clock,
                                   stall_timeout_s=STALL_S, poll_s=0.01)
    stream = await fallback.open("inbound", RATE)
    events: list[StreamItem] = []
    collector = asyncio.create_task(_collect(stream, events))
    _push(stream, AUDIO, 0, 800)
    await _until(lambda: len(events) == 1)  # A answered: nothing pending
    _push(stream, AUDIO, 800, B_WORDS_END)  # B's words: its final is now awaited
    await asyncio.sleep(0.02)  # the watchdog is parked on its poll timer
    _hog_the_loop(2 * STALL_S)  # our process is overloaded: the loop runs nothing
    await asyncio.sleep(0.02)  # the overdue watchdog runs first, then B's answer "arrives"
    _push(stream, AUDIO, B_WORDS_END)
    stream.end()
    await asyncio.wait_for(collector, 10)
    await stream.aclose()
    return stream, events


async def test_loop_starvation_is_not_blamed_on_the_provider() -> None:
    async with LoopLagMonitor(interval_s=0.05, tolerance_s=0.02) as mon:
        _, events = await _overloaded_call(mon.effective_time)
        assert mon.starved_s >= STALL_S  # the block was seen as starvation...
    assert _switches(events) == []  # ...so nobody was blamed for it
    assert _words(events) == EXPECTED and {e.provider for e in events if isinstance(e, TranscriptEvent)} == {"primary"}


async def test_control_on_monotonic_time_the_same_block_is_a_stall() -> None:
    _, events = await _overloaded_call(time.monotonic)
    assert _switches(events) == [SwitchReason.STALL]
    assert _words(events) == EXPECTED  # lossless all the same, but a needless (costlier) switch


async def test_a_really_stalled_provider_is_still_caught_on_the_monitor_clock() -> None:
    async with LoopLagMonitor(interval_s=0.05, tolerance_s=0.02) as mon:
        clock = mon.effective_time
        primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.STALL, after_ms=1000)])  # mid-B
        fallback = FallbackTranscriber(primary, ScriptedTranscriber("backup"), clock=clock,
                                       breaker=CircuitBreakerBoard(clock=clock), stall_timeout_s=STALL_S,
                                       poll_s=0.01)
        stream = await fallback.open("inbound", RATE)
        events: list[StreamItem] = []
        collector = asyncio.create_task(_collect(stream, events))
        _push(stream, AUDIO, 0, 800)
        await _until(lambda: len(events) == 1)
        pushed_at, pushed_eff = time.monotonic(), clock()
        _push(stream, AUDIO, 800)  # the primary hears B up to 1000 ms, then nothing more
        await _until(lambda: stream.provider == "backup")
        waited, waited_eff = time.monotonic() - pushed_at, clock() - pushed_eff
        stream.end()
        await asyncio.wait_for(collector, 10)
        await stream.aclose()
    assert STALL_S <= waited  # the effective clock never runs ahead of real time...
    # ...and the stall is caught once STALL_S of effective time passed, give or take a few polls. Measured on the
    # effective clock (wall time minus the starvation the monitor saw), not the wall: if the OS deschedules us
    # on a loaded machine, wall time stretches while detection rightly waits for time the loop could run.
    assert STALL_S <= waited_eff < 2 * STALL_S
    assert _switches(events) == [SwitchReason.STALL]
    assert _words(events) == EXPECTED and isinstance(events[-1], TranscriptEvent) and events[-1].provider == "backup"
