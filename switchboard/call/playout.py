"""Sans-I/O models of the two ends of the agent's audio in a call, both on the media clock (ms since the stream
started, the caller track's own timestamps).

:class:`Playout` is our copy of Twilio's playback queue: audio sent is played back to back in real time from when
it arrives, and a ``clear`` drops what has not played yet
(https://www.twilio.com/docs/voice/media-streams/websocket-messages#send-a-clear-message). What it releases is
exactly what the caller heard, at the media time they heard it: the recording's agent channel.

:class:`SpeechGate` turns the caller's μ-law frames into speech start/stop with a level, for the turn-taking core
(barge-in by level, endpointing): webrtcvad on 20 ms frames, a start after ``start_ms`` of speech, a stop after
``stop_ms`` without.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Final

from audio import SAMPLES_PER_MS, mulaw
from audio.detectors import SpeechDetector, WebRtcDetector, level_dbfs

FRAME_BYTES: Final = 160


class Playout:
    def __init__(self) -> None:
        self._queue: deque[tuple[int, bytes]] = deque()
        self.until_ms = 0
        """When the last audio queued will have finished playing."""

    def queue(self, audio: bytes, now_ms: int) -> int:
        """``audio`` was sent at ``now_ms``; returns the media time it starts playing."""
        start = max(now_ms, self.until_ms)
        if audio:
            self._queue.append((start, audio))
            self.until_ms = start + len(audio) // SAMPLES_PER_MS
        return start

    def played(self, now_ms: int) -> list[tuple[int, bytes]]:
        """The audio that has played by ``now_ms`` and was not released before: ``(media ms, μ-law)`` pieces."""
        out: list[tuple[int, bytes]] = []
        while self._queue and self._queue[0][0] < now_ms:
            start, audio = self._queue[0]
            n = min(len(audio), (now_ms - start) * SAMPLES_PER_MS)
            out.append((start, audio[:n]))
            if n == len(audio):
                self._queue.popleft()
            else:
                self._queue[0] = (start + n // SAMPLES_PER_MS, audio[n:])
        return out

    def clear(self, now_ms: int) -> list[tuple[int, bytes]]:
        """Twilio's ``clear``: what played until ``now_ms`` (still to be recorded); the rest is dropped."""
        played = self.played(now_ms)
        self._queue.clear()
        self.until_ms = min(self.until_ms, now_ms)
        return played

    @property
    def playing(self) -> bool:
        return bool(self._queue)


@dataclass(frozen=True, slots=True)
class SpeechEdge:
    started: bool
    """True: speech started (``level_db`` is its level so far); False: it stopped."""
    at_ms: int
    level_db: float | None = None


class SpeechGate:
    def __init__(self, detector: SpeechDetector | None = None, *, start_ms: int = 60, stop_ms: int = 300) -> None:
        self._detector = detector or WebRtcDetector(8000, 20, mode=3)
        self._frame = self._detector.frame_samples
        self._start_frames = max(1, start_ms // 20)
        self._stop_frames = max(1, stop_ms // 20)
        self._run = 0  # consecutive frames that disagree with the current state
        self._levels: list[float] = []
        self._pending = b""
        self.in_speech = False

    def push(self, payload: bytes, timestamp_ms: int) -> list[SpeechEdge]:
        """One caller frame (μ-law, any length) starting at ``timestamp_ms``."""
        data = self._pending + payload
        whole = len(data) - len(data) % FRAME_BYTES
        self._pending = data[whole:]
        edges: list[SpeechEdge] = []
        start_at = timestamp_ms - (len(data) - len(payload)) // SAMPLES_PER_MS
        for offset in range(0, whole, FRAME_BYTES):
            pcm = mulaw.decode(data[offset:offset + FRAME_BYTES])
            end_ms = start_at + (offset + FRAME_BYTES) // SAMPLES_PER_MS
            speech = self._detector.probability(pcm) >= 0.5
            edge = self._step(speech, level_dbfs(pcm), end_ms)
            if edge is not None:
                edges.append(edge)
        return edges

    def _step(self, speech: bool, level: float, end_ms: int) -> SpeechEdge | None:
        if speech != self.in_speech:
            self._run += 1
            if speech:
                self._levels.append(level)
        else:
            self._run = 0
            if not speech:
                self._levels.clear()
        if not self.in_speech and self._run >= self._start_frames:
            self.in_speech, self._run = True, 0
            level_db = max(self._levels) if self._levels else None
            self._levels.clear()
            return SpeechEdge(True, end_ms - self._start_frames * 20, level_db)
        if self.in_speech and self._run >= self._stop_frames:
            self.in_speech, self._run = False, 0
            return SpeechEdge(False, end_ms - self._stop_frames * 20)
        return None


__all__ = ["Playout", "SpeechEdge", "SpeechGate"]
