"""Beam search and context biasing on the real Moonshine model, on a fixed utterance from the fixtures.

The clip is the Leeds caller's callback number and address (espeak-ng voice, ``fixtures/tts_leak_emergency_leeds``),
cut at the utterance times in the sidecar: greedy search loses "double oh" ("Dud below nine"); the beam and the
bias find what was said. Three decodes of ~5 s each per clip (a few seconds of CPU).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from audio import mulaw
from audio.resample import StreamResampler
from audio.wav import read_tracks
from switchboard.extract.phone import read_phones
from switchboard.transcribe.bias import DEFAULT_WORDS, ContextBias
from switchboard.transcribe.moonshine import MoonshineEngine, moonshine_factory
from switchboard.transcribe.moonshine_ort import MoonshineOrt

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
CALL = "tts_leak_emergency_leeds"
NUMBER = "+447700900123"


def caller_utterance(index: int, pad_ms: int = 200, call: str = CALL) -> np.ndarray:
    """One caller utterance of the call, decoded and resampled to 16 kHz float32 as the media path does."""
    utterance = json.loads((FIXTURES / f"{call}.json").read_text())["tracks"]["inbound"]["utterances"][index]
    resampler = StreamResampler(8_000, 16_000)
    pcm = mulaw.decode(read_tracks(FIXTURES / f"{call}.wav")[0])
    audio = np.concatenate([resampler.push(pcm), resampler.flush()])
    start, end = (utterance["start_ms"] - pad_ms) * 16, (utterance["end_ms"] + pad_ms) * 16
    return audio[start:end].astype(np.float32) / np.float32(32768.0)


@pytest.fixture(scope="module")
def model() -> Iterator[MoonshineOrt]:
    yield MoonshineOrt()


@pytest.fixture(scope="module")
def number_clip() -> np.ndarray:
    return caller_utterance(3)  # "… oh seven seven double oh, nine double oh, one two three."


def test_width_one_without_bias_is_upstreams_greedy_search(model: MoonshineOrt, number_clip: np.ndarray) -> None:
    clip = number_clip[: 16_000 * 2]
    assert list(model.search(clip, 1)[0].tokens) == model.generate(clip)


def test_greedy_loses_the_number_and_the_biased_beam_hears_it(model: MoonshineOrt,
                                                              number_clip: np.ndarray) -> None:
    greedy = model.transcribe(number_clip)
    assert read_phones(greedy) == []  # "O seven seven, Dud below nine, Dud below one, two, three."
    texts = model.transcribe_nbest(number_clip, 4, ContextBias(DEFAULT_WORDS, 0.5))
    assert 2 <= len(texts) <= 4 and len(set(texts)) == len(texts)
    assert "double oh" in texts[0].lower()
    assert [r.value for r in read_phones(texts[0])] == [NUMBER]


def test_the_business_vocabulary_brings_its_street_names(model: MoonshineOrt) -> None:
    clip = caller_utterance(2)  # "Flat three, twenty seven Ashgrove Terrace, Leeds, postcode L S six, two A B."
    assert "ashgrove" not in model.transcribe_nbest(clip, 4, ContextBias(DEFAULT_WORDS, 0.5))[0].lower()
    vocabulary = ContextBias((*DEFAULT_WORDS, "Ashgrove Terrace", "Headingley"), 0.5)
    assert "ashgrove terrace" in model.transcribe_nbest(clip, 4, vocabulary)[0].lower()


def test_a_runaway_beam_falls_back_to_greedy_search(model: MoonshineOrt) -> None:
    # "Helen Price. The flat is twelve Arran Street, …" over packet loss: every beam hypothesis loops on "00:00, "
    # until it runs out of tokens, where greedy search ends.
    clip = caller_utterance(2, call="tts_damp_routine_cardiff_lossy")
    runaway = model.search(clip, 4, ContextBias(DEFAULT_WORDS, 0.5))
    assert all(h.tokens[-1] != 2 for h in runaway)
    assert model.transcribe_nbest(clip, 4, ContextBias(DEFAULT_WORDS, 0.5)) == [model.transcribe(clip)]


def test_the_engine_gives_the_beams_other_readings(number_clip: np.ndarray) -> None:
    engine = moonshine_factory(beam_width=4)()
    try:
        heard = engine.recognise(number_clip)
        assert heard.text and heard.text not in heard.alternatives
        assert 1 <= len(heard.alternatives) <= 3 and all(heard.alternatives)
        assert MoonshineEngine(beam_width=1).recognise(number_clip[:16_000]).alternatives == ()
    finally:
        engine.close()
    with pytest.raises(ValueError, match="beam_width"):
        moonshine_factory(beam_width=0)
