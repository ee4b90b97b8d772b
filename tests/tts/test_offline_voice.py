"""The offline voices (espeak-ng, Piper) behind the VoiceStream seam: real speech, streamed, cancellable."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import numpy as np
import pytest

from switchboard.tts.base import AudioChunk, SpokenText, TurnEnd, VoiceEvent, VoiceStream
from switchboard.tts.errors import VoiceClosedError
from switchboard.tts.espeak import EspeakEngine
from switchboard.tts.offline import Engine, OfflineVoice
from switchboard.tts.piper import PiperEngine

TEXT = "Thanks for calling Acme Plumbing. What is the address of the property?"


@pytest.fixture(scope="module", params=["espeak", "piper"])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    yield EspeakEngine() if request.param == "espeak" else PiperEngine()


async def _turn(stream: VoiceStream) -> tuple[list[AudioChunk], TurnEnd]:
    chunks: list[AudioChunk] = []
    async with asyncio.timeout(30):
        async for event in stream:
            if isinstance(event, TurnEnd):
                return chunks, event
            chunks.append(event)
    raise AssertionError("stream ended without a TurnEnd")


async def test_a_streamed_turn_is_real_speech_with_its_text(engine: Engine) -> None:
    stream = await OfflineVoice(engine).open()
    try:
        for word in TEXT.split(" "):
            stream.push_text(word + " ")
        turn = stream.flush()
        chunks, end = await _turn(stream)
    finally:
        await stream.aclose()
    assert turn == 1 and end.turn == 1 and end.providers == (engine.name,)
    assert end.text == TEXT + " "
    assert "".join(c.text for c in chunks) == end.text
    assert all(len(c.audio) % 160 == 0 and c.turn == 1 for c in chunks)
    assert end.audio_ms == sum(c.duration_ms for c in chunks)
    assert 2500 <= end.audio_ms <= 7000  # 13 words at a speaking rate of 2-5 words a second
    loud = sum(c.duration_ms for c in chunks if c.level_db > -35)
    assert loud >= end.audio_ms / 3  # speech, not a tone burst or silence
    spoken = SpokenText()
    for c in chunks:
        spoken.add(c)
    assert spoken.text_until(end.audio_ms // 2).startswith("Thanks for")
    assert stream.characters() == {engine.name: len(TEXT) + 1}


async def test_the_first_sentence_speaks_before_the_turn_is_flushed(engine: Engine) -> None:
    stream = await OfflineVoice(engine).open()
    try:
        stream.push_text("Hello there. And")
        async with asyncio.timeout(30):
            first = await anext(stream)
        assert isinstance(first, AudioChunk) and first.text.startswith("H")
        stream.push_text(" goodbye.")
        stream.flush()
        chunks, end = await _turn(stream)
        assert end.text == "Hello there. And goodbye."
        assert first.text + "".join(c.text for c in chunks) == end.text
    finally:
        await stream.aclose()


async def test_cancel_drops_pending_audio_and_the_next_turn_follows(engine: Engine) -> None:
    stream = await OfflineVoice(engine).open()
    try:
        stream.say("One. Two. Three. Four. Five. Six. Seven.")
        async with asyncio.timeout(30):
            first: VoiceEvent = await anext(stream)
        assert isinstance(first, AudioChunk) and first.turn == 1
        stream.cancel()
        turn = stream.say("Sorry, go on.")
        assert turn == 2
        chunks, end = await _turn(stream)
        assert {c.turn for c in chunks} == {2} and end.turn == 2
        assert "".join(c.text for c in chunks) == "Sorry, go on."
    finally:
        await stream.aclose()


async def test_cancel_mid_composition_starts_a_new_turn(engine: Engine) -> None:
    stream = await OfflineVoice(engine).open()
    try:
        stream.push_text("I was about to say")
        stream.cancel()
        assert stream.turn == 2
        stream.push_text("Yes?")
        assert stream.flush() == 2
        chunks, end = await _turn(stream)
        assert end.text == "Yes?" and "".join(c.text for c in chunks) == "Yes?"
    finally:
        await stream.aclose()


async def test_an_empty_turn_ends_at_once(engine: Engine) -> None:
    stream = await OfflineVoice(engine).open()
    try:
        stream.flush()
        chunks, end = await _turn(stream)
        assert chunks == [] and end.audio_ms == 0 and end.text == ""
    finally:
        await stream.aclose()


async def test_render_speaks_a_whole_prompt(engine: Engine) -> None:
    chunks = await OfflineVoice(engine).render("Goodbye.")
    assert chunks and all(c.turn == 0 for c in chunks)
    assert "".join(c.text for c in chunks) == "Goodbye."
    assert 300 <= sum(c.duration_ms for c in chunks) <= 2500


async def test_push_after_close_is_an_error() -> None:
    stream = await OfflineVoice(EspeakEngine()).open()
    await stream.aclose()
    await stream.aclose()
    with pytest.raises(VoiceClosedError):
        stream.push_text("late")
    with pytest.raises(StopAsyncIteration):
        await anext(stream)


async def test_the_local_recogniser_hears_the_words(engine: Engine) -> None:
    """What the caller gets (μ-law at 8 kHz, after our resampling and codec) is intelligible speech."""
    from audio import STT_RATE, TWILIO_RATE, mulaw
    from audio.resample import StreamResampler
    from switchboard.transcribe.wer import word_errors
    from tests.emulators.recognizer import EmulatorRecognizer

    chunks = await OfflineVoice(engine).render(TEXT)
    resampler = StreamResampler(TWILIO_RATE, STT_RATE)
    pcm = mulaw.decode(b"".join(c.audio for c in chunks))
    pcm16k = np.concatenate([resampler.push(pcm), resampler.flush()])
    recogniser = EmulatorRecognizer()
    try:
        heard = await recogniser.recognize(pcm16k)
    finally:
        await recogniser.aclose()
    # espeak-ng's en-us at 150 wpm was chosen on this: at 8 kHz its "en" voice lost about a third of the words
    assert word_errors(TEXT, heard).wer <= 0.2, heard
