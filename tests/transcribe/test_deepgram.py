"""DeepgramTranscriber through the real ``deepgram-sdk`` against the loopback emulator, plus its sans-I/O parts.

Most tests use scripted words over synthetic audio (noise bursts the energy endpointer calls speech), so the
timing of every final is known; one test runs Moonshine behind the emulator on a real recording.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import InvalidStatus

from audio import mulaw
from audio.errors import InvalidPcmError
from audio.media_time import MediaClock
from audio.resample import StreamResampler
from audio.wav import read_tracks
from switchboard.transcribe.base import Transcriber, TranscriptEvent, TranscriptStream
from switchboard.transcribe.deepgram import (
    MAX_VOCABULARY,
    DeepgramStream,
    DeepgramTranscriber,
    _Assembler,
    vocabulary_params,
)
from switchboard.transcribe.errors import (
    ProviderAuthError,
    ProviderUnavailable,
    RecognitionFailed,
    StreamClosedError,
)
from switchboard.transcribe.wer import wer
from tests.emulators.deepgram_server import DeepgramEmulator, Fault, FaultKind
from tests.emulators.recognizer import EmulatorRecognizer, ScriptedRecognizer

# The SDK's async client is websockets' legacy one; DeepgramTranscriber filters these at its import, and this
# keeps the module safe if something else imports the SDK first.
pytestmark = [
    pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:websockets.exceptions.InvalidStatusCode is deprecated:DeprecationWarning"),
]

RATE = 16_000
FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
LINES = ["hello there", "my boiler is leaking", "third line"]


def synth(plan: list[tuple[str, float]], seed: int = 1) -> np.ndarray:
    """Quiet hiss ("s") and loud modulated noise ("v") the energy endpointer treats as speech."""
    rng = np.random.default_rng(seed)
    parts = []
    for kind, seconds in plan:
        n = int(seconds * RATE)
        if kind == "s":
            parts.append(rng.normal(0, 10, n))
        else:
            parts.append(rng.normal(0, 3000, n) * (0.3 + np.sin(np.arange(n) / RATE * 2 * np.pi * 3) ** 2))
    return np.clip(np.concatenate(parts), -32768, 32767).astype(np.int16)


TWO_UTTERANCES = [("s", 1.0), ("v", 1.5), ("s", 1.0), ("v", 1.2), ("s", 2.0)]  # speech 1.0–2.5 s, 3.5–4.7 s


def push_all(stream: TranscriptStream, pcm: np.ndarray, pts_ms: int = 0, chunk: int = 640) -> None:
    for i in range(0, len(pcm), chunk):
        stream.push(pcm[i : i + chunk], pts_ms + i * 1000 // RATE)


async def push_paced(stream: TranscriptStream, pcm: np.ndarray, speed: float = 10.0, pts_ms: int = 0) -> None:
    """Push 40 ms chunks at ``speed`` × real time so the emulator answers while audio still flows."""
    for i in range(0, len(pcm), 640):
        stream.push(pcm[i : i + 640], pts_ms + i * 1000 // RATE)
        await asyncio.sleep(0.04 / speed)


async def collect(stream: TranscriptStream, within_s: float = 5.0) -> list[TranscriptEvent]:
    async with asyncio.timeout(within_s):
        return [event async for event in stream]


def finals(events: list[TranscriptEvent]) -> list[TranscriptEvent]:
    return [e for e in events if e.is_final]


@pytest.fixture
async def emulator() -> AsyncIterator[DeepgramEmulator]:
    async with DeepgramEmulator(recognizer=ScriptedRecognizer(LINES), interim_ms=500) as emu:
        yield emu


def client(emu: DeepgramEmulator, **kwargs: float) -> DeepgramTranscriber:
    return DeepgramTranscriber(emu.api_key, base_url=emu.url, **kwargs)  # type: ignore[arg-type]


def assert_no_stream_tasks(stream: DeepgramStream) -> None:
    assert all(task.done() for task in stream._tasks)
    assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("deepgram-") and not t.done()]


async def test_finals_carry_scripted_words_and_media_time(emulator: DeepgramEmulator) -> None:
    transcriber = client(emulator)
    assert isinstance(transcriber, Transcriber) and transcriber.name == "deepgram"
    stream = await transcriber.open("inbound", RATE)
    assert isinstance(stream, TranscriptStream)
    consumer = asyncio.create_task(collect(stream))
    await push_paced(stream, synth(TWO_UTTERANCES), pts_ms=5_000)
    stream.end()
    events = await consumer
    got = [(e.text, e.start_ms, e.end_ms) for e in finals(events)]
    # Padding of 200 ms each side of the speech; media time = first pts (5000) + Deepgram's stream seconds.
    assert [g[0] for g in got] == LINES[:2]
    assert abs(got[0][1] - 5_800) <= 40 and abs(got[0][2] - 7_700) <= 40
    assert abs(got[1][1] - 8_300) <= 40 and abs(got[1][2] - 9_900) <= 40
    partials = [e for e in events if not e.is_final]
    assert partials and all(e.provider == "deepgram" and e.track == "inbound" for e in events)
    assert events.index(partials[0]) < events.index(finals(events)[0])  # interims come before their final
    assert emulator.stats().audio_s == pytest.approx(len(synth(TWO_UTTERANCES)) / RATE, abs=0.05)
    assert stream.stats().sent_ms == 6_700
    assert stream.stats().ignored_messages == 0  # the SDK parsed every emulator message into a known type
    assert_no_stream_tasks(stream)


async def test_a_pts_jump_shifts_later_media_times(emulator: DeepgramEmulator) -> None:
    stream = await client(emulator).open("outbound", RATE)
    pcm = synth(TWO_UTTERANCES)
    split = 3 * RATE  # in the silence between the utterances
    push_all(stream, pcm[:split], pts_ms=0)
    push_all(stream, pcm[split:], pts_ms=60_000)  # e.g. a gap the caller did not fill
    stream.end()
    got = finals(await collect(stream))
    assert abs(got[0].start_ms - 800) <= 40
    assert abs(got[1].start_ms - (60_000 + 300)) <= 40 and abs(got[1].end_ms - (60_000 + 1_900)) <= 40


async def test_is_final_pieces_are_joined_into_one_final_and_end_flushes_open_speech() -> None:
    # 1 s segments: Deepgram-style is_final pieces without speech_final, then speech_final at the pause.
    recognizer = ScriptedRecognizer(LINES)
    async with DeepgramEmulator(recognizer=recognizer, max_segment_ms=1_000) as emu:
        stream = await client(emu).open("inbound", RATE)
        push_all(stream, synth([("s", 0.5), ("v", 2.5), ("s", 1.0), ("v", 0.5)]))  # ends mid-speech
        stream.end()  # Finalize flushes the last utterance (from_finalize)
        got = finals(await collect(stream))
    pieces = recognizer.calls - 1  # the last call was the flushed utterance
    assert pieces >= 3 and len(got) == 2
    assert got[0].text == " ".join(LINES[i % 3] for i in range(pieces)) and got[1].text == LINES[pieces % 3]
    assert abs(got[0].start_ms - 300) <= 40 and 3_000 <= got[0].end_ms <= 3_240
    assert abs(got[1].start_ms - 3_800) <= 40 and abs(got[1].end_ms - 4_500) <= 40


async def test_real_words_from_moonshine_behind_the_emulator() -> None:
    left = read_tracks(FIXTURES / "real_beckett_short.wav")[0]
    resampler = StreamResampler(8000, RATE)
    pcm = np.concatenate((resampler.push(mulaw.decode(left)), resampler.flush()))[: 3 * RATE]  # "Ever tried."
    recognizer = EmulatorRecognizer()
    try:
        async with DeepgramEmulator(recognizer=recognizer) as emu:
            stream = await client(emu).open("inbound", RATE)
            push_all(stream, pcm)
            stream.end()
            got = finals(await collect(stream, within_s=30))
    finally:
        await recognizer.aclose()
    text = " ".join(e.text for e in got)
    assert wer("Ever tried.", text) == 0.0, text
    # The phrase starts at 1600 ms and ends before 3000 ms in the fixture; the emulator pads 200 ms.
    assert len(got) == 1 and 1_100 <= got[0].start_ms <= 1_700 and 2_200 <= got[0].end_ms <= 3_000


async def test_keepalive_holds_a_silent_stream_past_the_idle_timeout() -> None:
    # The emulator's idle timer runs on the loop this whole session shares: a keepalive is only read once the
    # loop gets to it, so the idle timeout must exceed the keepalive interval by more than a loaded CI machine
    # can stall the loop (1.4 s here).
    idle_s, keepalive_s, silent_s = 1.5, 0.1, 3.5
    async with DeepgramEmulator(recognizer=ScriptedRecognizer(LINES), idle_timeout_s=idle_s) as emu:
        stream = await client(emu, keepalive_s=keepalive_s).open("inbound", RATE)
        pcm = synth(TWO_UTTERANCES)
        push_all(stream, pcm[: 3 * RATE])
        await asyncio.sleep(silent_s)  # over two idle timeouts without audio
        push_all(stream, pcm[3 * RATE :], pts_ms=3_000)
        stream.end()
        # The second utterance went out on the same socket after the silence: it was held open...
        assert [e.text for e in finals(await collect(stream))] == LINES[:2]
    # ...by keepalives (without them it is closed: the test below), at least one per idle period. About
    # silent_s / keepalive_s = 35 are sent, but a stalled loop sends fewer, so only what holding the socket
    # took is asserted.
    assert emu.stats().keepalives >= math.ceil(silent_s / idle_s)
    assert stream.stats().keepalives == emu.stats().keepalives


async def test_idle_stream_without_keepalive_is_closed_and_reported() -> None:
    async with DeepgramEmulator(idle_timeout_s=0.3) as emu:
        stream = await client(emu, keepalive_s=30).open("inbound", RATE)
        with pytest.raises(ProviderUnavailable, match="1011 'NET-0001'") as info:
            await collect(stream)
        assert info.value.retryable and info.value.provider == "deepgram"
        assert_no_stream_tasks(stream)


async def test_wrong_key_or_injected_rejection_is_auth_error_at_open(emulator: DeepgramEmulator) -> None:
    with pytest.raises(ProviderAuthError, match="401") as info:
        await DeepgramTranscriber("wrong-key", base_url=emulator.url).open("inbound", RATE)
    assert not info.value.retryable and "wrong-key" not in str(info.value)
    emulator.inject(Fault(FaultKind.REJECT_AUTH), connections=1)
    with pytest.raises(ProviderAuthError):
        await client(emulator).open("inbound", RATE)
    stream = await client(emulator).open("inbound", RATE)  # the fault was for one connection only
    await stream.aclose()
    assert emulator.stats().rejected == 2


async def test_bad_model_is_a_non_retryable_refusal(emulator: DeepgramEmulator) -> None:
    with pytest.raises(ProviderUnavailable, match="400") as info:
        await client(emulator, model="whisper-9").open("inbound", RATE)  # type: ignore[arg-type]
    assert not info.value.retryable


async def test_unreachable_or_silent_host_is_unavailable_within_the_connect_timeout() -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept TCP, never answer the upgrade
        writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.perf_counter()
    with pytest.raises(ProviderUnavailable, match="timed out") as info:
        await DeepgramTranscriber("k", base_url=f"ws://127.0.0.1:{port}", connect_timeout_s=0.3).open("a", RATE)
    assert info.value.retryable and time.perf_counter() - started < 1.5
    server.close()
    await server.wait_closed()
    with pytest.raises(ProviderUnavailable, match="cannot connect"):
        await DeepgramTranscriber("k", base_url=f"ws://127.0.0.1:{port}").open("a", RATE)  # nothing listens


@pytest.mark.parametrize(("code", "reason", "retryable"), [(1011, "NET-0000", True), (1008, "DATA-0000", False)])
async def test_close_mid_stream_raises_after_the_finals_before_it(
        emulator: DeepgramEmulator, code: int, reason: str, retryable: bool) -> None:
    emulator.inject(Fault(FaultKind.CLOSE, after_ms=3_200, code=code, reason=reason))
    stream = await client(emulator).open("inbound", RATE)
    pcm = synth(TWO_UTTERANCES)
    push_all(stream, pcm[: 3 * RATE])
    async with asyncio.timeout(5):
        first = await anext(e async for e in stream if e.is_final)
    push_all(stream, pcm[3 * RATE :], pts_ms=3_000)
    events: list[TranscriptEvent] = []
    with pytest.raises(ProviderUnavailable, match=f"{code} '{reason}'") as info:
        async with asyncio.timeout(5):
            async for event in stream:
                events.append(event)
    assert info.value.retryable is retryable
    assert first.text == LINES[0] and not events  # nothing after the close; the final before it came through
    assert_no_stream_tasks(stream)


async def test_tcp_abort_without_close_frame_is_unavailable(emulator: DeepgramEmulator) -> None:
    emulator.inject(Fault(FaultKind.DIE, after_s=0.2))
    stream = await client(emulator).open("inbound", RATE)
    with pytest.raises(ProviderUnavailable, match="1006") as info:
        await collect(stream)
    assert info.value.retryable


async def test_non_json_frame_is_an_error_not_a_hang(emulator: DeepgramEmulator) -> None:
    emulator.inject(Fault(FaultKind.MALFORMED, after_ms=500))
    stream = await client(emulator).open("inbound", RATE)
    push_all(stream, synth(TWO_UTTERANCES))
    with pytest.raises(ProviderUnavailable, match="not JSON"):
        await collect(stream, within_s=3)
    assert_no_stream_tasks(stream)


async def test_provider_error_message_is_recognition_failed(emulator: DeepgramEmulator) -> None:
    emulator.inject(Fault(FaultKind.ERROR, after_ms=500))
    stream = await client(emulator).open("inbound", RATE)
    push_all(stream, synth(TWO_UTTERANCES))
    with pytest.raises(RecognitionFailed, match="StreamingError") as info:
        await collect(stream)
    assert info.value.retryable


@pytest.mark.parametrize("kind", [FaultKind.STALL, FaultKind.NO_FINAL])
async def test_stall_or_withheld_final_yields_no_final_and_keeps_waiting(
        emulator: DeepgramEmulator, kind: FaultKind) -> None:
    emulator.inject(Fault(kind))
    stream = await client(emulator).open("inbound", RATE)
    await push_paced(stream, synth(TWO_UTTERANCES), speed=20)
    stream.end()
    seen: list[TranscriptEvent] = []
    with pytest.raises(TimeoutError):  # the failover layer's time-out is what ends this
        async with asyncio.timeout(0.5):
            async for event in stream:
                seen.append(event)
    assert not finals(seen)
    assert bool(seen) is (kind is FaultKind.NO_FINAL)  # interims still flow when only the final is withheld
    await stream.aclose()
    assert_no_stream_tasks(stream)


async def test_slow_provider_still_delivers_late(emulator: DeepgramEmulator) -> None:
    emulator.inject(Fault(FaultKind.SLOW, delay_s=0.4))
    stream = await client(emulator).open("inbound", RATE)
    started = time.perf_counter()
    push_all(stream, synth(TWO_UTTERANCES))
    stream.end()
    assert [e.text for e in finals(await collect(stream))] == LINES[:2]
    assert time.perf_counter() - started >= 0.4


async def test_aclose_mid_stream_cancels_tasks_and_closes_the_socket(emulator: DeepgramEmulator) -> None:
    stream = await client(emulator).open("inbound", RATE)
    push_all(stream, synth(TWO_UTTERANCES)[: RATE])
    consumer = asyncio.create_task(collect(stream))
    await asyncio.sleep(0.05)
    [server_side] = [c.ws for c in emulator.connections]
    await stream.aclose()
    await stream.aclose()  # idempotent
    assert await consumer == []  # a waiting iterator just ends
    assert_no_stream_tasks(stream)
    with pytest.raises(StreamClosedError):
        stream.push(np.zeros(320, np.int16), 0)
    async with asyncio.timeout(2):
        await server_side.wait_closed()  # the client closed the socket, not just forgot it


async def test_push_validates_and_backlog_overflow_fails_the_stream(emulator: DeepgramEmulator) -> None:
    stream = await client(emulator, max_backlog_ms=200).open("inbound", RATE)
    with pytest.raises(InvalidPcmError):
        stream.push(np.zeros(320, np.float32), 0)
    stream.push(np.zeros(8_000, np.int16), 0)  # 500 ms at once, before the sender ran: over the bound
    with pytest.raises(ProviderUnavailable, match="backlog"):
        await collect(stream)
    assert stream.stats().dropped_ms == 500


async def test_emulator_takes_mulaw_8k_and_refuses_bad_queries_before_the_upgrade(
        emulator: DeepgramEmulator) -> None:
    auth = {"Authorization": f"Token {emulator.api_key}"}
    query = "model=nova-2-phonecall&encoding=mulaw&sample_rate=8000&channels=1&endpointing=300"
    downsampler = StreamResampler(RATE, 8000)
    ulaw = mulaw.encode(np.concatenate((downsampler.push(synth(TWO_UTTERANCES)), downsampler.flush())))
    async with ws_connect(f"{emulator.url}/v1/listen?{query}", additional_headers=auth) as ws:
        for i in range(0, len(ulaw), 800):  # 100 ms frames
            await ws.send(ulaw[i : i + 800])
        await ws.send('{"type": "CloseStream"}')
        messages = [json.loads(m) async for m in ws]
        assert ws.close_code == 1000
    finals_sent = [m for m in messages if m["type"] == "Results" and m["channel"]["alternatives"][0]["transcript"]]
    assert [m["channel"]["alternatives"][0]["transcript"] for m in finals_sent] == LINES[:2]
    assert finals_sent[0]["speech_final"] and abs(finals_sent[0]["start"] - 0.8) <= 0.04
    assert messages[-1]["type"] == "Metadata" and messages[-1]["duration"] == pytest.approx(6.7, abs=0.05)
    for bad in (query.replace("mulaw", "opus"), query.replace("nova-2-phonecall", "nova-9")):
        with pytest.raises(InvalidStatus) as info:
            await ws_connect(f"{emulator.url}/v1/listen?{bad}", additional_headers=auth)
        assert info.value.response.status_code == 400 and info.value.response.headers["dg-error"]


def results(text: str, start: float, duration: float, *, final: bool = True, speech_final: bool = False,
            from_finalize: bool = False, confidence: float = 0.9) -> SimpleNamespace:
    alternative = SimpleNamespace(transcript=text, confidence=confidence)
    return SimpleNamespace(type="Results", start=start, duration=duration, is_final=final,
                           speech_final=speech_final, from_finalize=from_finalize,
                           channel=SimpleNamespace(alternatives=[alternative]))


def test_assembler_joins_is_final_pieces_up_to_speech_final_or_utterance_end() -> None:
    clock = MediaClock(RATE)
    clock.note(0, 1_000)
    asm = _Assembler("inbound", clock)
    assert [e.text for e in asm.results(results("my add", 0.5, 0.4, final=False))] == ["my add"]
    assert asm.results(results("my address", 0.5, 1.0, confidence=0.8)) == []
    assert asm.results(results("", 1.5, 0.2)) == []  # empty finals are normal in silence
    [event] = asm.results(results("is one main street", 1.5, 1.0, speech_final=True, confidence=1.0))
    assert (event.text, event.is_final, event.start_ms, event.end_ms) == (
        "my address is one main street", True, 1_500, 3_500)
    assert event.confidence == pytest.approx(0.9)
    assert asm.results(results("okay", 4.0, 0.5)) == []
    assert [e.text for e in asm.flush()] == ["okay"] and asm.flush() == []  # UtteranceEnd / end of stream
    assert [e.text for e in asm.results(results("bye", 5.0, 0.5, from_finalize=True))] == ["bye"]
    assert asm.results(results("", 6.0, 0.5, final=False)) == []


def test_media_clock_maps_stream_seconds_through_pts_jumps() -> None:
    clock = MediaClock(RATE)
    clock.note(0, 200)
    clock.note(RATE, 1_200)  # contiguous: no new anchor
    clock.note(2 * RATE, 10_000)  # a jump
    assert clock.seconds_to_ms(0.5) == 700 and clock.seconds_to_ms(1.5) == 1_700
    assert clock.seconds_to_ms(2.25) == 10_250
    clock.drop_before(3 * RATE)
    assert clock.seconds_to_ms(2.5) == 10_500


async def test_vocabulary_reaches_deepgram_as_keywords(emulator: DeepgramEmulator) -> None:
    transcriber = DeepgramTranscriber(emulator.api_key, base_url=emulator.url,
                                      vocabulary=["Ashgrove Terrace", "Headingley", "Kelvin Drive", "Headingley"])
    stream = await transcriber.open("inbound", RATE)
    stream.end()
    await collect(stream)
    [conn] = emulator.connections
    assert [v for k, v in conn.query_pairs if k == "keywords"] == ["Ashgrove", "Headingley", "Kelvin"]


def test_vocabulary_params_by_model() -> None:
    names = ["Ashgrove Terrace", "Headingley", " ", "St. Mary's Road"]
    assert vocabulary_params("nova-3", names) == {"keyterm": ["Ashgrove Terrace", "Headingley", "St. Mary's Road"]}
    assert vocabulary_params("nova-2-phonecall", names) == {"keywords": ["Ashgrove", "Headingley", "Mary's"]}
    assert vocabulary_params("nova-2-phonecall", ["Road"]) == {}
    assert len(vocabulary_params("nova-3", [f"Street {n}" for n in range(80)])["keyterm"]) == MAX_VOCABULARY
