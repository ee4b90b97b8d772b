"""CallSession's lifecycle on in-memory fakes (tests/fakes.py): no socket, database, disk or model.

Audio is a μ-law tone for speech and μ-law silence between; the scripted transcriber hears a tone slot as a word and
finalises an utterance at the first silent slot, with media times from the pushed ``pts_ms``. So each tone burst
becomes exactly one final at known media times, through the real jitter buffer, decoder and resampler.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from audio import mulaw
from audio.mulaw_resample import block_schedule
from switchboard.call.session import CallSession, SessionDeps
from switchboard.live.events import (
    CallEnded,
    CallStarted,
    ProviderSwitchUpdate,
    TranscriberError,
    TranscriptUpdate,
)
from switchboard.metrics import Metrics
from switchboard.transcribe.breaker import CircuitBreakerBoard
from switchboard.transcribe.fallback import FallbackTranscriber
from switchboard.transcribe.scripted import Fault, FaultKind, ScriptedTranscriber
from switchboard.twilio.events import Media, MediaFormat, Start, Track
from tests.fakes import AfterCallLog, MemoryStore, MemoryWriter, Recorders, RecordingHub, WallClock

CALL = "CA" + "1" * 32
TONE = mulaw.encode(np.full(160, 8000, np.int16))  # 20 ms of "speech"
QUIET = mulaw.encode(np.zeros(160, np.int16))


class Fakes:
    def __init__(self, transcriber: object | None = None, **options: object) -> None:
        self.store, self.hub, self.writer = MemoryStore(), RecordingHub(), MemoryWriter()
        self.recorders, self.after, self.metrics, self.clock = Recorders(), AfterCallLog(), Metrics(), WallClock()
        self.transcriber = transcriber if transcriber is not None else ScriptedTranscriber(
            "scripted", texts=["first", "second", "third"])
        self.deps = SessionDeps(store=self.store, hub=self.hub, transcriber=self.transcriber,  # type: ignore[arg-type]
                                writer=self.writer, data_dir=Path("/nonexistent"), metrics=self.metrics,
                                after_call=self.after, recorder=self.recorders, clock=self.clock,
                                instance_id="test-1", **options)  # type: ignore[arg-type]

    def session(self) -> CallSession:
        start = Start("MZ1", CALL, "AC1", ("inbound", "outbound"), MediaFormat("audio/x-mulaw", 8000, 1), {}, 1)
        return CallSession(start, self.deps, parser_stats=lambda: {"messages": 42})

    def row(self) -> dict[str, object]:
        return self.store.calls[CALL]


def frames(track: Track, start_ms: int, pattern: str, first_chunk: int = 1) -> Iterator[Media]:
    """One 20 ms frame per character of ``pattern``: ``#`` tone, ``.`` silence."""
    for i, c in enumerate(pattern):
        yield Media(track, first_chunk + i, start_ms + 20 * i, TONE if c == "#" else QUIET, 0)


def speak(session: CallSession, track: Track, start_ms: int, pattern: str, first_chunk: int = 1) -> None:
    for media in frames(track, start_ms, pattern, first_chunk):
        session.on_media(media)


UTTERANCE = "#" * 25 + "." * 25  # 0.5 s of tone, 0.5 s of silence: one final


async def until(condition: Callable[[], bool]) -> None:
    """Let the session's tasks run until ``condition()`` holds (a hang guard of 5 s, normally a few ms)."""
    async with asyncio.timeout(5):
        while not condition():  # noqa: ASYNC110  (the fakes have no event to wait on: the session's tasks run)
            await asyncio.sleep(0.001)


async def test_start_records_the_call_and_publishes_call_started() -> None:
    fakes = Fakes()
    async with fakes.session() as session:
        assert fakes.store.writes == ["create_call", "stream_started"]
        assert fakes.row()["status"] == "in-progress" and fakes.row()["instance_id"] == "test-1"
        assert fakes.row()["recording_key"] == session.recording_key == f"recordings/2026/01/02/{CALL}.wav"
        [started] = fakes.hub.events
        assert started == CallStarted("MZ1", ("inbound", "outbound"), "2026-01-02T03:04:05+00:00")
        session.stop("stop")
    assert fakes.metrics.count("switchboard_calls_started_total") == 1


async def test_media_becomes_finals_segments_and_a_recording_then_stop_ends_the_call() -> None:
    fakes = Fakes()
    async with fakes.session() as session:
        speak(session, "inbound", 0, UTTERANCE * 2)
        speak(session, "outbound", 0, "." * 100)
        session.stop("stop")
    finals = [e for e in fakes.hub.of(TranscriptUpdate) if e.is_final]
    assert [(e.track, e.speaker, e.text) for e in finals] == [("inbound", "caller", "first"),
                                                              ("inbound", "caller", "second")]
    assert [(e.start_ms, e.end_ms) for e in finals] == [(0, 500), (1000, 1500)]
    assert [(s.seq, s.text, s.start_ms) for s in fakes.writer.segments] == [(1, "first", 0), (2, "second", 1000)]
    row = fakes.row()
    assert row["end_reason"] == "stop" and row["media_ms"] == 2000 and row["providers"] == ["scripted"]
    assert row["stats"]["parser"] == {"messages": 42} and row["stats"]["transcription_errors"] == []
    assert isinstance(fakes.hub.events[-1], CallEnded) and fakes.hub.events[-1].media_ms == 2000
    assert fakes.after.ended == [(CALL, f"recordings/2026/01/02/{CALL}.wav")]
    assert fakes.recorders.made[0].closed


async def test_a_timestamp_gap_is_filled_so_later_speech_keeps_its_media_time() -> None:
    fakes = Fakes()
    async with fakes.session() as session:
        speak(session, "inbound", 0, UTTERANCE)
        speak(session, "inbound", 5000, UTTERANCE, first_chunk=51)  # 4 s of frames never arrived
        session.stop("stop")
    finals = [(e.start_ms, e.text) for e in fakes.hub.of(TranscriptUpdate) if e.is_final]
    assert finals == [(0, "first"), (5000, "second")]
    jitter = fakes.row()["stats"]["tracks"]["inbound"]["jitter"]
    assert jitter["gap_filled_frames"] == 200 and fakes.row()["media_ms"] == 6000


async def test_a_provider_switch_is_published_counted_and_kept_in_the_stats() -> None:
    primary = ScriptedTranscriber("primary", texts=["a", "b"], faults=[Fault(FaultKind.ERROR, after_ms=1200)])
    backup = ScriptedTranscriber("backup", texts=["b"])
    fallback = FallbackTranscriber(primary, backup, breaker=CircuitBreakerBoard())
    fakes = Fakes(fallback)
    async with fakes.session() as session:
        speak(session, "inbound", 0, UTTERANCE)
        await until(lambda: len(fakes.writer.segments) == 1)  # the primary's final, before its fault
        speak(session, "inbound", 1000, UTTERANCE, first_chunk=51)  # the primary fails at 1.2 s
        await until(lambda: bool(fakes.hub.of(ProviderSwitchUpdate)))
        session.stop("stop")
    [switch] = fakes.hub.of(ProviderSwitchUpdate)
    assert (switch.track, switch.from_provider, switch.to_provider, switch.reason) == (
        "inbound", "primary", "backup", "stream_error")
    finals = [(e.provider, e.text) for e in fakes.hub.of(TranscriptUpdate) if e.is_final]
    assert finals == [("primary", "a"), ("backup", "b")]
    labels = {"from": "primary", "to": "backup", "reason": "stream_error"}
    assert fakes.metrics.count("switchboard_provider_switches_total", labels) == 1
    [stored] = fakes.row()["stats"]["switches"]
    assert (stored["from"], stored["to"], stored["replay_from_ms"]) == ("primary", "backup", 300)  # 500 - overlap
    assert fakes.row()["providers"] == ["backup", "primary"]


async def test_hang_up_without_stop_still_flushes_the_last_words() -> None:
    fakes = Fakes()
    async with fakes.session() as session:
        speak(session, "inbound", 0, "#" * 25)  # cut off mid-utterance: no silence after it
        session.stop("socket closed without stop (code 1006)")
    assert [e.text for e in fakes.hub.of(TranscriptUpdate) if e.is_final] == ["first"]
    assert fakes.row()["end_reason"] == "socket closed without stop (code 1006)"


async def test_an_error_mid_call_ends_the_call_with_the_error_and_keeps_what_was_said() -> None:
    fakes = Fakes()
    with pytest.raises(RuntimeError, match="handler bug"):
        async with fakes.session() as session:
            speak(session, "inbound", 0, UTTERANCE)
            raise RuntimeError("handler bug")
    assert fakes.row()["end_reason"] == "error: RuntimeError('handler bug')"
    assert [s.text for s in fakes.writer.segments] == ["first"]
    assert isinstance(fakes.hub.events[-1], CallEnded)


async def test_a_recogniser_failing_mid_call_is_reported_and_the_call_goes_on() -> None:
    failing = ScriptedTranscriber("scripted", texts=["x"], default=Fault(FaultKind.ERROR, after_ms=1200))
    fakes = Fakes(failing)
    async with fakes.session() as session:
        speak(session, "inbound", 0, UTTERANCE)
        await until(lambda: len(fakes.writer.segments) == 1)
        speak(session, "inbound", 1000, UTTERANCE * 2, first_chunk=51)  # the recogniser fails at 1.2 s
        await until(lambda: bool(fakes.hub.of(TranscriberError)))
        session.stop("stop")
    [error] = fakes.hub.of(TranscriberError)
    assert error.track == "inbound" and "scripted failure" in error.error
    assert fakes.row()["media_ms"] == 3000 and fakes.row()["stats"]["transcription_errors"]
    assert [s.text for s in fakes.writer.segments] == ["x"]


async def test_server_shutdown_cancels_the_call_which_still_ends_cleanly() -> None:
    fakes = Fakes()
    ready = asyncio.Event()

    async def call() -> None:
        async with fakes.session() as session:
            speak(session, "inbound", 0, UTTERANCE)
            ready.set()
            await asyncio.Event().wait()  # the media handler, reading the socket

    task = asyncio.create_task(call())
    await asyncio.wait_for(ready.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fakes.row()["end_reason"] == "server shutdown"
    assert [s.text for s in fakes.writer.segments] == ["first"] and fakes.after.ended


async def test_a_store_outage_neither_fails_nor_blocks_the_call() -> None:
    fakes = Fakes()
    fakes.store.down = True
    async with fakes.session() as session:
        speak(session, "inbound", 0, UTTERANCE)
        session.stop("stop")
    assert CALL not in fakes.store.calls and fakes.store.writes == []
    assert [s.text for s in fakes.writer.segments] == ["first"]  # the writer spools those on its own
    assert isinstance(fakes.hub.events[-1], CallEnded)


async def test_a_recogniser_stalled_after_the_call_is_abandoned_after_drain_stall() -> None:
    stalled = ScriptedTranscriber("scripted", texts=["x"], default=Fault(FaultKind.HANG_AFTER_END))
    fakes = Fakes(stalled, drain_stall_s=0.05)
    async with fakes.session() as session:
        speak(session, "inbound", 0, "#" * 25)
        session.stop("stop")
    errors = fakes.row()["stats"]["transcription_errors"]
    assert any("stalled" in e for e in errors) and fakes.writer.segments == []


async def test_the_wall_clock_only_stamps_start_and_end() -> None:
    fakes = Fakes()
    fakes.clock.step = timedelta(minutes=5)
    async with fakes.session() as session:
        session.stop("stop")
    assert fakes.row()["ended_at"] - fakes.row()["created_at"] == timedelta(minutes=5)


async def test_audio_reaches_the_recogniser_on_the_frame_that_completes_a_resampler_block() -> None:
    """No batching on our side: each frame goes to the resampler as it is pushed, and soxr's first block reaches the
    recogniser within the push of the frame that completes it, without waiting for the event loop or more frames."""
    fakes = Fakes()
    lag = fakes.metrics.handoff_lag
    first, _ = block_schedule(8000, 16000, "MQ") or (0, 0)
    n = -(-first // 160)  # frames until soxr's first block

    def stt_samples() -> object:
        return session.live_stats()["tracks"]["inbound"]["stt_samples"]

    async with fakes.session() as session:
        speak(session, "inbound", 0, "#" * (n - 1))
        assert stt_samples() == 0 and lag.count == 0  # every frame handed to the resampler, soxr has nothing yet
        await asyncio.sleep(0.2)  # the earlier frames' arrival is long past: the lag is counted from the last one
        speak(session, "inbound", 20 * (n - 1), "#", first_chunk=n)
        assert stt_samples() == 1732 and lag.count == 1  # no await in between: given out on that very push
        assert lag.sum < 0.2
        session.stop("stop")
    assert stt_samples() == 2 * 160 * n  # the flush releases the rest: everything pushed, at twice the rate
