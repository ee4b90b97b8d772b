"""One WAV of a call from its parts: each part's recording placed at its offset, silence between.

A call may be recorded in several files (a transfer's ``<Dial>`` forks a new media stream, an operator's missed
``<Dial>`` hands over to the agent): each is a complete recording of one stream, and its media time 0 sits at a
known offset on the call's timeline. :func:`join` streams them as one file on that timeline, without writing it:
the header first (the total length is known from the parts' headers), then the samples in bounded chunks. A part
that would start before the previous one ends (two streams at once, which the server refuses on one instance) is
placed right after it instead, so no audio is lost or mixed.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from audio.errors import MalformedWavError
from audio.wav import PathLike, WavFormat, WavReader, _header

CHUNK_FRAMES = 8000
"""Frames read and sent at a time (1 s at 8 kHz)."""


@dataclass(frozen=True, slots=True)
class Joined:
    """The joined file: ``header`` then ``chunks()``; ``starts`` is each part's first frame in it."""

    format: WavFormat
    n_frames: int
    starts: tuple[int, ...]
    parts: tuple[PathLike, ...]

    @property
    def n_bytes(self) -> int:
        return len(self.header()) + self.n_frames * self.format.block_align

    def header(self) -> bytes:
        return _header(self.format, self.n_frames * self.format.block_align)

    def chunks(self) -> Iterator[bytes]:
        """The header, then every frame of the call; silence (μ-law 0xFF, PCM 0) fills the gaps."""
        yield self.header()
        silence = b"\xff" if self.format.encoding == "mulaw" else b"\x00"
        at = 0
        for path, start in zip(self.parts, self.starts, strict=True):
            yield from _silence(start - at, self.format, silence)
            at = start
            with WavReader(path) as reader:
                while data := reader.read(CHUNK_FRAMES):
                    at += len(data) // self.format.block_align
                    yield data


def _silence(frames: int, fmt: WavFormat, sample: bytes) -> Iterator[bytes]:
    while frames > 0:
        n = min(frames, CHUNK_FRAMES)
        yield sample * (n * fmt.block_align)
        frames -= n


def join(parts: Sequence[tuple[PathLike, int]]) -> Joined:
    """Plan the join of ``(path, offset in frames)`` parts, in call order; they must share one format."""
    if not parts:
        raise ValueError("nothing to join")
    fmt: WavFormat | None = None
    starts, end = [], 0
    for path, offset in parts:
        with WavReader(path) as reader:
            if fmt is not None and reader.format != fmt:
                raise MalformedWavError(f"{path}: {reader.format} differs from the call's {fmt}")
            fmt = reader.format
            start = max(offset, end)
            starts.append(start)
            end = start + reader.n_frames
    assert fmt is not None
    return Joined(fmt, end, tuple(starts), tuple(path for path, _ in parts))


__all__ = ["CHUNK_FRAMES", "Joined", "join"]
