"""The voice seam: a :class:`Voice` per provider, a :class:`VoiceStream` per call, kept across turns.

The call opens one stream while the phone is still ringing (``Voice.open`` connects; the cloud socket is warm by
the time the agent speaks), then, turn after turn, pushes the model's text as it arrives (``push_text`` never
waits, like ``TranscriptStream.push``) and ends the turn with ``flush``. Audio comes out of ``async for event in
stream`` as :class:`AudioChunk` (μ-law, 8 kHz, a whole number of 20 ms frames, ready for a Twilio ``media``
message) followed by one :class:`TurnEnd` per turn. When the caller barges in, ``cancel()`` drops every chunk
not yet yielded and any text not yet spoken; the call sends Twilio ``clear`` itself.

Each chunk names the characters whose sound starts inside it (``text``, ``char_ms``), so after a barge-in the
call keeps in the conversation only what the caller heard: :class:`SpokenText` turns "this much of the turn's
audio was played" (from Twilio mark echoes) into that text. Errors follow :mod:`switchboard.tts.errors`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from audio import FRAME_SAMPLES, SAMPLES_PER_MS, mulaw


@dataclass(frozen=True, slots=True)
class AudioChunk:
    """A piece of one turn's audio and the characters it voices."""

    turn: int
    audio: bytes
    """μ-law at 8 kHz; ``len(audio)`` is a positive multiple of 160 (20 ms)."""
    offset_ms: int
    """Where this chunk starts within its turn's audio."""
    text: str = ""
    """Characters whose sound starts in this chunk, in order; a turn's chunks concatenate to what was voiced."""
    char_ms: tuple[int, ...] = ()
    """Start of each character of ``text``, in ms from the start of this chunk (non-decreasing)."""
    provider: str = ""
    chars_end: int = 0
    """How far into the turn's text (as pushed) the audio reaches at the end of this chunk: ``len`` of the
    concatenated ``text`` of the turn's chunks so far (the turn-taking core's ``AudioQueued.chars``)."""

    @property
    def level_db(self) -> float:
        """RMS level in dBFS (−96 for digital silence): the core expects its own echo at about this level."""
        pcm = mulaw.decode(self.audio).astype(np.float64)
        rms = math.sqrt(float(np.mean(pcm * pcm))) if len(pcm) else 0.0
        return 20 * math.log10(max(rms, 0.5) / 32768)

    @property
    def duration_ms(self) -> int:
        return len(self.audio) // SAMPLES_PER_MS

    @property
    def frames(self) -> int:
        return len(self.audio) // FRAME_SAMPLES


@dataclass(frozen=True, slots=True)
class TurnEnd:
    """Every chunk of ``turn`` has been yielded."""

    turn: int
    text: str
    """The text pushed for the turn, as pushed."""
    audio_ms: int
    providers: tuple[str, ...]
    """The voices that spoke it, in order (more than one when a provider failed mid-turn)."""


VoiceEvent = AudioChunk | TurnEnd


class SpokenText:
    """What the caller heard of one turn: add the turn's chunks, ask for the text voiced before ``played_ms``.

    Sans-I/O. A character counts as heard once its start has been played; a word cut in the middle therefore
    comes back cut, which is what the caller heard.
    """

    def __init__(self) -> None:
        self._chars: list[tuple[int, str]] = []

    def add(self, chunk: AudioChunk) -> None:
        self._chars.extend((chunk.offset_ms + ms, ch) for ch, ms in zip(chunk.text, chunk.char_ms, strict=True))

    def text_until(self, played_ms: int) -> str:
        return "".join(ch for ms, ch in self._chars if ms < played_ms)

    @property
    def text(self) -> str:
        return "".join(ch for _, ch in self._chars)


@runtime_checkable
class VoiceStream(Protocol):
    """One call's voice: text in, audio out, across many turns.

    ``push_text(text)``: more of the current turn's text (model tokens as they come; any split is fine).
    ``flush() -> turn``: the current turn's text is complete; its audio follows, then its :class:`TurnEnd`;
    text pushed afterwards belongs to the next turn. ``say(text) -> turn``: a whole turn at once (a fixed prompt,
    possibly served from a cache). ``cancel()``: barge-in: drop every turn's unyielded audio and unspoken text.
    ``characters()``: characters sent to each provider so far (usage). ``aclose()``: release the connection;
    idempotent; the iterator then ends.
    """

    @property
    def provider(self) -> str: ...

    @property
    def turn(self) -> int: ...

    def push_text(self, text: str) -> None: ...

    def flush(self) -> int: ...

    def say(self, text: str) -> int: ...

    def cancel(self) -> None: ...

    def characters(self) -> Mapping[str, int]: ...

    def __aiter__(self) -> VoiceStream: ...

    async def __anext__(self) -> VoiceEvent: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class Voice(Protocol):
    """A speech provider. ``open`` connects or loads (raises ``VoiceError`` if it cannot); ``render`` speaks one
    fixed prompt whole (the greeting cache), returning its chunks with ``turn=0``."""

    name: str

    async def open(self) -> VoiceStream: ...

    async def render(self, text: str) -> tuple[AudioChunk, ...]: ...


__all__ = ["AudioChunk", "SpokenText", "TurnEnd", "Voice", "VoiceEvent", "VoiceStream"]
