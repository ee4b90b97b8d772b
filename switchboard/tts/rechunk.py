"""Sans-I/O: a provider's audio pieces (any size) and character timings in, 20 ms-multiple chunks out.

Providers cut audio where they like (ElevenLabs sends a few hundred ms at a time, split anywhere; an offline
voice a sentence at once). Twilio wants whole 20 ms frames (160 μ-law bytes) and the call wants a mark per
modest piece, so :class:`Rechunker` re-cuts a turn's audio into chunks of 1..``max_frames`` frames, emitted as
soon as a frame is complete (never held back for the next piece), and carries a tail shorter than a frame to
the next piece. ``finish`` pads the tail with μ-law silence.

Character timings arrive relative to the piece they came with (ElevenLabs' ``alignment.charStartTimesMs``,
https://elevenlabs.io/docs/api-reference/text-to-speech/v-1-text-to-speech-voice-id-stream-input). They are
placed on the turn's sample timeline, kept in order (a timing that goes backwards is moved forward), and
handed out with the chunk in which they start. A character placed beyond the audio (ElevenLabs' timings do not
always sum to the audio's length) waits for later audio; at ``finish`` it rides a final frame of silence.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from audio import FRAME_SAMPLES, MULAW_SILENCE, SAMPLES_PER_MS
from switchboard.tts.base import AudioChunk

DEFAULT_MAX_FRAMES = 5
"""100 ms chunks: a mark per chunk tells the call within 100 ms what was played when a barge-in comes."""


class Rechunker:
    """One turn's audio re-cut; positions are samples (= μ-law bytes) since the turn's first sample."""

    def __init__(self, turn: int, provider: str, max_frames: int = DEFAULT_MAX_FRAMES) -> None:
        if max_frames < 1:
            raise ValueError(f"max_frames must be at least 1, got {max_frames}")
        self.turn, self.provider = turn, provider
        self._max_bytes = max_frames * FRAME_SAMPLES
        self._tail = bytearray()
        self._received = 0
        self._emitted = 0
        self._chars: deque[tuple[int, str]] = deque()
        self._last_pos = 0
        self._chars_out = 0
        self._finished = False

    @property
    def emitted_ms(self) -> int:
        return self._emitted // SAMPLES_PER_MS

    @property
    def received_bytes(self) -> int:
        return self._received

    def push(self, audio: bytes, chars: Iterable[tuple[str, int]] = ()) -> list[AudioChunk]:
        """Add one piece: μ-law bytes and its text as ``(characters, start ms within this piece)`` (several
        characters in one entry share the start)."""
        if self._finished:
            raise RuntimeError(f"turn {self.turn}: push after finish")
        self._place(chars, base=self._received)
        self._tail += audio
        self._received += len(audio)
        return self._cut(final=False)

    def finish(self) -> list[AudioChunk]:
        """The turn's audio is complete: pad the tail to a whole frame; strays ride a frame of silence."""
        if self._finished:
            return []
        self._finished = True
        if self._tail:
            self._tail += bytes([MULAW_SILENCE]) * (-len(self._tail) % FRAME_SAMPLES)
        elif self._chars:
            self._tail += bytes([MULAW_SILENCE]) * FRAME_SAMPLES
        return self._cut(final=True)

    def _place(self, chars: Iterable[tuple[str, int]], base: int) -> None:
        for piece, ms in chars:
            pos = max(base + int(ms) * SAMPLES_PER_MS, self._last_pos, self._emitted)
            self._last_pos = pos
            self._chars.extend((pos, char) for char in piece)

    def _cut(self, final: bool) -> list[AudioChunk]:
        out: list[AudioChunk] = []
        while len(self._tail) >= FRAME_SAMPLES:
            size = min(self._max_bytes, len(self._tail) - len(self._tail) % FRAME_SAMPLES)
            start, end = self._emitted, self._emitted + size
            last = final and size == len(self._tail)
            text: list[str] = []
            offsets: list[int] = []
            while self._chars and (last or self._chars[0][0] < end):
                pos, char = self._chars.popleft()
                text.append(char)
                offsets.append(min(pos, end - 1) // SAMPLES_PER_MS - start // SAMPLES_PER_MS)
            self._chars_out += len(text)
            out.append(AudioChunk(self.turn, bytes(self._tail[:size]), start // SAMPLES_PER_MS, "".join(text),
                                  tuple(offsets), self.provider, self._chars_out))
            del self._tail[:size]
            self._emitted = end
        return out


def spread_chars(text: str, duration_ms: int) -> list[tuple[str, int]]:
    """Timings for a voice that gives none: the characters spread evenly over the audio that voices them."""
    if not text:
        return []
    step = duration_ms / len(text)
    return [(char, int(i * step)) for i, char in enumerate(text)]


__all__ = ["DEFAULT_MAX_FRAMES", "Rechunker", "spread_chars"]
