"""FallbackTranscriber: lossless failover over scripted providers, a fake clock and no sockets.

The scripted providers read their "words" from the audio (slot ``i`` of 100 ms carries word ``i``), so a
transcript that has every word exactly once and in order proves that no audio was lost or duplicated across
a switch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from itertools import pairwise

import numpy as np
import pytest

from switchboard.transcribe.base import (
    Pcm16,
    ProviderSwitched,
    SwitchReason,
    Transcriber,
    TranscriptEvent,
    TranscriptStream,
)
from switchboard.transcribe.breaker import BreakerState, CircuitBreakerBoard
from switchboard.transcribe.errors import ProviderUnavailable, StreamClosedError
from switchboard.transcribe.fallback import FallbackStream, FallbackTranscriber
from switchboard.transcribe.scripted import Fault, FaultKind, ScriptedStream, ScriptedTranscriber, encode_words

RATE = 16_000
CHUNK = 640  # 40 ms
N_WORDS = 40


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _speech(n_words: int = N_WORDS, per_utterance: int = 5, gap_slots: int = 3) -> Pcm16:
    """Utterances of ``per_utterance`` words (100 ms each) separated by ``gap_slots`` silent slots."""
    slots: list[int | None] = []
    for start in range(0, n_words, per_utterance):
        slots += list(range(start, min(start + per_utterance, n_words))) + [None] * gap_slots
    return encode_words(slots, RATE)


def _chunks(audio: Pcm16) -> Iterator[tuple[int, Pcm16]]:
    for i in range(0, len(audio), CHUNK):
        yield i * 1000 // RATE, audio[i : i + CHUNK]


def _words(events: list[TranscriptEvent]) -> list[str]:
    return " ".join(e.text for e in events if e.is_final).split()


EXPECTED = [f"w{i}" for i in range(N_WORDS)]


class Call:
    """One track of a call: pushes audio in real-time steps of the fake clock while a task iterates."""

    def __init__(self, stream: FallbackStream, clock: FakeClock) -> None:
        self.stream, self.clock = stream, clock
        self.events: list[TranscriptEvent] = []
        self.switches: list[ProviderSwitched] = []
        """Switches as the stream yielded them, each just before the first event of the provider it moved to."""
        self.task = asyncio.create_task(self._collect())

    async def _collect(self) -> list[TranscriptEvent]:
        async for item in self.stream:
            if isinstance(item, ProviderSwitched):
                self.switches.append(item)
            else:
                self.events.append(item)
        return self.events

    async def push(self, audio: Pcm16, start: int = 0, stop: int | None = None, offset_ms: int = 0) -> None:
        for pts, pcm in _chunks(audio):
            if pts >= start and (stop is None or pts < stop):
                self.stream.push(pcm, pts + offset_ms)
                self.clock.now += CHUNK / RATE
                await asyncio.sleep(0)

    async def finish(self, within_s: float = 5.0) -> list[TranscriptEvent]:
        """End the stream and wait for the iterator (a hang guard: normally it ends within a few ms)."""
        self.stream.end()
        return await asyncio.wait_for(self.task, within_s)

    async def until(self, condition: object, step_s: float = 0.0) -> None:
        """Let the loop run (stepping the fake clock) until ``condition()`` holds; at most ~0.2 s."""
        assert callable(condition)
        for _ in range(200):
            if condition():
                return
            self.clock.now += step_s
            await asyncio.sleep(0.001)
        raise AssertionError("condition not reached")


def _fallback(*providers: Transcriber, clock: FakeClock, board: CircuitBreakerBoard | None = None,
              **options: object) -> FallbackTranscriber:
    board = board if board is not None else CircuitBreakerBoard(clock=clock)
    return FallbackTranscriber(*providers, breaker=board, clock=clock, poll_s=0.001, **options)  # type: ignore[arg-type]


def _assert_ordered_unique_finals(events: list[TranscriptEvent]) -> None:
    ends = [e.end_ms for e in events if e.is_final]
    assert ends == sorted(set(ends))


async def test_healthy_primary_passes_events_through() -> None:
    clock = FakeClock()
    primary, backup = ScriptedTranscriber("primary", partials=True), ScriptedTranscriber("backup")
    fallback = _fallback(primary, backup, clock=clock)
    assert isinstance(fallback, Transcriber) and fallback.name == "fallback"
    stream = await fallback.open("inbound", RATE)
    assert isinstance(stream, TranscriptStream) and stream.provider == "primary"
    call = Call(stream, clock)
    await call.push(_speech())
    events = await call.finish()
    assert _words(events) == EXPECTED
    assert {e.provider for e in events} == {"primary"} and any(not e.is_final for e in events)
    assert {e.track for e in events} == {"inbound"}
    assert call.switches == [] and backup.opens == 0
    assert fallback.breaker.snapshot()["primary"]["successes"] == 1
    assert primary.streams[0].closed  # closed once its iterator ended
    with pytest.raises(StreamClosedError):
        stream.push(np.zeros(CHUNK, np.int16), 99_000)
    await stream.aclose()


async def test_failover_at_open_is_announced_first_and_keeps_every_word() -> None:
    clock = FakeClock()
    primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.OPEN_ERROR)])
    backup = ScriptedTranscriber("backup")
    fallback = _fallback(primary, backup, clock=clock)
    stream = await fallback.open("outbound", RATE)
    assert stream.provider == "backup"
    call = Call(stream, clock)
    await call.push(_speech())
    assert _words(await call.finish()) == EXPECTED
    [switch] = call.switches
    assert (switch.track, switch.from_provider, switch.to_provider, switch.reason, switch.media_ms) == (
        "outbound", "primary", "backup", SwitchReason.OPEN_ERROR, 0)
    assert fallback.breaker.snapshot()["primary"]["failures"] == 1
    await stream.aclose()


async def test_auth_refusal_opens_the_breaker_at_once() -> None:
    clock = FakeClock()
    primary = ScriptedTranscriber("primary", default=Fault(FaultKind.OPEN_AUTH))
    fallback = _fallback(primary, ScriptedTranscriber("backup"), clock=clock)
    stream = await fallback.open("inbound", RATE)
    assert stream.provider == "backup"
    assert fallback.breaker.state("primary") is BreakerState.OPEN
    await stream.aclose()


async def test_open_that_hangs_times_out() -> None:
    clock = FakeClock()
    primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.OPEN_HANG)])
    fallback = _fallback(primary, ScriptedTranscriber("backup"), clock=clock, open_timeout_s=0.02)
    stream = await fallback.open("inbound", RATE)
    assert stream.provider == "backup"
    switch = await asyncio.wait_for(anext(stream), 5)  # announced before anything the backup says
    assert isinstance(switch, ProviderSwitched) and switch.detail == "timed out"
    await stream.aclose()


@pytest.mark.parametrize("kind", [FaultKind.ERROR, FaultKind.PUSH_ERROR, FaultKind.EARLY_END])
async def test_mid_utterance_failure_replays_unfinalised_audio(kind: FaultKind) -> None:
    clock = FakeClock()
    # Utterance k has words over [800k, 800k + 500) ms, then 300 ms of silence: 1900 ms is inside utterance 2.
    primary = ScriptedTranscriber("primary", faults=[Fault(kind, after_ms=1900)])
    backup = ScriptedTranscriber("backup")
    stream = await _fallback(primary, backup, clock=clock).open("inbound", RATE)
    call = Call(stream, clock)
    await call.push(_speech())
    events = await call.finish()
    assert _words(events) == EXPECTED
    _assert_ordered_unique_finals(events)
    [switch] = call.switches
    expected_reason = SwitchReason.EARLY_END if kind is FaultKind.EARLY_END else SwitchReason.STREAM_ERROR
    assert switch.reason is expected_reason and (switch.from_provider, switch.to_provider) == ("primary", "backup")
    # The primary finalised utterance 2 at 1300 ms; the replay starts 200 ms before it, at original timestamps.
    assert switch.replay_from_ms == 1100
    pushes = backup.streams[0].pushes
    assert pushes[0] == (1100, 320)  # the chunk at 1080 ms, cut to the sample
    assert all(p + n * 1000 // RATE == q for (p, n), (q, _) in pairwise(pushes))
    assert pushes[-1] == (6360, CHUNK)  # contiguous to the end: nothing lost, nothing pushed twice
    assert events[-1].provider == "backup" and primary.streams[0].closed


async def test_stall_mid_stream_is_detected_from_the_clock() -> None:
    clock = FakeClock()
    primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.STALL, after_ms=1900)])
    backup = ScriptedTranscriber("backup")
    stream = await _fallback(primary, backup, clock=clock, stall_timeout_s=1.0).open("inbound", RATE)
    call = Call(stream, clock)
    audio = _speech()
    await call.push(audio, stop=2400)  # the primary heard up to 1900 ms, then went quiet
    await call.until(lambda: stream.provider == "backup", step_s=0.05)
    assert 1.0 <= clock.now - 1.6 < 1.2  # speech at 1600 ms (fake time 1.6 s) was the first unanswered
    await call.push(audio, start=2400)
    events = await call.finish()
    assert _words(events) == EXPECTED
    assert [s.reason for s in call.switches] == [SwitchReason.STALL]


async def test_silence_and_slow_utterances_are_not_stalls() -> None:
    clock = FakeClock()
    primary, backup = ScriptedTranscriber("primary"), ScriptedTranscriber("backup")
    fallback = _fallback(primary, backup, clock=clock, stall_timeout_s=1.0, stall_timeouts={"primary": 3.0})
    stream = await fallback.open("inbound", RATE)
    call = Call(stream, clock)
    await call.push(np.zeros(10 * RATE, np.int16))  # 10 s of line silence: nothing to answer
    await call.push(encode_words([*range(25), None], RATE), offset_ms=10_000)  # 2.5 s, answered at its end
    await call.until(lambda: len(call.events) == 1)
    assert _words(await call.finish()) == [f"w{i}" for i in range(25)] and call.switches == []


async def test_missing_final_after_end_times_out() -> None:
    clock = FakeClock()
    primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.HANG_AFTER_END)])
    stream = await _fallback(primary, ScriptedTranscriber("backup"), clock=clock,
                             stall_timeout_s=1.0).open("inbound", RATE)
    call = Call(stream, clock)
    await call.push(_speech()[: -3 * 1600])  # ends mid-utterance: the last final comes only after end()
    stream.end()
    await call.until(lambda: call.task.done(), step_s=0.1)
    assert _words(call.events) == EXPECTED
    assert [s.reason for s in call.switches] == [SwitchReason.MISSING_FINAL]
    assert call.events[-1].provider == "backup"


async def test_final_dropped_after_partials_is_recovered() -> None:
    clock = FakeClock()
    primary = ScriptedTranscriber("primary", partials=True, faults=[Fault(FaultKind.DROP_FINAL)])
    stream = await _fallback(primary, ScriptedTranscriber("backup"), clock=clock).open("inbound", RATE)
    call = Call(stream, clock)
    await call.push(_speech()[: -3 * 1600])
    events = await call.finish()
    assert _words(events) == EXPECTED and events[-1].provider == "backup"
    assert [s.reason for s in call.switches] == [SwitchReason.MISSING_FINAL]


async def test_primary_and_secondary_fail_third_takes_over() -> None:
    clock = FakeClock()
    primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.ERROR, after_ms=1500)])
    secondary = ScriptedTranscriber("secondary", faults=[Fault(FaultKind.STALL, after_ms=3000)])
    local = ScriptedTranscriber("local")
    # The stall timeout must clear an utterance (0.5 s) plus its answer, or a healthy provider looks stalled.
    stream = await _fallback(primary, secondary, local, clock=clock, stall_timeout_s=1.0).open("inbound", RATE)
    call = Call(stream, clock)
    await call.push(_speech())
    await call.until(lambda: stream.provider == "local", step_s=0.1)
    events = await call.finish()
    assert _words(events) == EXPECTED
    _assert_ordered_unique_finals(events)
    seen = [(s.from_provider, s.to_provider, s.reason) for s in call.switches]
    assert seen == [("primary", "secondary", "stream_error"), ("secondary", "local", "stall")]
    assert [e.provider for e in events if e.is_final][-1] == "local"


async def test_overlapping_finals_are_dropped_by_media_time() -> None:
    clock = FakeClock()
    # Fails 100 ms after the end of utterance 1 (final at 500 ms): the replay from 300 ms repeats w3 w4.
    primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.ERROR, after_ms=600)])
    backup = ScriptedTranscriber("backup", partials=True)
    stream = await _fallback(primary, backup, clock=clock).open("inbound", RATE)
    call = Call(stream, clock)
    await call.push(_speech())
    events = await call.finish()
    assert _words(events) == EXPECTED
    assert stream.stats().duplicates_dropped == 3  # backup's partials "w3", "w3 w4" and its final "w3 w4"
    assert all(e.end_ms > 500 for e in events if e.provider == "backup")


async def test_every_provider_failing_at_open_raises() -> None:
    clock = FakeClock()
    providers = [ScriptedTranscriber(n, default=Fault(FaultKind.OPEN_ERROR)) for n in ("a", "b")]
    with pytest.raises(ProviderUnavailable) as info:
        await _fallback(*providers, clock=clock).open("inbound", RATE)
    assert isinstance(info.value.__cause__, ProviderUnavailable) and info.value.provider == "fallback"


async def test_every_provider_failing_mid_stream_ends_iteration_with_an_error() -> None:
    clock = FakeClock()
    providers = [ScriptedTranscriber(n, faults=[Fault(FaultKind.ERROR, after_ms=500)]) for n in ("a", "b")]
    stream = await _fallback(*providers, clock=clock).open("inbound", RATE)
    call = Call(stream, clock)
    await call.push(_speech(), stop=1000)
    with pytest.raises(ProviderUnavailable):
        await asyncio.wait_for(call.task, 5)
    assert [(s.from_provider, s.to_provider) for s in call.switches] == [("a", "b")]  # announced before the error
    await stream.aclose()


async def test_the_last_provider_is_waited_for_not_abandoned() -> None:
    clock = FakeClock()
    primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.OPEN_ERROR)])
    local = ScriptedTranscriber("local", faults=[Fault(FaultKind.STALL, after_ms=0)])
    stream = await _fallback(primary, local, clock=clock, stall_timeout_s=0.5).open("inbound", RATE)
    call = Call(stream, clock)
    await call.push(_speech(), stop=2000)
    clock.now += 60
    await asyncio.sleep(0.01)
    assert not call.task.done() and len(call.switches) == 1
    await stream.aclose()
    assert await asyncio.wait_for(call.task, 5) == []


async def test_breaker_is_shared_by_calls_and_probes_after_cooldown() -> None:
    clock = FakeClock()
    board = CircuitBreakerBoard(clock=clock)
    primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.OPEN_ERROR)] * 3)
    backup = ScriptedTranscriber("backup")
    call_a, call_b = (_fallback(primary, backup, clock=clock, board=board) for _ in range(2))
    streams = [await fb.open("inbound", RATE) for fb in (call_a, call_b, call_a)]
    assert board.state("primary") is BreakerState.OPEN and primary.opens == 3
    streams.append(await call_b.open("inbound", RATE))  # straight to the backup: the primary is not tried
    assert primary.opens == 3 and streams[-1].provider == "backup" and streams[-1].stats().switches == 0
    clock.now += 30
    probe = await call_a.open("inbound", RATE)
    concurrent = await call_b.open("outbound", RATE)
    assert (probe.provider, concurrent.provider, primary.opens) == ("primary", "backup", 4)
    call = Call(probe, clock)
    await call.push(_speech(5))
    assert _words(await call.finish()) == EXPECTED[:5]
    assert board.state("primary") is BreakerState.CLOSED
    for stream in [*streams, concurrent]:
        await stream.aclose()


async def test_failed_probe_reopens_with_longer_cooldown_and_stays_lossless() -> None:
    clock = FakeClock()
    board = CircuitBreakerBoard(clock=clock)
    for _ in range(3):
        board.record_failure("primary", "down")
    clock.now += 30
    primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.ERROR, after_ms=300)])  # before any result
    stream = await _fallback(primary, ScriptedTranscriber("backup"), clock=clock, board=board).open("in", RATE)
    assert stream.provider == "primary"  # the probe
    call = Call(stream, clock)
    await call.push(_speech())
    assert _words(await call.finish()) == EXPECTED
    assert board.state("primary") is BreakerState.OPEN
    assert board.snapshot()["primary"]["cooldown_s"] == 60.0


async def test_every_breaker_open_still_tries_in_order() -> None:
    clock = FakeClock()
    board = CircuitBreakerBoard(clock=clock)
    for name in ("primary", "backup"):
        board.record_failure(name, "auth", retryable=False)
    primary, backup = ScriptedTranscriber("primary"), ScriptedTranscriber("backup")
    stream = await _fallback(primary, backup, clock=clock, board=board).open("inbound", RATE)
    assert stream.provider == "primary" and backup.opens == 0
    await stream.aclose()


async def test_hung_close_neither_delays_failover_nor_leaks_tasks(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock()
    before = asyncio.all_tasks()
    primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.ERROR, after_ms=1900, hang_on_close=True)])
    # The close hangs for good, so it ends only by close_timeout_s (real time). The backup answering before
    # that timeout is logged proves that failover did not wait on the close; the timeout is long so that a
    # loaded CI machine cannot stretch the few loop iterations between failover and answer beyond it.
    close_timeout_s = 2.0
    stream = await _fallback(primary, ScriptedTranscriber("backup"), clock=clock,
                             close_timeout_s=close_timeout_s).open("inbound", RATE)
    call = Call(stream, clock)
    audio = _speech()
    await call.push(audio, stop=1900)  # the primary has now heard all it will
    await call.push(audio, start=1900, stop=2400)  # up to the end of the utterance the primary lost
    await call.until(lambda: any(e.provider == "backup" for e in call.events))
    assert "closing a replaced provider" not in caplog.text  # the backup answered while the close still hung
    await call.push(audio, start=2400)
    # The iterator ends only once the hung close timed out: bounded, not forever.
    assert _words(await call.finish(within_s=close_timeout_s + 5)) == EXPECTED
    await stream.aclose()
    assert "closing a replaced provider: TimeoutError()" in caplog.text
    assert asyncio.all_tasks() == before


async def test_aclose_mid_call_and_mid_failover_leaves_no_tasks() -> None:
    clock = FakeClock()
    before = asyncio.all_tasks()
    gate = asyncio.Event()

    class Gated(ScriptedTranscriber):
        entered = False

        async def open(self, track: str, sample_rate: int) -> ScriptedStream:
            self.entered = True
            await gate.wait()
            return await super().open(track, sample_rate)

    primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.ERROR, after_ms=300)])
    backup = Gated("backup")
    stream = await _fallback(primary, backup, clock=clock).open("inbound", RATE)
    call = Call(stream, clock)
    await call.push(_speech(), stop=800)
    await call.until(lambda: backup.entered)  # the iterator is now waiting for the backup to open
    await stream.aclose()
    gate.set()
    assert await asyncio.wait_for(call.task, 5) == []
    assert backup.streams[0].closed and primary.streams[0].closed
    await stream.aclose()  # idempotent
    assert asyncio.all_tasks() == before

    stream = await _fallback(ScriptedTranscriber("a"), ScriptedTranscriber("b"), clock=clock).open("x", RATE)
    call = Call(stream, clock)
    await asyncio.sleep(0)
    await stream.aclose()  # while the iterator waits on the provider
    assert await asyncio.wait_for(call.task, 5) == []
    assert asyncio.all_tasks() == before


async def test_replay_buffer_is_bounded_and_counts_overflow() -> None:
    clock = FakeClock()
    primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.STALL, after_ms=0)])
    stream = await _fallback(primary, ScriptedTranscriber("backup"), clock=clock, max_buffer_ms=1000,
                             stall_timeout_s=30.0).open("inbound", RATE)
    call = Call(stream, clock)
    await call.push(_speech(), stop=2000)
    stats = stream.stats()
    assert (stats.provider, stats.buffered_ms, stats.overflow_ms, stats.switches) == ("primary", 1000, 1000, 0)
    await stream.aclose()
    assert await asyncio.wait_for(call.task, 5) == []


def test_rejects_nonsense_options() -> None:
    with pytest.raises(ValueError):
        FallbackTranscriber(ScriptedTranscriber(), breaker=CircuitBreakerBoard(), stall_timeout_s=0)


async def test_silent_track_ends_cleanly_and_counts_as_health() -> None:
    clock = FakeClock()
    primary = ScriptedTranscriber("primary")
    fallback = _fallback(primary, ScriptedTranscriber("backup"), clock=clock)
    stream = await fallback.open("outbound", RATE)
    call = Call(stream, clock)
    await call.push(np.zeros(RATE, np.int16))
    assert await call.finish() == []
    assert fallback.breaker.snapshot()["primary"]["successes"] == 1 and call.switches == []
    assert stream.stats().buffered_ms == 1000  # no final yet: all of it would be replayed


async def test_replay_buffer_keeps_audio_from_last_final_minus_overlap() -> None:
    clock = FakeClock()
    primary = ScriptedTranscriber("primary", texts=["hello there", "general kenobi"])
    stream = await _fallback(primary, ScriptedTranscriber("backup"), clock=clock).open("inbound", RATE)
    call = Call(stream, clock)
    await call.push(encode_words([0, None, None, None, 1, 2, None, None], RATE))
    await call.until(lambda: len(call.events) == 2)
    # A final ending at 100 ms keeps everything (nothing before -100 ms); the one at 600 ms keeps 400..800.
    assert [(e.text, e.start_ms, e.end_ms) for e in call.events] == [("hello there", 0, 100),
                                                                     ("general kenobi", 400, 600)]
    assert stream.stats().buffered_ms == 400
    await call.finish()


async def test_scripted_stream_is_an_async_iterator() -> None:
    stream = await ScriptedTranscriber("s", partials=True).open("inbound", RATE)
    stream.push(encode_words([7, None], RATE), 0)
    stream.end()
    events = [e async for e in stream]
    assert [(e.text, e.is_final, e.provider) for e in events] == [("w7", False, "s"), ("w7", True, "s")]


async def test_warm_warms_the_backups_not_the_primary() -> None:
    warmed: list[str] = []

    class Warmable(ScriptedTranscriber):
        async def warm(self) -> None:
            warmed.append(self.name)

    primary, backup = Warmable(name="primary"), Warmable(name="backup")
    await _fallback(primary, backup, ScriptedTranscriber(name="plain"), clock=FakeClock()).warm()
    assert warmed == ["backup"]
