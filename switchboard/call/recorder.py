"""Stereo call recording clocked by Twilio timestamps (caller left, agent right), never by the wall clock.

A write error (ENOSPC, EIO, EFBIG, ...) must not take the call down with it: the recorder stops writing, finishes the
file as far as the disk took it (a valid header over whole frames, :func:`audio.wav.repair`), keeps aligning and
discarding so memory stays flat, and reports ``incomplete`` with the error; the session goes on to end the call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import TypeVar

from audio import TWILIO_RATE
from audio.align import TrackAligner
from audio.errors import AudioError
from audio.media_time import samples_to_ms
from audio.wav import WavWriter, repair

log = logging.getLogger(__name__)

TRACKS = ("inbound", "outbound")
_FLUSH_BYTES = 2 * TWILIO_RATE  # hand data to the OS about once a second so a crash loses at most ~1 s


MAX_PARTS = 100
R = TypeVar("R")


def open_recording(data_dir: Path, key_of: Callable[[int], str], make: Callable[[Path], R]) -> tuple[R, str]:
    """A recorder (``make(path)``) on the first key ``key_of(1)``, ``key_of(2)``, … with no file yet, and that key.

    A recording is never opened for writing from scratch over an existing one (the writer opens exclusively): a
    second stream of the same call (a restart between the end and a replay, a lost row, a second webhook's token)
    continues under the next key, and the earlier recording is kept as it was.
    """
    for part in range(1, MAX_PARTS + 1):
        key = key_of(part)
        try:
            return make(data_dir / key), key
        except FileExistsError:
            log.warning("recording %s already exists: this stream records under the next key", key)
    raise FileExistsError(f"{MAX_PARTS} recordings already exist for {key_of(1)}")


class StereoRecorder:
    """Aligns both tracks on one sample timeline and streams them into a μ-law stereo WAV (a new file only)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._aligner = TrackAligner(TRACKS)
        self._writer = WavWriter(path, channels=2, sample_rate=TWILIO_RATE, encoding="mulaw", exclusive=True)
        self._unflushed = 0
        self._closed = False
        self.error: str | None = None
        """Why the recording stopped short (None while every write succeeded)."""
        self._kept_frames: int | None = None

    @property
    def incomplete(self) -> bool:
        return self.error is not None

    def write(self, track: str, timestamp_ms: int, ulaw: bytes, offset: int = 0) -> None:
        stereo = self._aligner.push(track, timestamp_ms, ulaw, offset)
        if stereo and self.error is None:
            try:
                self._writer.write(stereo)
                self._unflushed += len(stereo)
                if self._unflushed >= _FLUSH_BYTES:
                    self._writer.flush()
                    self._unflushed = 0
            except OSError as exc:
                self._failed(exc)

    def close(self) -> int:
        """Pad the shorter track, fix the header; returns the recording's length in ms."""
        if not self._closed:
            self._closed = True
            tail = self._aligner.flush()
            if self.error is None:
                try:
                    if tail:
                        self._writer.write(tail)
                    self._writer.close()
                except OSError as exc:
                    self._failed(exc)
        return self.media_ms

    def _failed(self, exc: OSError) -> None:
        """Stop writing; finish the file over what reached the disk."""
        self.error = f"recording write failed: {exc.strerror or exc} (errno {exc.errno})"
        log.error("%s: %s; the call goes on without recording the rest", self.path, self.error)
        also = self._writer.abort()
        if also is not None:
            log.warning("%s: closing after the write error: %s", self.path, also)
        try:
            self._kept_frames = repair(self.path)
        except (OSError, AudioError) as repair_error:
            self._kept_frames = 0
            self.error += f"; header not finished: {repair_error}"
            log.error("%s: could not finish the header: %s", self.path, repair_error)

    @property
    def media_ms(self) -> int:
        frames = self._writer.frames_written if self._kept_frames is None else self._kept_frames
        return samples_to_ms(frames, TWILIO_RATE)

    def stats(self) -> dict[str, object]:
        stats: dict[str, object] = {"media_ms": self.media_ms,
                                    "tracks": {t: asdict(s) for t, s in self._aligner.stats().items()}}
        if self.error is not None:
            stats["error"] = self.error
        return stats
