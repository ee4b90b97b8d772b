"""The fallback voice: ElevenLabs failing mid-turn hands the rest of the turn to an offline voice, and cached
prompts play at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator

import pytest

from switchboard.tts.base import AudioChunk, TurnEnd, Voice
from switchboard.tts.elevenlabs import ElevenLabsSettings, ElevenLabsVoice
from switchboard.tts.errors import VoiceAuthError, VoiceUnavailable
from switchboard.tts.espeak import EspeakEngine
from switchboard.tts.fallback import FallbackStream, FallbackVoice, PromptCache, cache_key
from switchboard.tts.offline import OfflineVoice
from switchboard.tts.piper import PiperEngine
from tests.emulators.elevenlabs_server import ElevenLabsEmulator, Fault, FaultKind

TEXT = "Thanks for calling Acme Plumbing. What is the address of the property, and the postcode?"


@pytest.fixture
async def el() -> AsyncIterator[ElevenLabsEmulator]:
    async with ElevenLabsEmulator() as emulator:
        yield emulator


@pytest.fixture(scope="module")
def piper() -> Iterator[OfflineVoice]:
    yield OfflineVoice(PiperEngine())


def _eleven(el: ElevenLabsEmulator, key: str = "el-test-key") -> ElevenLabsVoice:
    return ElevenLabsVoice(ElevenLabsSettings(api_key=key, voice_id="v1", ws_url=el.ws_url, base_url=el.base_url,
                                              first_audio_timeout_s=0.8, stall_timeout_s=0.5))


async def _collect(stream: FallbackStream) -> tuple[list[tuple[float, AudioChunk]], TurnEnd]:
    """The turn's chunks with the time each arrived."""
    chunks: list[tuple[float, AudioChunk]] = []
    async with asyncio.timeout(30):
        async for event in stream:
            if isinstance(event, TurnEnd):
                return chunks, event
            chunks.append((time.monotonic(), event))
    raise AssertionError("no TurnEnd")


def _check_contiguous(chunks: list[AudioChunk], end: TurnEnd) -> None:
    assert "".join(c.text for c in chunks) == end.text
    assert [c.offset_ms for c in chunks] == [sum(c.duration_ms for c in chunks[:i]) for i in range(len(chunks))]
    ends = [c.chars_end for c in chunks]
    assert ends == sorted(ends) and ends[-1] == len(end.text)
    assert end.audio_ms == sum(c.duration_ms for c in chunks)


async def test_a_healthy_primary_speaks_every_turn(el: ElevenLabsEmulator) -> None:
    stream = await FallbackVoice([_eleven(el), OfflineVoice(EspeakEngine())]).open()
    try:
        stream.say(TEXT)
        chunks, end = await _collect(stream)
        assert end.providers == ("elevenlabs",) and stream.switches == []
        _check_contiguous([c for _, c in chunks], end)
    finally:
        await stream.aclose()


@pytest.mark.parametrize("fault", [Fault(FaultKind.DROP, after_messages=2), Fault(FaultKind.STALL, after_messages=2),
                                   Fault(FaultKind.GARBAGE, after_messages=2),
                                   Fault(FaultKind.CLOSE, after_messages=2, code=1011)])
async def test_a_failure_mid_turn_continues_the_turn_in_the_next_voice(el: ElevenLabsEmulator, fault: Fault) -> None:
    el.inject(fault)
    stream = await FallbackVoice([_eleven(el), OfflineVoice(EspeakEngine())]).open()
    try:
        stream.say(TEXT)
        timed, end = await _collect(stream)
        stream.say("Thank you.")
        later, second = await _collect(stream)
    finally:
        await stream.aclose()
    chunks = [c for _, c in timed]
    assert end.providers == ("elevenlabs", "espeak") and [p for p, _ in stream.switches] == ["elevenlabs"]
    _check_contiguous(chunks, end)
    switch = next(i for i, c in enumerate(chunks) if c.provider == "espeak")
    assert 0 < switch and chunks[switch - 1].provider == "elevenlabs"
    # The rest of the text, not the whole turn again: the backup starts where the primary stopped.
    assert end.text.startswith("".join(c.text for c in chunks[:switch]))
    gap = timed[switch][0] - timed[switch - 1][0]
    assert gap < 1.5  # detection (stall 0.5 s) + espeak; Twilio still plays the primary's queued audio meanwhile
    assert second.providers == ("espeak",) and "".join(c.text for _, c in later) == "Thank you."
    used = stream.characters()
    assert used["espeak"] == len(end.text) - chunks[switch].chars_end + len(chunks[switch].text) + len("Thank you.")
    assert used["elevenlabs"] == len(TEXT)


async def test_the_primary_refusing_at_open_leaves_the_next_voice(el: ElevenLabsEmulator,
                                                                  piper: OfflineVoice) -> None:
    stream = await FallbackVoice([_eleven(el, key="wrong"), piper, OfflineVoice(EspeakEngine())]).open()
    try:
        assert stream.provider == "piper"
        stream.say("Hello.")
        _, end = await _collect(stream)
        assert end.providers == ("piper",)
    finally:
        await stream.aclose()


async def test_no_voice_left_ends_the_stream_with_the_error(el: ElevenLabsEmulator) -> None:
    el.inject(Fault(FaultKind.DROP, after_messages=1))
    stream = await FallbackVoice([_eleven(el)]).open()
    try:
        stream.say(TEXT)
        with pytest.raises(VoiceUnavailable):
            await _collect(stream)
    finally:
        await stream.aclose()
    with pytest.raises(VoiceAuthError):  # the last voice's own error
        await FallbackVoice([_eleven(el, key="wrong")]).open()


async def test_cancel_then_a_new_turn(el: ElevenLabsEmulator) -> None:
    stream = await FallbackVoice([_eleven(el), OfflineVoice(EspeakEngine())]).open()
    try:
        stream.say(TEXT)
        async with asyncio.timeout(20):
            await anext(stream)
        stream.cancel()
        turn = stream.say("Go on.")
        chunks, end = await _collect(stream)
        assert end.turn == turn == 2 and {c.turn for _, c in chunks} == {2}
    finally:
        await stream.aclose()


async def test_a_cached_greeting_plays_without_synthesis(el: ElevenLabsEmulator) -> None:
    cache = PromptCache()
    primary = _eleven(el)
    voice = FallbackVoice([primary, OfflineVoice(EspeakEngine())], cache)
    greeting = "Thanks for calling Acme Plumbing, how can I help?"
    assert await voice.warm(greeting) == cache_key(primary) == "elevenlabs:v1:eleven_flash_v2_5"
    assert await voice.warm(greeting) == cache_key(primary) and len(el.http.requests) == 1  # rendered once
    stream = await voice.open()
    try:
        started = time.monotonic()
        assert stream.say(greeting) == 1
        chunks, end = await _collect(stream)
        assert end.text == greeting and end.providers == ("elevenlabs",)
        assert "".join(c.text for _, c in chunks) == greeting and {c.turn for _, c in chunks} == {1}
        assert all(at - started < 0.5 for at, _ in chunks)  # all there at once, long before it would play
        assert el.sessions[0].generations == []  # the websocket synthesised nothing
        stream.say("And your name?")
        _, second = await _collect(stream)
        assert second.turn == 2 and el.sessions[0].generations == ["And your name? "]
    finally:
        await stream.aclose()


async def test_render_falls_back(el: ElevenLabsEmulator) -> None:
    voices: list[Voice] = [_eleven(el, key="wrong"), OfflineVoice(EspeakEngine())]
    chunks = await FallbackVoice(voices).render("Hello.")
    assert chunks and {c.provider for c in chunks} == {"espeak"}
