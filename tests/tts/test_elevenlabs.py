"""Our ElevenLabs stream-input client and the SDK's HTTP stream, against the emulator, one test per fault."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from switchboard.tts.base import AudioChunk, TurnEnd, VoiceStream
from switchboard.tts.elevenlabs import ElevenLabsSettings, ElevenLabsVoice
from switchboard.tts.errors import VoiceAuthError, VoiceProtocolError, VoiceTimeout, VoiceUnavailable
from tests.emulators.elevenlabs_server import ElevenLabsEmulator, Fault, FaultKind, HttpFault

TEXT = "Thanks for calling Acme Plumbing. What is the address of the property?"


@pytest.fixture
async def el() -> AsyncIterator[ElevenLabsEmulator]:
    async with ElevenLabsEmulator() as emulator:
        yield emulator


def _voice(el: ElevenLabsEmulator, **overrides: object) -> ElevenLabsVoice:
    settings = ElevenLabsSettings(api_key="el-test-key", voice_id="voice123", ws_url=el.ws_url, base_url=el.base_url)
    for name, value in overrides.items():
        object.__setattr__(settings, name, value)
    return ElevenLabsVoice(settings)


async def _turn(stream: VoiceStream) -> tuple[list[AudioChunk], TurnEnd]:
    chunks: list[AudioChunk] = []
    async with asyncio.timeout(20):
        async for event in stream:
            if isinstance(event, TurnEnd):
                return chunks, event
            chunks.append(event)
    raise AssertionError("stream ended without a TurnEnd")


async def _until(condition: Callable[[], bool]) -> None:
    async with asyncio.timeout(20):
        while not condition():  # noqa: ASYNC110 (polls emulator state, which has no event)
            await asyncio.sleep(0.02)


async def test_turns_share_one_connection_and_carry_real_speech(el: ElevenLabsEmulator) -> None:
    stream = await _voice(el).open()
    try:
        for word in TEXT.split(" "):
            stream.push_text(word + " ")
        assert stream.flush() == 1
        chunks, end = await _turn(stream)
        assert end.turn == 1 and end.text == TEXT + " " and end.providers == ("elevenlabs",)
        assert "".join(c.text for c in chunks) == end.text
        assert all(len(c.audio) % 160 == 0 and 0 < c.duration_ms <= 100 for c in chunks)
        assert 2500 <= end.audio_ms <= 7000 and end.audio_ms == sum(c.duration_ms for c in chunks)
        assert chunks[-1].chars_end == len(end.text)
        assert stream.say("Thank you.") == 2
        chunks, end = await _turn(stream)
        assert end.turn == 2 and "".join(c.text for c in chunks) == "Thank you."
    finally:
        await stream.aclose()
    [session] = el.sessions
    assert session.query == {"model_id": "eleven_flash_v2_5", "output_format": "ulaw_8000", "inactivity_timeout": "60"}
    assert session.messages[0]["text"] == " " and session.messages[0]["generation_config"]
    # Turn 1's first sentence is flushed as soon as it is complete (generation starts without waiting for the
    # schedule's 50 characters); each turn's end is flushed.
    flushed = [m["text"] for m in session.messages[1:] if m.get("flush")]
    assert flushed == ["Plumbing. ", " ", "you. "]
    assert session.generations[0] == "Thanks for calling Acme Plumbing. "
    assert all(m["text"].endswith(" ") for m in session.messages[1:])  # word boundaries, as the protocol asks
    assert stream.characters() == {"elevenlabs": len(TEXT) + 1 + len("Thank you.")}  # as pushed


async def test_keepalive_holds_an_idle_connection_open(el: ElevenLabsEmulator) -> None:
    el.inactivity_s = 0.6
    stream = await _voice(el, keepalive_s=0.2).open()
    try:
        await _until(lambda: bool(el.sessions) and el.sessions[0].keepalives >= 5)  # ≥ 1 s idle, 0.6 s timeout
        stream.say("Still here.")
        chunks, _end = await _turn(stream)
        assert "".join(c.text for c in chunks) == "Still here."
    finally:
        await stream.aclose()
    assert len(el.sessions) == 1 and el.sessions[0].close_reason is None


async def test_an_idle_connection_closed_by_the_server_is_reopened_for_the_next_turn(
        el: ElevenLabsEmulator) -> None:
    el.inactivity_s = 0.3
    stream = await _voice(el, keepalive_s=30).open()
    try:
        await _until(lambda: el.sessions[0].close_reason == "inactivity")
        await asyncio.sleep(1.0)  # idle: no socket opened just to be closed again (a reconnect loop before)
        assert len(el.sessions) == 1
        stream.say("Hello again.")
        chunks, _end = await _turn(stream)
        assert "".join(c.text for c in chunks) == "Hello again." and len(el.sessions) == 2
        stream.say("And again.")  # a second turn on the new socket, and no "keeps closing" error
        chunks, _end = await _turn(stream)
        assert "".join(c.text for c in chunks) == "And again."
    finally:
        await stream.aclose()


async def test_cancel_drops_the_turn_and_reopens(el: ElevenLabsEmulator) -> None:
    stream = await _voice(el).open()
    try:
        stream.say(TEXT + " " + TEXT)
        async with asyncio.timeout(20):
            first = await anext(stream)
        assert isinstance(first, AudioChunk) and first.turn == 1
        stream.cancel()
        assert stream.say("Sorry, go ahead.") == 2
        chunks, end = await _turn(stream)
        assert {c.turn for c in chunks} == {2} and end.turn == 2
        assert "".join(c.text for c in chunks) == "Sorry, go ahead."
    finally:
        await stream.aclose()
    assert len(el.sessions) == 2 and el.sessions[1].generations == ["Sorry, go ahead. "]


async def test_refused_at_the_handshake(el: ElevenLabsEmulator) -> None:
    el.inject(Fault(FaultKind.REFUSE_HTTP))
    with pytest.raises(VoiceAuthError) as info:
        await _voice(el).open()
    assert not info.value.retryable and info.value.provider == "elevenlabs"


async def test_refused_by_message(el: ElevenLabsEmulator) -> None:
    el.inject(Fault(FaultKind.REFUSE_MESSAGE))
    stream = await _voice(el).open()
    try:
        stream.say("Hello.")
        with pytest.raises(VoiceAuthError):
            await _turn(stream)
    finally:
        await stream.aclose()


@pytest.mark.parametrize(("fault", "error"), [
    (Fault(FaultKind.DROP, after_messages=1), VoiceUnavailable),
    (Fault(FaultKind.CLOSE, after_messages=1, code=1011), VoiceUnavailable),
    (Fault(FaultKind.STALL, after_messages=1), VoiceTimeout),
    (Fault(FaultKind.GARBAGE, after_messages=1), VoiceProtocolError),
    (Fault(FaultKind.ERROR_MESSAGE, after_messages=1), VoiceProtocolError),
    (Fault(FaultKind.SLOW_FIRST_BYTE, delay_s=5), VoiceTimeout),
])
async def test_a_fault_mid_turn_ends_the_stream_with_a_retryable_error(
        el: ElevenLabsEmulator, fault: Fault, error: type[Exception]) -> None:
    el.inject(fault)
    stream = await _voice(el, first_audio_timeout_s=0.5, stall_timeout_s=0.4).open()
    chunks: list[AudioChunk] = []
    started = time.monotonic()
    try:
        stream.say(TEXT)
        with pytest.raises(error) as info:
            async with asyncio.timeout(20):
                async for event in stream:
                    assert isinstance(event, AudioChunk)
                    chunks.append(event)
    finally:
        await stream.aclose()
    assert info.value.retryable  # type: ignore[attr-defined]
    assert time.monotonic() - started < 3  # detected within the timeouts, not the server's 5 s
    if fault.after_messages:
        assert chunks and "".join(c.text for c in chunks) == TEXT[:chunks[-1].chars_end]


async def test_audio_without_alignment_still_ends_the_turn_with_all_its_text(el: ElevenLabsEmulator) -> None:
    el.inject(Fault(FaultKind.NO_ALIGNMENT))
    stream = await _voice(el, stall_timeout_s=0.3).open()
    try:
        stream.say("No timings here.")
        chunks, end = await _turn(stream)
    finally:
        await stream.aclose()
    assert end.audio_ms >= 500 and "".join(c.text for c in chunks) == "No timings here."


async def test_render_through_the_sdk(el: ElevenLabsEmulator) -> None:
    chunks = await _voice(el).render("Thanks for calling.")
    assert all(c.turn == 0 and len(c.audio) % 160 == 0 for c in chunks)
    assert "".join(c.text for c in chunks) == "Thanks for calling."
    assert 600 <= sum(c.duration_ms for c in chunks) <= 3000
    [request] = el.http.requests
    assert request.path == "/v1/text-to-speech/voice123/stream"
    assert request.query["output_format"] == "ulaw_8000" and request.body["model_id"] == "eleven_flash_v2_5"


async def test_render_errors(el: ElevenLabsEmulator) -> None:
    with pytest.raises(VoiceAuthError):
        await _voice(el, api_key="wrong").render("Hello.")
    el.http.inject(HttpFault("status", 500))
    with pytest.raises(VoiceUnavailable) as info:
        await _voice(el).render("Hello.")
    assert info.value.retryable
    el.http.inject(HttpFault("reset"))
    with pytest.raises(VoiceUnavailable):
        await _voice(el).render("Hello.")
