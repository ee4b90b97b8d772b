"""Sans-I/O: ElevenLabs ``stream-input`` messages, built and parsed, and alignment mapped onto the pushed text.

Protocol (https://elevenlabs.io/docs/api-reference/text-to-speech/v-1-text-to-speech-voice-id-stream-input):
the first message is ``{"text": " "}`` with the voice and generation settings; then text chunks (each ending at a
word boundary), ``"flush": true`` at the end of a turn (generate what is buffered, keep the socket), ``{"text":
" "}`` alone as a keep-alive (https://help.elevenlabs.io/hc/en-us/articles/28084868106513), and ``{"text": ""}``
to end the input. The server sends ``{"audio": <base64>, "alignment": {...}, "normalizedAlignment": {...}}`` (either
alignment may be null) and, after the end of input, ``{"isFinal": true}``. Error shapes are not documented: any
JSON object with ``error`` or ``message`` and no audio is taken as an error.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import orjson
import pybase64

from switchboard.tts.errors import VoiceAuthError, VoiceProtocolError

PROVIDER = "elevenlabs"
_AUTH_WORDS = ("api key", "api_key", "unauthori", "authenticat", "quota", "permission")


@dataclass(frozen=True, slots=True)
class Audio:
    audio: bytes
    chars: tuple[tuple[str, int], ...]
    """``(character, start ms within this message's audio)``; empty when the server sent no alignment."""


@dataclass(frozen=True, slots=True)
class Final:
    """``isFinal``: the server has generated everything and will close."""


def stream_url(ws_base: str, voice_id: str, model_id: str, inactivity_timeout_s: int) -> str:
    query = urlencode({"model_id": model_id, "output_format": "ulaw_8000", "inactivity_timeout": inactivity_timeout_s})
    return f"{ws_base.rstrip('/')}/v1/text-to-speech/{voice_id}/stream-input?{query}"


def init_message(chunk_length_schedule: Sequence[int], voice_settings: dict[str, float] | None = None) -> str:
    body: dict[str, Any] = {"text": " ", "generation_config": {"chunk_length_schedule": list(chunk_length_schedule)}}
    if voice_settings:
        body["voice_settings"] = voice_settings
    return orjson.dumps(body).decode()


def text_message(text: str, flush: bool = False) -> str:
    return orjson.dumps({"text": text, "flush": True} if flush else {"text": text}).decode()


KEEPALIVE = text_message(" ")
END_OF_INPUT = text_message("")


def parse(frame: str | bytes) -> Audio | Final | None:
    """One server frame; None for a frame that carries nothing for us (no audio, no final, no error)."""
    if isinstance(frame, bytes):
        raise VoiceProtocolError(f"unexpected binary frame ({len(frame)} bytes)", provider=PROVIDER)
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise VoiceProtocolError(f"not JSON: {frame[:80]!r}", provider=PROVIDER) from exc
    if not isinstance(message, dict):
        raise VoiceProtocolError(f"not a JSON object: {frame[:80]!r}", provider=PROVIDER)
    audio = message.get("audio")
    if isinstance(audio, str) and audio:
        try:
            data = pybase64.b64decode(audio, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise VoiceProtocolError("audio is not base64", provider=PROVIDER) from exc
        return Audio(data, _alignment(message.get("alignment") or message.get("normalizedAlignment")))
    if message.get("isFinal"):
        return Final()
    error = message.get("error") or message.get("message")
    if error:
        raise error_from(str(error))
    return None


def error_from(text: str) -> VoiceAuthError | VoiceProtocolError:
    """An error the server sent (message or close reason): an auth error when it says so."""
    if any(word in text.lower() for word in _AUTH_WORDS):
        return VoiceAuthError(f"refused: {text[:200]}", provider=PROVIDER)
    return VoiceProtocolError(f"server error: {text[:200]}", provider=PROVIDER)


def _alignment(alignment: object) -> tuple[tuple[str, int], ...]:
    if not isinstance(alignment, dict):
        return ()
    chars, starts = alignment.get("chars"), alignment.get("charStartTimesMs")
    if not isinstance(chars, list) or not isinstance(starts, list) or len(chars) != len(starts):
        return ()  # tolerated: the audio is still good, its characters will be placed by the turn's end
    return tuple((str(c), int(s)) for c, s in zip(chars, starts, strict=True) if isinstance(s, int | float))


class TextAligner:
    """Maps the characters ElevenLabs reports onto the turn's text as we pushed it.

    Its alignment may differ from our text in whitespace (we add a trailing space; it may drop one) and, with
    normalisation, in spelling. Each non-blank reported character consumes our next non-blank character (with
    any blanks before it); a blank consumes one blank of ours if that is next. So the pieces handed out are
    slices of our text, in order, and ``done`` says every non-blank character of it has been voiced.
    """

    def __init__(self) -> None:
        self.text = ""
        self.cursor = 0

    def extend(self, text: str) -> None:
        self.text += text

    @property
    def done(self) -> bool:
        return not self.text[self.cursor:].strip()

    def consume(self, reported: str) -> str:
        start = self.cursor
        if reported.isspace():
            if self.cursor < len(self.text) and self.text[self.cursor].isspace():
                self.cursor += 1
        else:
            while self.cursor < len(self.text) and self.text[self.cursor].isspace():
                self.cursor += 1
            self.cursor = min(len(self.text), self.cursor + len(reported))
        return self.text[start:self.cursor]

    def rest(self) -> str:
        start, self.cursor = self.cursor, len(self.text)
        return self.text[start:]


_SENTENCE_END = re.compile(r"[.!?…][\"')\]]*\s+")


def first_sentence_end(text: str) -> int:
    """How far into ``text`` its first sentence ends (after the trailing space), or 0 when none ends in it."""
    match = _SENTENCE_END.search(text)
    return match.end() if match else 0


class WordBuffer:
    """Holds pushed text back to a word boundary, as the protocol asks (each chunk ends with a space)."""

    def __init__(self) -> None:
        self._pending = ""

    def push(self, text: str) -> str:
        self._pending += text
        cut = max(self._pending.rfind(" "), self._pending.rfind("\n")) + 1
        ready, self._pending = self._pending[:cut], self._pending[cut:]
        return ready

    def flush(self) -> str:
        rest, self._pending = self._pending, ""
        return rest if rest.endswith(" ") else rest + " "

    def clear(self) -> None:
        self._pending = ""


__all__ = ["END_OF_INPUT", "KEEPALIVE", "PROVIDER", "Audio", "Final", "TextAligner", "WordBuffer", "error_from",
           "first_sentence_end", "init_message", "parse", "stream_url", "text_message"]
