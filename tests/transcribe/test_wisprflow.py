"""WisprFlow client against the loopback emulator: wire format, session per utterance, tolerance, faults.

Real Silero endpointing on real speech (moonshine_cpp's beckett.wav); words come from ``ScriptedRecognizer``
except in the one test that runs Moonshine behind the emulator on a recorded call fixture.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import time
import wave
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import numpy as np
import orjson
import pybase64
import pytest

from audio import mulaw
from audio.endpoint import EndpointConfig
from audio.resample import StreamResampler
from audio.wav import read_tracks
from switchboard.transcribe.base import Transcriber, TranscriptEvent, TranscriptStream
from switchboard.transcribe.errors import (
    ProviderAuthError,
    ProviderUnavailable,
    StreamClosedError,
    TranscriptionError,
)
from switchboard.transcribe.vad import DetectorPool, cloud_detectors
from switchboard.transcribe.wisprflow import WisprFlowStream, WisprFlowTranscriber
from switchboard.transcribe.wisprflow_wire import (
    ReplyKind,
    WireError,
    append_message,
    commit_message,
    packet_volume,
    parse_reply,
)
from tests.emulators.recognizer import ScriptedRecognizer
from tests.emulators.wisprflow_server import Fault, FaultKind, WisprFlowEmulator

RATE = 16_000
CHUNK = 320  # 20 ms, as the media path pushes
FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "real_beckett_short.wav"


def _beckett() -> np.ndarray:
    spec = importlib.util.find_spec("moonshine_cpp")
    assert spec is not None and spec.origin is not None
    with wave.open(str(Path(spec.origin).parent / "test-data" / "beckett.wav"), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


BECKETT = _beckett()
PHRASE_1 = BECKETT[: int(1.6 * RATE)]  # "Ever tried." (speech ≈ 0.3–1.2 s)
PHRASE_2 = BECKETT[int(1.6 * RATE) : 3 * RATE]  # "Ever failed."
DETECTORS = cloud_detectors("webrtc")  # what production uses; Silero in one test below


def silence(seconds: float) -> np.ndarray:
    return np.random.default_rng(0).normal(0, 3, int(seconds * RATE)).astype(np.int16)  # ≈ -80 dBFS hiss


def feed(stream: TranscriptStream, pcm: np.ndarray, pts_ms: int = 0) -> None:
    for i in range(0, len(pcm), CHUNK):
        stream.push(pcm[i : i + CHUNK], pts_ms + i * 1000 // RATE)


def wispr(emulator: WisprFlowEmulator, **options: object) -> WisprFlowTranscriber:
    # The client's timeouts run on the event loop, which this test session shares with the servers and emulators
    # of earlier tests: on a loaded CI machine a loopback reply can be late by a second. Tests of a timeout pass
    # their own.
    options = {"ws_url": emulator.url, "auth_timeout_s": 3.0, "final_timeout_s": 3.0, "detectors": DETECTORS,
               **options}
    return WisprFlowTranscriber("test-key", **options)  # type: ignore[arg-type]


def locate(needle: np.ndarray, haystack: np.ndarray) -> int:
    """Index of ``needle``'s first 64 samples in ``haystack`` (speech: unique)."""
    windows = np.lib.stride_tricks.sliding_window_view(haystack, 64)
    return int(np.flatnonzero((windows == needle[:64]).all(axis=1))[0])


async def drain(stream: TranscriptStream, limit_s: float = 5.0) -> list[TranscriptEvent]:
    async with asyncio.timeout(limit_s):  # never a hang: every wait inside is bounded by the client's timeouts
        return [event async for event in stream]


async def eventually(condition: Callable[[], bool], what: str, limit_s: float = 10.0) -> None:
    """Poll ``condition`` until it holds (the emulator offers no event to wait on); fail after ``limit_s`` of
    wall time (generous: only a hang should reach it)."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached within {limit_s} s: {what}")
        await asyncio.sleep(0.005)


async def settled(emulator: WisprFlowEmulator) -> None:
    """The emulator has no connection open: proof that the client closed every socket."""
    await eventually(lambda: emulator.stats().open_connections == 0, f"all sockets closed ({emulator.stats()})")


@pytest.fixture
async def emulator() -> AsyncIterator[WisprFlowEmulator]:
    async with WisprFlowEmulator(recognizer=ScriptedRecognizer(["ever tried", "ever failed"])) as server:
        yield server


# --- wire (no sockets) -------------------------------------------------------------------------------------------


def test_append_message_carries_raw_pcm_with_volumes() -> None:
    loud = (np.ones(4000, dtype=np.int16) * 16384).tobytes()
    quiet = np.zeros(4000, dtype=np.int16).tobytes()
    message = orjson.loads(append_message(8, [loud, quiet], 0.25))
    body = message["audio_packets"]
    assert message["type"] == "append" and message["position"] == 8
    assert [pybase64.b64decode(p) for p in body["packets"]] == [loud, quiet]  # no RIFF header
    assert body["volumes"] == [0.5, 0.0]
    assert body["packet_duration"] == 0.25 and body["byte_encoding"] == "base64"
    assert orjson.loads(commit_message(3)) == {"type": "commit", "total_packets": 3}
    assert packet_volume((np.full(10, -32768, dtype=np.int16)).tobytes()) == 1.0


@pytest.mark.parametrize(("frame", "kind", "final"), [
    ('{"status":"auth"}', ReplyKind.AUTH, False),
    ('{"status":"info","message":{"event":"session_started"}}', ReplyKind.AUTH, False),
    ('{"status":"info","message":{"event":"commit_received"}}', ReplyKind.INFO, False),
    ('{"status":"text","final":true,"body":{"text":"Hi."}}', ReplyKind.TEXT, True),
    ('{"status":"text","body":{"text":"Hi.","final":true}}', ReplyKind.TEXT, True),
    ('{"status":"text","final":false,"body":{"text":"hi"}}', ReplyKind.TEXT, False),
    ('{"error":"quota exceeded"}', ReplyKind.ERROR, False),
    ('{"status":"error","message":"bad packet"}', ReplyKind.ERROR, False),
    ('{"status":"pong"}', ReplyKind.OTHER, False),
])
def test_parse_reply_tolerates_every_documented_shape(frame: str, kind: ReplyKind, final: bool) -> None:
    reply = parse_reply(frame)
    assert (reply.kind, reply.final) == (kind, final)
    if kind is ReplyKind.ERROR:
        assert reply.text in ("quota exceeded", "bad packet")


@pytest.mark.parametrize("frame", ['{"status": "text", "final": tru', "[1, 2]", "null"])
def test_parse_reply_rejects_non_objects(frame: str) -> None:
    with pytest.raises(WireError):
        parse_reply(frame)


def test_constructor_validates_and_hides_the_key() -> None:
    with pytest.raises(ValueError, match="packet_ms"):
        WisprFlowTranscriber("k", packet_ms=100)
    with pytest.raises(ValueError, match="ws_url"):
        WisprFlowTranscriber("k", ws_url="https://example.invalid/ws")
    assert "secret-key" not in repr(WisprFlowTranscriber("secret-key"))


# --- sessions over loopback ------------------------------------------------------------------------------------


SILERO = DetectorPool()
LATEST_END_MS = {"webrtc": 1900, "silero": 1700}
"""Speech ends ≈ 1.2 s; 0.2 s padding and the hangover; webrtcvad keeps its own ~0.2 s hangover on top."""


@pytest.mark.parametrize("vad", ["webrtc", "silero"])
async def test_two_utterances_give_two_finals_in_order_on_preopened_sockets(emulator: WisprFlowEmulator,
                                                                           vad: str) -> None:
    transcriber = wispr(emulator, detectors=cloud_detectors(vad, SILERO))
    assert isinstance(transcriber, Transcriber)
    stream = await transcriber.open("inbound", RATE)
    assert isinstance(stream, WisprFlowStream) and isinstance(stream, TranscriptStream)
    events = aiter(stream)
    feed(stream, np.concatenate([PHRASE_1, silence(1.5)]))
    async with asyncio.timeout(5):
        first = await anext(events)
    # The next socket was opened as soon as the first utterance committed, before any more audio.
    await eventually(lambda: emulator.stats().authenticated == 2, "the next socket pre-opened")
    feed(stream, np.concatenate([PHRASE_2, silence(1.0)]), pts_ms=3100)
    second = await anext(events)
    latency = stream.stats().last_final_latency_s
    stream.end()
    assert await drain(stream) == []
    assert (first.text, first.is_final, first.provider) == ("ever tried", True, "wisprflow")
    assert (second.text, second.is_final) == ("ever failed", True)
    latest = LATEST_END_MS[vad]
    assert 0 <= first.start_ms < 400 and 1000 < first.end_ms < latest  # speech ≈ 0.3–1.2 s
    assert 3100 - 200 <= second.start_ms < 3100 + 400 and 3100 + 1000 < second.end_ms < 3100 + latest  # padding
    stats = stream.stats()
    assert (stats.sessions, stats.warm_hits, stats.cold_opens, stats.finals) == (2, 2, 0, 2)
    assert latency is not None and 0 < latency < 2.0  # loopback, warm socket: normally a few ms
    print(f"\nend of utterance → final, warm socket, loopback: {latency * 1000:.1f} ms")
    await settled(emulator)
    used = [r for r in emulator.records if r.packets]
    assert [r.final_text for r in used] == ["ever tried", "ever failed"]
    for record, event in zip(used, (first, second), strict=True):
        assert record.total_packets == record.packets and record.errors == []
        assert record.packet_duration == 1.0 and record.riff_headers == 0
        assert record.auth is not None and record.auth["language"] == ["en"]
        assert record.auth["access_token"] == "test-key"
        assert record.packets * RATE >= (event.end_ms - event.start_ms) * 16  # padding included
    await stream.aclose()


async def test_sent_audio_is_the_utterance_exactly_then_zero_padding(emulator: WisprFlowEmulator) -> None:
    stream = await wispr(emulator, packet_ms=250).open("inbound", RATE)
    pcm = np.concatenate([PHRASE_1, silence(1.0)])
    feed(stream, pcm)
    stream.end()
    [event] = await drain(stream)
    [record] = [r for r in emulator.records if r.packets]
    audio = np.concatenate(record.audio)
    start, end = event.start_ms * 16, event.end_ms * 16  # pts 0: media ms == sample / 16 (rounded down)
    offset = locate(audio, pcm)
    assert start <= offset < start + 16
    length = next(n for n in range(end - start - 16, end - start + 16) if not audio[n:].any())
    assert np.array_equal(audio[:length], pcm[offset : offset + length])  # nothing lost, nothing moved
    assert len(audio) % 4000 == 0 and len(audio) - length < 4000  # equal 250 ms packets, last one padded
    await stream.aclose()


async def test_forced_cuts_split_audio_without_loss_or_overlap(emulator: WisprFlowEmulator) -> None:
    """Packets go out eagerly only up to where a forced cut cannot fall, so consecutive sessions abut."""
    endpoint = EndpointConfig(max_utterance_ms=2_500, cut_search_ms=800, hangover_ms=1_500)
    stream = await wispr(emulator, packet_ms=250, endpoint=endpoint).open("inbound", RATE)
    pcm = np.concatenate([BECKETT, silence(2.0)])
    feed(stream, pcm)
    stream.end()
    events = await drain(stream)
    assert len(events) >= 4
    records = [r for r in emulator.records if r.packets]
    assert len(records) == len(events)
    offsets = []
    for record in records:
        audio = np.concatenate(record.audio)
        offsets.append(locate(audio, pcm))
    for i, (a, b) in enumerate(itertools.pairwise(events)):
        if a.end_ms == b.start_ms:  # a forced cut: the next session starts exactly where this one stopped
            audio = np.concatenate(records[i].audio)
            span = offsets[i + 1] - offsets[i]
            assert np.array_equal(audio[:span], pcm[offsets[i] : offsets[i + 1]])
            assert not audio[span:].any()  # and carried nothing beyond the cut but zero padding
    assert any(a.end_ms == b.start_ms for a, b in itertools.pairwise(events))
    await stream.aclose()


async def test_partials_replace_each_other_then_the_final() -> None:
    recognizer = ScriptedRecognizer(["ever tried again"], words_per_s=4)
    async with WisprFlowEmulator(recognizer=recognizer, partial_every=1) as emulator:
        stream = await wispr(emulator, packet_ms=250).open("inbound", RATE)
        consumer = asyncio.ensure_future(drain(stream))
        pcm = np.concatenate([PHRASE_1, silence(1.0)])
        for at in range(0, len(pcm), 4000):  # 250 ms at a time, faster than real time but not all at once
            feed(stream, pcm[at : at + 4000], at // 16)
            await asyncio.sleep(0.03)
        stream.end()
        events = await consumer
        await stream.aclose()
    *partials, final = events
    assert partials and all(not e.is_final for e in partials) and final.is_final
    assert final.text == "ever tried again"
    assert all(final.text.startswith(p.text) for p in partials)
    assert all(p.start_ms == final.start_ms and p.end_ms <= final.end_ms + 250 for p in partials)


@pytest.mark.parametrize("variant", ["session_started", "both_acks", "final_under_body", "client_ws", "no_prefix"])
async def test_tolerated_wire_variants(variant: str) -> None:
    ack = {"session_started": "session_started", "both_acks": "both"}.get(variant, "status")
    async with WisprFlowEmulator(recognizer=ScriptedRecognizer(["ok"]), ack=ack) as emulator:  # type: ignore[arg-type]
        if variant == "final_under_body":
            emulator.inject(Fault(FaultKind.FINAL_UNDER_BODY), connections=None)
        url = emulator.client_url if variant == "client_ws" else emulator.url
        prefix = "" if variant == "no_prefix" else "Bearer "
        stream = await wispr(emulator, ws_url=url, key_prefix=prefix).open("inbound", RATE)
        feed(stream, np.concatenate([PHRASE_1, silence(1.0)]))
        stream.end()
        events = await drain(stream)
        await stream.aclose()
        await settled(emulator)
    assert [(e.text, e.is_final) for e in events] == [("ok", True)]


# --- faults: the right error, promptly ----------------------------------------------------------------------------

FAULT_TIMEOUT_S = 2.0
"""The client's auth and final timeouts in the fault tests: short, yet long enough for a loaded CI machine."""
SLOW_FINAL_S = 6.0
"""Well past the final timeout (and the time bound below): a client that waited for it would be hanging."""

# fault(s) → the error and what its message must say: a fault the server signals (close, error, refusal) is
# reported as such at once, not by running into a timeout
FAULTS: dict[str, tuple[tuple[Fault, ...], type[TranscriptionError], str]] = {
    "reject_http": ((Fault(FaultKind.REJECT_HTTP),), ProviderAuthError, "upgrade refused with HTTP 401"),
    "reject_message": ((Fault(FaultKind.REJECT_MESSAGE),), ProviderAuthError, "auth failed: Invalid API key"),
    "close_1011_mid_stream": ((Fault(FaultKind.CLOSE_MID_STREAM, after_packets=1),), ProviderUnavailable,
                              r"closed before the final \(code 1011\)"),
    "abort_at_accept": ((Fault(FaultKind.ABORT),), ProviderUnavailable, "closed during auth|cannot connect"),
    "abort_mid_stream": ((Fault(FaultKind.ABORT, after_packets=1),), ProviderUnavailable,
                         "closed before the final"),
    # The abort (0.3 s after accept) always comes before the slow final (1 s after commit); on a loaded
    # machine it may even come before the auth ack was read.
    "abort_after_commit": ((Fault(FaultKind.ABORT, delay_s=0.3), Fault(FaultKind.SLOW_FINAL, delay_s=1.0)),
                           ProviderUnavailable, "closed before the final|closed during auth"),
    "no_final": ((Fault(FaultKind.NO_FINAL),), ProviderUnavailable, f"no final within {FAULT_TIMEOUT_S} s"),
    "slow_final": ((Fault(FaultKind.SLOW_FINAL, delay_s=SLOW_FINAL_S),), ProviderUnavailable,
                   f"no final within {FAULT_TIMEOUT_S} s"),
    "malformed_json": ((Fault(FaultKind.MALFORMED),), ProviderUnavailable, "malformed frame from server"),
    "error_without_status": ((Fault(FaultKind.ERROR_WITHOUT_STATUS),), ProviderUnavailable,
                             "server error: internal error"),
    "partials_only": ((Fault(FaultKind.PARTIALS_ONLY),), ProviderUnavailable,
                      f"no final within {FAULT_TIMEOUT_S} s"),
}


@pytest.mark.parametrize("name", list(FAULTS))
async def test_fault_raises_the_right_error_from_the_iterator(emulator: WisprFlowEmulator, name: str) -> None:
    faults, error, cause = FAULTS[name]
    for fault in faults:
        emulator.inject(fault, connections=None)
    stream = await wispr(emulator, packet_ms=250, auth_timeout_s=FAULT_TIMEOUT_S,
                         final_timeout_s=FAULT_TIMEOUT_S).open("inbound", RATE)
    feed(stream, np.concatenate([PHRASE_1, silence(1.0)]))
    stream.end()
    started = time.perf_counter()
    seen: list[TranscriptEvent] = []
    with pytest.raises(error, match=cause) as caught:
        async with asyncio.timeout(3 * SLOW_FINAL_S):  # a hang guard only
            async for event in stream:
                seen.append(event)
    elapsed = time.perf_counter() - started
    assert caught.value.provider == "wisprflow"
    assert caught.value.retryable is (error is ProviderUnavailable)
    # Within its timeout (plus headroom for a loaded machine) and well before the slow final would have come.
    assert elapsed < FAULT_TIMEOUT_S + 3.0 < SLOW_FINAL_S, f"{name}: {elapsed:.2f} s to fail"
    assert not any(e.is_final for e in seen)
    assert name != "partials_only" or seen  # the partials did come through before the failure
    with pytest.raises(error):  # a failed stream stays failed
        await anext(aiter(stream))
    await stream.aclose()
    await settled(emulator)


async def test_bad_key_refused_by_message_is_an_auth_error() -> None:
    async with WisprFlowEmulator(api_key="right", bad_key="message") as emulator:
        stream = await wispr(emulator).open("inbound", RATE)  # key "test-key" is wrong here
        with pytest.raises(ProviderAuthError, match="Invalid API key"):
            await drain(stream)  # raised without any speech: the pre-opened socket already failed
        assert emulator.records[0].close_code == 1008
        await stream.aclose()


async def test_missing_auth_ack_times_out_as_unavailable() -> None:
    async with WisprFlowEmulator(ack="none") as emulator:
        stream = await wispr(emulator, auth_timeout_s=0.3).open("inbound", RATE)
        started = time.perf_counter()
        with pytest.raises(ProviderUnavailable, match="no auth ack"):
            await drain(stream)
        assert 0.25 < time.perf_counter() - started < 2.0  # its 0.3 s, not the 3 s of the other tests
        await stream.aclose()
        await settled(emulator)


async def test_idle_preopened_socket_closed_by_server_is_replaced(emulator: WisprFlowEmulator) -> None:
    # The emulator's idle limit also bounds its wait for our auth message: 1 s, not less, so that a loaded loop
    # cannot make it fire during the handshake (a different failure: an error, rightly).
    emulator.inject(Fault(FaultKind.IDLE_TIMEOUT, delay_s=1.0), connections=1)
    stream = await wispr(emulator).open("inbound", RATE)
    events = aiter(stream)
    feed(stream, silence(0.2))
    task = asyncio.ensure_future(anext(events))
    # The warm socket is closed by the server while idle; the iterator notices, and nothing is raised.
    await eventually(lambda: stream.stats().warm_lost == 1, "the idle-closed warm socket dropped")
    assert not task.done() and emulator.records[0].close_code == 1001
    feed(stream, np.concatenate([PHRASE_1, silence(1.0)]), pts_ms=200)
    async with asyncio.timeout(5):
        event = await task
    assert event.text == "ever tried" and stream.stats().warm_lost == 1
    await stream.aclose()
    await settled(emulator)


async def test_open_utterance_whose_socket_dies_before_any_audio_reopens_once(
        emulator: WisprFlowEmulator) -> None:
    # 1 s: the utterance must take the socket before it dies, and the handshake must finish before the limit.
    emulator.inject(Fault(FaultKind.IDLE_TIMEOUT, delay_s=1.0), connections=1)
    stream = await wispr(emulator).open("inbound", RATE)
    consumer = asyncio.ensure_future(drain(stream))
    feed(stream, PHRASE_1[: int(0.8 * RATE)])  # speech has started; not one full 1 s packet yet
    await eventually(lambda: stream.stats().warm_lost == 1, "the taken socket idle-closed and replaced")
    assert emulator.records[0].close_code == 1001
    feed(stream, np.concatenate([PHRASE_1[int(0.8 * RATE) :], silence(1.0)]), pts_ms=800)
    stream.end()
    [event] = await consumer
    assert event.text == "ever tried" and 0 <= event.start_ms < 400
    stats = stream.stats()
    assert (stats.warm_hits, stats.warm_lost, stats.cold_opens, stats.sessions) == (1, 1, 1, 1)
    [record] = [r for r in emulator.records if r.packets]
    assert record is emulator.records[1]  # the whole utterance went to the replacement, from its start
    await stream.aclose()


async def test_warm_socket_is_recycled_after_its_ttl(emulator: WisprFlowEmulator) -> None:
    stream = await wispr(emulator, warm_ttl_s=0.1).open("inbound", RATE)
    task = asyncio.ensure_future(anext(aiter(stream)))
    await eventually(lambda: stream.stats().warm_expired >= 1, "the warm socket expired")
    assert stream.stats().warm_expired == 1 and stream.stats().warm_lost == 0 and not task.done()
    await settled(emulator)  # expired without any audio arriving: the iterator's timer closed it
    task.cancel()
    await asyncio.wait([task])
    await stream.aclose()


async def test_aclose_mid_utterance_leaves_no_task_and_no_socket(emulator: WisprFlowEmulator) -> None:
    emulator.inject(Fault(FaultKind.NO_FINAL), connections=None)
    before = asyncio.all_tasks()
    stream = await wispr(emulator, packet_ms=250).open("inbound", RATE)
    consumer = asyncio.ensure_future(drain(stream))
    feed(stream, BECKETT[: RATE])  # speech still going on
    await eventually(lambda: emulator.stats().packets >= 2, "packets streamed", limit_s=5)
    await stream.aclose()
    assert await consumer == []  # the iterator ends instead of hanging
    assert asyncio.all_tasks() - before == set()
    await settled(emulator)
    with pytest.raises(StreamClosedError):
        stream.push(BECKETT[:320], 1000)
    await stream.aclose()  # idempotent


# --- the emulator's own checks ---------------------------------------------------------------------------------


def _riff(pcm: bytes) -> bytes:
    return b"RIFF" + (36 + len(pcm)).to_bytes(4, "little") + b"WAVEfmt " + bytes(20) + b"data" + \
        len(pcm).to_bytes(4, "little") + pcm


PACKET = np.full(4000, 300, dtype=np.int16).tobytes()  # 250 ms
AUTH = '{"type":"auth","access_token":"test-key"}'
RIFF_APPEND = orjson.dumps({"type": "append", "position": 0, "audio_packets": {
    "packets": [pybase64.b64encode(_riff(PACKET)).decode()], "volumes": [0.01], "packet_duration": 0.25,
    "audio_encoding": "wav", "byte_encoding": "base64"}}).decode()


async def _exchange(messages: list[str]) -> tuple[list[dict[str, object]], WisprFlowEmulator]:
    """Send ``messages`` raw to a fresh emulator; every reply until it closes the connection."""
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    replies: list[dict[str, object]] = []
    async with WisprFlowEmulator(recognizer=ScriptedRecognizer(["ok"]), close_after_final_s=0.05) as emulator:
        async with connect(f"{emulator.url}?api_key=Bearer%20test-key") as ws:
            for message in messages:
                await ws.send(message)
            with contextlib.suppress(ConnectionClosed):  # the emulator closes (1000 or 1008): that ends it
                async with asyncio.timeout(2):
                    while True:
                        replies.append(orjson.loads(await ws.recv()))
    return replies, emulator


@pytest.mark.parametrize(("append", "riff"), [(append_message(0, [PACKET], 0.25), 0), (RIFF_APPEND, 1)])
async def test_emulator_accepts_raw_and_riff_packets(append: str, riff: int) -> None:
    replies, emulator = await _exchange([AUTH, append, commit_message(1)])
    assert replies[0] == {"status": "auth"}
    assert replies[1] == {"status": "info", "message": {"event": "commit_received"}}
    assert replies[2] == {"status": "text", "final": True, "body": {"text": "ok", "detected_language": "en"}}
    assert emulator.records[0].riff_headers == riff and emulator.records[0].close_code == 1000


@pytest.mark.parametrize(("messages", "error"), [
    ([commit_message(0)], "auth first"),
    ([AUTH, append_message(1, [PACKET], 0.25)], "position"),
    ([AUTH, append_message(0, [PACKET], 0.25), append_message(1, [PACKET], 0.5)], "packet_duration"),
    ([AUTH, append_message(0, [PACKET[:-2]], 0.25)], "samples"),
    ([AUTH, append_message(0, [PACKET], 0.25).replace('"volumes":[0.0092]', '"volumes":[]')], "volumes"),
    ([AUTH, append_message(0, [PACKET], 0.25).replace('"packets":["', '"packets":["!')], "base64"),
    ([AUTH, append_message(0, [PACKET], 0.25), commit_message(2)], "total_packets"),
])
async def test_emulator_rejects_bad_messages(messages: list[str], error: str) -> None:
    replies, emulator = await _exchange(messages)
    last = replies[-1]
    assert last["status"] == "error" and error in str(last["error"]), replies
    assert emulator.records[0].close_code == 1008


# --- real words -----------------------------------------------------------------------------------------------


async def test_real_words_from_moonshine_behind_the_emulator() -> None:
    from switchboard.transcribe.moonshine import RecognizerPool
    from tests.emulators.recognizer import EmulatorRecognizer

    inbound = mulaw.decode(read_tracks(FIXTURE)[0][: 6 * 8000])  # "Ever tried. Ever failed. No matter."
    resampler = StreamResampler(8000, RATE)
    pcm = np.concatenate([resampler.push(inbound), resampler.flush(), silence(1.0)])
    pool = RecognizerPool(1)
    try:
        await pool.wait_ready()  # the model loads (~2.5 s) before the clock of any session starts
        async with WisprFlowEmulator(recognizer=EmulatorRecognizer(pool)) as emulator:
            stream = await wispr(emulator, final_timeout_s=15.0).open("inbound", RATE)
            feed(stream, pcm)
            stream.end()
            events = await drain(stream, limit_s=30)
            await stream.aclose()
    finally:
        await pool.aclose()
    words = " ".join(e.text for e in events if e.is_final).lower()
    assert sum(w in words for w in ("ever", "tried", "failed", "matter")) >= 3, words
    assert all(1000 <= e.start_ms < e.end_ms <= 7000 for e in events)  # speech starts at 1.6 s


async def test_final_timeout_follows_observed_latency(emulator: WisprFlowEmulator) -> None:
    """After answers in ~50 ms, a session that never gets its final is given up on after the tracker's floor
    (0.5 s), not the configured 6 s: failover from a stalled WisprFlow then takes well under a second."""
    transcriber = wispr(emulator, packet_ms=250, final_timeout_s=SLOW_FINAL_S)
    for _ in range(5):
        transcriber.final_latency.observe(0.05)
    assert transcriber.final_latency.deadline_s() == pytest.approx(0.5)
    emulator.inject(Fault(FaultKind.NO_FINAL), connections=None)
    stream = await transcriber.open("inbound", RATE)
    feed(stream, np.concatenate([PHRASE_1, silence(1.0)]))
    stream.end()
    with pytest.raises(ProviderUnavailable, match=r"no final within 0\.5 s"):
        await drain(stream, limit_s=2 * SLOW_FINAL_S)  # a hang guard only
    await stream.aclose()
    await settled(emulator)


async def test_final_latencies_are_observed(emulator: WisprFlowEmulator) -> None:
    transcriber = wispr(emulator, packet_ms=250)
    stream = await transcriber.open("inbound", RATE)
    feed(stream, np.concatenate([PHRASE_1, silence(1.0)]))
    stream.end()
    finals = [e for e in await drain(stream) if e.is_final]
    await stream.aclose()
    assert finals
    assert len(transcriber.final_latency._recent) == len(finals)
