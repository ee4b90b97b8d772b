"""ElevenLabs stream-input messages and the alignment → pushed-text mapping (sans-I/O)."""

from __future__ import annotations

import orjson
import pybase64
import pytest

from switchboard.tts import elevenlabs_wire as wire
from switchboard.tts.errors import VoiceAuthError, VoiceProtocolError


def test_audio_with_alignment_and_without() -> None:
    audio = pybase64.b64encode(b"\x01\x02\x03").decode()
    frame = orjson.dumps({"audio": audio, "alignment": {"chars": ["H", "i"], "charStartTimesMs": [0, 40],
                                                        "charDurationsMs": [40, 30]}})
    assert wire.parse(frame.decode()) == wire.Audio(b"\x01\x02\x03", (("H", 0), ("i", 40)))
    bare = orjson.dumps({"audio": audio, "alignment": None, "normalizedAlignment": None}).decode()
    assert wire.parse(bare) == wire.Audio(b"\x01\x02\x03", ())
    normalized = orjson.dumps({"audio": audio, "normalizedAlignment": {"chars": ["a"], "charStartTimesMs": [5]}})
    assert wire.parse(normalized.decode()) == wire.Audio(b"\x01\x02\x03", (("a", 5),))


def test_final_and_empty_messages() -> None:
    assert wire.parse('{"isFinal": true}') == wire.Final()
    assert wire.parse('{"audio": null, "isFinal": null}') is None


@pytest.mark.parametrize("frame", ["<html>", "[1]", b"\x00\x01", '{"audio": "***"}', '{"error": "boom"}'])
def test_garbage_is_a_protocol_error(frame: str | bytes) -> None:
    with pytest.raises(VoiceProtocolError):
        wire.parse(frame)


def test_an_auth_error_message_is_an_auth_error() -> None:
    with pytest.raises(VoiceAuthError):
        wire.parse('{"message": "Invalid API key", "error": "invalid_api_key"}')


def test_aligner_maps_reported_characters_onto_our_text() -> None:
    aligner = wire.TextAligner()
    aligner.extend("Hi,  there! ")
    pieces = [aligner.consume(c) for c in ["H", "i", ",", " ", "t", "h", "e", "r", "e"]]
    assert pieces == ["H", "i", ",", " ", " t", "h", "e", "r", "e"]  # our double space goes with the next word
    assert not aligner.done
    assert aligner.consume(" ") == ""  # a blank of theirs where we have none consumes nothing
    assert aligner.consume("!") == "!" and aligner.done
    assert aligner.rest() == " "


def test_word_buffer_sends_whole_words() -> None:
    words = wire.WordBuffer()
    assert words.push("Hel") == ""
    assert words.push("lo th") == "Hello "
    assert words.flush() == "th "
    assert words.flush() == " "  # a flush always carries text: "" would end the input


def test_first_sentence_end() -> None:
    assert wire.first_sentence_end("Thanks, John. Could ") == len("Thanks, John. ")
    assert wire.first_sentence_end('He said "stop." Then ') == len('He said "stop." ')
    assert wire.first_sentence_end("It costs 12.50 pounds ") == 0  # no space after the point: not an end
    assert wire.first_sentence_end("Thanks, John.") == 0  # the end is only known once the next word starts


def test_url_and_messages() -> None:
    url = wire.stream_url("ws://127.0.0.1:9/", "v1", "eleven_flash_v2_5", 60)
    assert url == ("ws://127.0.0.1:9/v1/text-to-speech/v1/stream-input?model_id=eleven_flash_v2_5"
                   "&output_format=ulaw_8000&inactivity_timeout=60")
    assert orjson.loads(wire.init_message([50, 120])) == {"text": " ",
                                                          "generation_config": {"chunk_length_schedule": [50, 120]}}
    assert orjson.loads(wire.text_message("Hi ", flush=True)) == {"text": "Hi ", "flush": True}
    assert orjson.loads(wire.KEEPALIVE) == {"text": " "} and orjson.loads(wire.END_OF_INPUT) == {"text": ""}
