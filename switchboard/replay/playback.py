"""Twilio's end of a bidirectional stream, sans-I/O, on the media clock: what the caller hears and when.

Audio the server sends is played back to back in real time from when it arrives; a ``mark`` is echoed once the
audio queued before it has played; ``clear`` drops what has not played and echoes every pending mark at once
(https://www.twilio.com/docs/voice/media-streams/websocket-messages#send-a-clear-message). The replay caller feeds
it the server's frames and the time, and takes back the mark echoes to send and the audio the caller heard.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

SAMPLES_PER_MS: Final = 8


@dataclass
class Heard:
    """What one tick released: marks to echo now, and the audio played (``(media ms, μ-law)`` pieces)."""

    marks: list[str] = field(default_factory=list)
    audio: list[tuple[int, bytes]] = field(default_factory=list)


class TwilioPlayback:
    def __init__(self) -> None:
        self._audio: deque[tuple[int, bytes]] = deque()
        self._marks: deque[tuple[int, str]] = deque()
        self.busy_until = 0
        self.received_ms = 0
        self.cleared = 0

    def media(self, audio: bytes, now_ms: int) -> None:
        start = max(now_ms, self.busy_until)
        if audio:
            self._audio.append((start, audio))
            self.busy_until = start + len(audio) // SAMPLES_PER_MS
            self.received_ms += len(audio) // SAMPLES_PER_MS

    def mark(self, name: str, now_ms: int) -> None:
        self._marks.append((max(now_ms, self.busy_until), name))

    def clear(self, now_ms: int) -> Heard:
        """Drop the unplayed audio; every pending mark is echoed at once."""
        heard = self.advance(now_ms)
        heard.marks += [name for _, name in self._marks]
        self._marks.clear()
        self._audio.clear()
        self.busy_until = min(self.busy_until, now_ms)
        self.cleared += 1
        return heard

    def advance(self, now_ms: int) -> Heard:
        heard = Heard()
        while self._audio and self._audio[0][0] < now_ms:
            start, audio = self._audio[0]
            n = min(len(audio), (now_ms - start) * SAMPLES_PER_MS)
            heard.audio.append((start, audio[:n]))
            if n == len(audio):
                self._audio.popleft()
            else:
                self._audio[0] = (start + n // SAMPLES_PER_MS, audio[n:])
        while self._marks and self._marks[0][0] <= now_ms:
            heard.marks.append(self._marks.popleft()[1])
        return heard

    @property
    def speaking(self) -> bool:
        """Audio is still queued or playing."""
        return bool(self._audio)


__all__ = ["Heard", "TwilioPlayback"]
