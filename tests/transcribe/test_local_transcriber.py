"""LocalTranscriber stream mechanics with the real Silero detector and a fake recogniser (fast, deterministic).

The fake engine answers with the number of samples it was given, so each event can be checked against the
utterance it came from; the real model is exercised in test_moonshine.py.
"""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import threading
import time
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from audio.endpoint import EndpointConfig
from audio.errors import InvalidPcmError, UnsupportedRateError
from switchboard.transcribe.base import Transcriber, TranscriptEvent, TranscriptStream
from switchboard.transcribe.errors import RecognitionFailed, StreamClosedError
from switchboard.transcribe.local import LocalStream, LocalTranscriber
from switchboard.transcribe.moonshine import Recognition, RecognizerPool
from switchboard.transcribe.vad import DetectorPool

RATE = 16_000
CHUNK = 320  # 20 ms


def _beckett() -> np.ndarray:
    spec = importlib.util.find_spec("moonshine_cpp")
    assert spec is not None and spec.origin is not None
    with wave.open(str(Path(spec.origin).parent / "test-data" / "beckett.wav"), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


BECKETT = _beckett()
PHRASE_1 = BECKETT[: int(1.6 * RATE)]  # "Ever tried." (speech ≈ 0.35–1.2 s)


def silence(seconds: float) -> np.ndarray:
    noise = np.random.default_rng(0).normal(0, 3, int(seconds * RATE))  # ≈ -80 dBFS line hiss
    return noise.astype(np.int16)


class FakeEngine:
    """Returns the sample count as text; optionally waits for ``gate`` and sleeps per sample."""

    def __init__(self, gate: threading.Event | None = None, delay_per_s: float = 0.0, text: str | None = None,
                 fail: bool = False) -> None:
        self.calls: list[int] = []
        self.started = threading.Event()
        self.active = self.max_active = 0
        self._lock = threading.Lock()
        self._gate, self._delay, self._text, self._fail = gate, delay_per_s, text, fail

    def transcribe(self, samples: np.ndarray) -> str:
        assert samples.dtype == np.float32
        with self._lock:
            self.calls.append(samples.size)
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.started.set()
        if self._gate is not None:
            self._gate.wait(5)
        time.sleep(self._delay * samples.size / RATE)
        with self._lock:
            self.active -= 1
        if self._fail:
            raise RecognitionFailed("engine error", provider="fake")
        return str(samples.size) if self._text is None else self._text

    def self_test(self) -> str:
        return "ok"

    def close(self) -> None:
        pass


def make_pool(engine: FakeEngine, workers: int = 1) -> RecognizerPool:
    return RecognizerPool(workers, engine_factory=lambda: engine)


DETECTORS = DetectorPool()  # shared: building a Silero session per test would dominate the run time


def local(pool: RecognizerPool, **options: object) -> LocalTranscriber:
    return LocalTranscriber(pool, detectors=DETECTORS, **options)  # type: ignore[arg-type]


def feed(stream: TranscriptStream, pcm: np.ndarray, pts_ms: int = 0) -> None:
    for i in range(0, len(pcm), CHUNK):
        stream.push(pcm[i : i + CHUNK], pts_ms + i * 1000 // RATE)


async def drain(stream: TranscriptStream) -> list[TranscriptEvent]:
    return [event async for event in stream]


async def caught_up(*streams: LocalStream) -> None:
    """Let the iterating tasks run until every stream's detector has seen all pushed audio (≤ 5 s)."""
    for _ in range(500):
        if all(s.stats().backlog_samples < 512 for s in streams):
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the iterator did not process the pushed audio")


async def until(condition: Callable[[], bool], what: str, within_s: float = 10.0) -> None:
    """Poll ``condition`` (a decode comes back from a worker thread: there is no event to wait on)."""
    deadline = time.monotonic() + within_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {within_s} s: {what}")
        await asyncio.sleep(0.005)


@pytest.fixture
def engine() -> FakeEngine:
    return FakeEngine()


@pytest.fixture
async def transcriber(engine: FakeEngine):
    pool = make_pool(engine)
    yield local(pool)
    await pool.aclose()


async def test_implements_the_protocols(transcriber: LocalTranscriber) -> None:
    stream = await transcriber.open("inbound", RATE)
    assert isinstance(transcriber, Transcriber)
    assert isinstance(stream, TranscriptStream)
    await stream.aclose()


async def test_end_flushes_open_speech_into_a_final(transcriber: LocalTranscriber, engine: FakeEngine) -> None:
    stream = await transcriber.open("inbound", RATE)
    feed(stream, PHRASE_1[: int(1.0 * RATE)], pts_ms=1000)  # cut while still speaking
    stream.end()
    events = await drain(stream)
    assert len(events) == 1
    (final,) = events
    assert final.is_final and final.track == "inbound" and final.provider == "local"
    assert final.end_ms == 1000 + 1000  # the utterance runs to the end of the audio
    assert abs(final.start_ms - (1000 + 350 - 200)) <= 100  # speech onset minus 200 ms padding
    assert engine.calls == [int(final.text)]
    assert int(final.text) == pytest.approx((final.end_ms - final.start_ms) * 16, abs=16)


async def test_one_decode_in_flight_per_stream_keeps_events_in_order() -> None:
    # Two free workers: a stream that submitted every utterance at once would decode them in parallel.
    slow = FakeEngine(delay_per_s=0.05)
    pool = make_pool(slow, workers=2)
    try:
        stream = await local(pool).open("outbound", RATE)
        audio = np.concatenate([BECKETT, silence(1.0)])
        feed(stream, audio)
        stream.end()
        events = await drain(stream)
    finally:
        await pool.aclose()
    assert len(events) >= 4
    starts = [e.start_ms for e in events]
    assert starts == sorted(starts)
    assert all(a.end_ms <= b.start_ms for a, b in itertools.pairwise(events))
    assert [int(e.text) for e in events] == slow.calls
    assert slow.max_active == 1


async def test_pts_jump_is_honoured_for_timestamps(transcriber: LocalTranscriber) -> None:
    stream = await transcriber.open("inbound", RATE)
    feed(stream, np.concatenate([PHRASE_1, silence(0.7)]), pts_ms=0)
    feed(stream, np.concatenate([PHRASE_1, silence(0.7)]), pts_ms=60_000)  # media time jumps a minute
    stream.end()
    first, second = await drain(stream)
    assert first.start_ms < 1000
    assert 60_000 < second.start_ms < 61_000
    assert second.end_ms - second.start_ms == pytest.approx(first.end_ms - first.start_ms, abs=100)


async def test_aclose_mid_decode_leaves_no_task_and_drops_queued_work() -> None:
    gate = threading.Event()
    engine = FakeEngine(gate=gate)
    pool = make_pool(engine)
    transcriber = local(pool)
    try:
        a = await transcriber.open("inbound", RATE)
        b = await transcriber.open("outbound", RATE)
        for stream in (a, b):
            feed(stream, np.concatenate([PHRASE_1, silence(0.8)]))
        iterating = asyncio.create_task(drain(a))
        b_iterating = asyncio.create_task(drain(b))
        assert await asyncio.to_thread(engine.started.wait, 5)  # one decode runs, the other is queued
        await caught_up(a, b)  # both utterances are cut: one decoding, the other queued behind it
        await asyncio.sleep(0.01)
        await a.aclose()
        await b.aclose()
        assert await asyncio.wait_for(iterating, 1) == []
        assert await asyncio.wait_for(b_iterating, 1) == []
        assert own_tasks() == set()
        await a.aclose()  # idempotent
        with pytest.raises(StreamClosedError):
            a.push(PHRASE_1[:CHUNK], 0)
    finally:
        gate.set()
        await pool.aclose()
    assert len(engine.calls) == 1  # b's queued decode never ran


async def test_aclose_while_speech_is_open_returns_detector(engine: FakeEngine) -> None:
    detectors = DetectorPool()
    pool = make_pool(engine)
    stream = await LocalTranscriber(pool, detectors=detectors).open("inbound", RATE)
    assert isinstance(stream, LocalStream)
    feed(stream, PHRASE_1[: RATE])
    iterating = asyncio.create_task(drain(stream))
    await caught_up(stream)  # the iterator runs the detector over what was pushed
    await stream.aclose()
    assert await iterating == []
    assert own_tasks() == set()
    assert detectors.idle == 1
    assert engine.calls == []
    await pool.aclose()


async def test_audio_held_is_bounded_during_endless_speech(engine: FakeEngine) -> None:
    config = EndpointConfig(hangover_ms=1500)  # bridges beckett's pauses: only forced cuts end utterances
    pool = make_pool(engine)
    stream = await local(pool, endpoint=config).open("inbound", RATE)
    assert isinstance(stream, LocalStream)
    speech = np.concatenate([BECKETT[5000:]] * 4)  # ~36 s with only short pauses
    retained: list[int] = []
    events: list[TranscriptEvent] = []

    async def consume() -> None:
        events.extend([e async for e in stream])

    async with asyncio.TaskGroup() as group:
        group.create_task(consume())
        for i in range(0, len(speech), RATE):
            feed(stream, speech[i : i + RATE], pts_ms=i // 16)
            await asyncio.sleep(0.01)
            retained.append(stream.stats().retained_samples)
        stream.end()
    await pool.aclose()
    limit = config.samples(config.max_utterance_ms + config.padding_ms) + RATE  # + the second just pushed
    assert max(retained) <= limit
    assert len(events) >= 3
    assert all(e.end_ms - e.start_ms <= config.max_utterance_ms + config.padding_ms for e in events)


class CountingPool(RecognizerPool):
    """Counts the decodes streams submit, so a test can wait until each one has come back as an event."""

    submitted = 0

    def submit(self, samples: np.ndarray) -> asyncio.Future[Recognition]:
        self.submitted += 1
        return super().submit(samples)


async def test_pseudo_partials_precede_the_final(engine: FakeEngine) -> None:
    pool = CountingPool(1, engine_factory=lambda: engine)
    try:
        stream = await local(pool, partial_interval_ms=400).open("inbound", RATE)
        assert isinstance(stream, LocalStream)
        iterating = asyncio.create_task(drain(stream))
        audio = np.concatenate([PHRASE_1, silence(1.0)])
        for i in range(0, len(audio), RATE // 10):  # 100 ms at a time, like a live call...
            feed(stream, audio[i : i + RATE // 10], pts_ms=i // 16)
            # ...paced on progress, not on time: the iterator has run the detector over it and every decode
            # submitted so far (a partial is submitted in the same step) has come back as an event. A partial
            # still decoding when the final is cut is dropped as stale by design; a thread-pool decode delayed
            # on a loaded machine must not make that happen here.
            await caught_up(stream)
            await until(lambda: stream.stats().partials + stream.stats().finals == pool.submitted,
                        "every decode submitted came back as an event")
        stream.end()
        events = await asyncio.wait_for(iterating, 10)
    finally:
        await pool.aclose()
    partials = [e for e in events if not e.is_final]
    finals = [e for e in events if e.is_final]
    assert partials and len(finals) == 1
    assert events[-1] is finals[0]
    assert all(p.start_ms == finals[0].start_ms and p.end_ms <= finals[0].end_ms for p in partials)
    assert [p.end_ms for p in partials] == sorted(p.end_ms for p in partials)
    assert len(engine.calls) == len(events)  # no decode was wasted


async def test_empty_text_emits_nothing() -> None:
    pool = make_pool(FakeEngine(text=""))
    try:
        stream = await local(pool).open("inbound", RATE)
        feed(stream, np.concatenate([PHRASE_1, silence(1.0)]))
        stream.end()
        assert await drain(stream) == []
    finally:
        await pool.aclose()


async def test_recognition_failure_surfaces_to_the_iterator() -> None:
    pool = make_pool(FakeEngine(fail=True))
    try:
        stream = await local(pool).open("inbound", RATE)
        feed(stream, np.concatenate([PHRASE_1, silence(1.0)]))
        stream.end()
        with pytest.raises(RecognitionFailed):
            await drain(stream)
        await stream.aclose()
    finally:
        await pool.aclose()


async def test_silence_gives_no_events(transcriber: LocalTranscriber, engine: FakeEngine) -> None:
    stream = await transcriber.open("inbound", RATE)
    feed(stream, silence(3.0))
    stream.end()
    assert await drain(stream) == []
    assert engine.calls == []


async def test_bad_input_is_rejected(transcriber: LocalTranscriber) -> None:
    with pytest.raises(UnsupportedRateError):
        await transcriber.open("inbound", 8000)
    stream = await transcriber.open("inbound", RATE)
    with pytest.raises(InvalidPcmError):
        stream.push(np.zeros(320, dtype=np.float32), 0)  # type: ignore[arg-type]
    stream.end()
    with pytest.raises(StreamClosedError):
        stream.push(np.zeros(320, dtype=np.int16), 0)
    assert await drain(stream) == []


async def test_backlog_over_the_bound_is_dropped_and_timestamps_recover(engine: FakeEngine) -> None:
    pool = make_pool(engine)
    try:
        stream = await local(pool, max_backlog_ms=12_000).open("inbound", RATE)
        assert isinstance(stream, LocalStream)
        feed(stream, silence(15.0))  # nobody iterates yet: only 12 s may wait
        stats = stream.stats()
        assert stats.dropped_samples == 3 * RATE and stats.backlog_samples == 12 * RATE
        iterating = asyncio.create_task(drain(stream))
        await caught_up(stream)
        feed(stream, np.concatenate([PHRASE_1, silence(1.0)]), pts_ms=20_000)
        stream.end()
        (event,) = await iterating
    finally:
        await pool.aclose()
    assert abs(event.start_ms - (20_000 + 350 - 200)) <= 100



def own_tasks() -> set[asyncio.Task[object]]:
    """Tasks left running by this test or the transcriber: session fixtures (servers) share the event loop, so
    comparing against every task in the loop would see theirs."""
    me = asyncio.current_task()
    return {t for t in asyncio.all_tasks() if t is not me and _code_file(t).endswith(
        ("test_local_transcriber.py", "transcribe/local.py", "transcribe/moonshine.py", "transcribe/vad.py"))}


def _code_file(task: asyncio.Task[object]) -> str:
    code = getattr(task.get_coro(), "cr_code", None)
    return code.co_filename if code is not None else ""


async def test_warm_loads_the_engine_and_a_detector_before_any_stream() -> None:
    pool = make_pool(FakeEngine())
    detectors = DetectorPool()
    assert pool.stats().engines == 0 and detectors.idle == 0
    await LocalTranscriber(pool, detectors=detectors).warm()
    assert pool.stats().engines == 1
    assert detectors.idle == 1  # built and put back: the first stream takes it without building one
    await pool.aclose()
