"""Stereo call recording clocked by Twilio timestamps (caller left, agent right), never by the wall clock."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from audio import TWILIO_RATE
from audio.align import TrackAligner
from audio.wav import WavWriter

TRACKS = ("inbound", "outbound")
_FLUSH_BYTES = 2 * TWILIO_RATE  # hand data to the OS about once a second so a crash loses at most ~1 s


class StereoRecorder:
    """Aligns both tracks on one sample timeline and streams them into a μ-law stereo WAV."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._aligner = TrackAligner(TRACKS)
        self._writer = WavWriter(path, channels=2, sample_rate=TWILIO_RATE, encoding="mulaw")
        self._unflushed = 0
        self._closed = False

    def write(self, track: str, timestamp_ms: int, ulaw: bytes, offset: int = 0) -> None:
        stereo = self._aligner.push(track, timestamp_ms, ulaw, offset)
        if stereo:
            self._writer.write(stereo)
            self._unflushed += len(stereo)
            if self._unflushed >= _FLUSH_BYTES:
                self._writer.flush()
                self._unflushed = 0

    def close(self) -> int:
        """Pad the shorter track, fix the header; returns the recording's length in ms."""
        if not self._closed:
            self._closed = True
            tail = self._aligner.flush()
            if tail:
                self._writer.write(tail)
            self._writer.close()
        return self.media_ms

    @property
    def media_ms(self) -> int:
        return self._writer.frames_written * 1000 // TWILIO_RATE

    def stats(self) -> dict[str, object]:
        return {"media_ms": self.media_ms, "tracks": {t: asdict(s) for t, s in self._aligner.stats().items()}}
