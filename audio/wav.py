"""Streaming WAV for call recordings and fixtures: μ-law (format tag 7) or PCM16 (tag 1), mono or stereo.

The writer puts the header down first with both sizes set to :data:`UNKNOWN_SIZE` (0xFFFFFFFF, the marker
streaming WAV writers use for "until end of file"), then appends frames, and rewrites the sizes on ``close``.
A process that dies before ``close`` leaves a file whose header still says "unknown", and :class:`WavReader`
reads such a file (or one whose data size is 0 or larger than the file) to the end, dropping a trailing
partial frame. So a crash loses only what was not yet flushed.

Layout written (the same as SoX's): ``RIFF``/``WAVE``, a ``fmt`` chunk (18 bytes with ``cbSize = 0`` for
μ-law, 16 for PCM), a ``fact`` chunk holding the frame count for μ-law (the RIFF/WAVE spec requires one for
non-PCM formats), then ``data``. A file past 4 GiB (74 hours of stereo μ-law) keeps the unknown markers.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import BinaryIO, Final, Literal, Self

import numpy as np

from audio.errors import AudioError, InvalidPcmError, MalformedWavError, UnsupportedRateError

__all__ = [
    "UNKNOWN_SIZE",
    "Encoding",
    "WavFormat",
    "WavReader",
    "WavWriter",
    "iter_track_frames",
    "read_tracks",
    "repair",
]

Encoding = Literal["mulaw", "pcm16"]
UNKNOWN_SIZE: Final = 0xFFFFFFFF
"""RIFF and data chunk size written until ``close``: "the data runs to the end of the file"."""

_TAG_PCM: Final = 0x0001
_TAG_MULAW: Final = 0x0007
_TAG_EXTENSIBLE: Final = 0xFFFE
_ENCODINGS: Final[dict[tuple[int, int], Encoding]] = {(_TAG_MULAW, 8): "mulaw", (_TAG_PCM, 16): "pcm16"}
_FMT: Final = struct.Struct("<HHIIHH")
_CHUNK: Final = struct.Struct("<4sI")

PathLike = str | os.PathLike[str]


@dataclass(frozen=True, slots=True)
class WavFormat:
    """What a WAV file holds: enough to size frames and write or check a ``fmt`` chunk."""

    channels: int
    sample_rate: int
    encoding: Encoding

    @property
    def sample_width(self) -> int:
        """Bytes per sample of one channel: 1 for μ-law, 2 for PCM16."""
        return 1 if self.encoding == "mulaw" else 2

    @property
    def block_align(self) -> int:
        """Bytes per frame (one sample of every channel)."""
        return self.channels * self.sample_width


def _header(fmt: WavFormat, data_bytes: int | None) -> bytes:
    """Build everything before the samples; ``data_bytes=None`` writes the unknown-length markers."""
    mulaw = fmt.encoding == "mulaw"
    fmt_body = _FMT.pack(
        _TAG_MULAW if mulaw else _TAG_PCM,
        fmt.channels,
        fmt.sample_rate,
        fmt.sample_rate * fmt.block_align,
        fmt.block_align,
        fmt.sample_width * 8,
    ) + (b"\x00\x00" if mulaw else b"")  # cbSize: WAVEFORMATEX for a non-PCM tag, no extra bytes
    header_bytes = 12 + 8 + len(fmt_body) + (12 if mulaw else 0) + 8
    if data_bytes is None or header_bytes + data_bytes + 1 > UNKNOWN_SIZE:
        data_size = riff_size = frames = UNKNOWN_SIZE
    else:
        data_size = data_bytes
        riff_size = header_bytes - 8 + data_bytes + (data_bytes & 1)  # counts the pad byte of odd data
        frames = data_bytes // fmt.block_align
    chunks = _CHUNK.pack(b"fmt ", len(fmt_body)) + fmt_body
    if mulaw:
        chunks += _CHUNK.pack(b"fact", 4) + struct.pack("<I", frames)
    return _CHUNK.pack(b"RIFF", riff_size) + b"WAVE" + chunks + _CHUNK.pack(b"data", data_size)


class WavWriter:
    """Append interleaved frames to a new WAV file that stays readable until, and after, ``close``."""

    def __init__(self, path: PathLike, channels: int, sample_rate: int = 8000, encoding: Encoding = "mulaw", *,
                 exclusive: bool = False) -> None:
        """``exclusive``: refuse (``FileExistsError``) rather than truncate a file already at ``path``; call
        recordings are opened so, so nothing that reaches the writer twice can wipe a recording."""
        if channels not in (1, 2):
            raise InvalidPcmError(f"WavWriter writes mono or stereo, not {channels} channels")
        if encoding not in ("mulaw", "pcm16"):
            raise InvalidPcmError(f"unknown WAV encoding {encoding!r}; expected 'mulaw' or 'pcm16'")
        if not 0 < sample_rate <= 0xFFFFFFFF // 4:
            raise UnsupportedRateError(f"a WAV sample rate must be a positive 32-bit value, got {sample_rate}")
        self.format: Final = WavFormat(channels, sample_rate, encoding)
        self._data_bytes = 0
        self._file: BinaryIO = open(path, "xb" if exclusive else "wb")  # closed by close(), which __exit__ calls
        self._file.write(_header(self.format, None))

    @property
    def frames_written(self) -> int:
        """Frames (one sample per channel) written so far."""
        return self._data_bytes // self.format.block_align

    @property
    def closed(self) -> bool:
        return self._file.closed

    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Append interleaved frames (μ-law bytes, or PCM16 little-endian); only whole frames are accepted."""
        if self._file.closed:
            raise AudioError("write to a closed WavWriter")
        size = memoryview(data).nbytes
        if size % self.format.block_align:
            raise InvalidPcmError(
                f"{size} bytes is not a whole number of {self.format.block_align}-byte frames "
                f"({self.format.channels} channel(s) of {self.format.encoding})"
            )
        self._file.write(data)
        self._data_bytes += size

    def flush(self, durable: bool = False) -> None:
        """Hand buffered frames to the OS, so a crash of this process loses nothing written before.

        ``durable=True`` also fsyncs, which survives a machine crash but costs milliseconds: not per frame.
        """
        self._file.flush()
        if durable:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        """Pad an odd-sized data chunk (RIFF rule), write the real sizes, close. Safe to call twice."""
        if self._file.closed:
            return
        try:
            if self._data_bytes & 1:
                self._file.write(b"\x00")
            self._file.seek(0)
            self._file.write(_header(self.format, self._data_bytes))
        finally:
            self._file.close()

    def abort(self) -> OSError | None:
        """Close after a write error without touching the header, so the file ends where the disk stopped taking
        data; :func:`repair` then finishes it. Returns the error the close itself met (unwritten buffered frames),
        if any: the caller already knows the recording is cut, this says by how much more."""
        if self._file.closed:
            return None
        try:
            self._file.close()  # a failed flush still closes the descriptor (io.BufferedWriter.close)
        except OSError as exc:
            return exc
        return None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _parse_fmt(body: bytes) -> WavFormat:
    """Decode a ``fmt`` chunk, accepting only the formats this package writes (WAVE_FORMAT_EXTENSIBLE too)."""
    if len(body) < _FMT.size:
        raise MalformedWavError(f"fmt chunk is {len(body)} bytes, needs at least {_FMT.size}")
    tag, channels, rate, _byte_rate, block_align, bits = _FMT.unpack_from(body)
    if tag == _TAG_EXTENSIBLE and len(body) >= 26:
        (tag,) = struct.unpack_from("<H", body, 24)  # the real tag opens the SubFormat GUID
    encoding = _ENCODINGS.get((tag, bits))
    if encoding is None:
        raise MalformedWavError(
            f"unsupported format tag {tag:#06x} with {bits} bits per sample; "
            "expected μ-law (tag 7, 8 bits) or PCM (tag 1, 16 bits)"
        )
    if channels == 0 or rate == 0:
        raise MalformedWavError(f"fmt chunk has {channels} channels at {rate} Hz")
    fmt = WavFormat(channels, rate, encoding)
    if block_align != fmt.block_align:
        raise MalformedWavError(f"block align {block_align} does not match {channels} channel(s) of {encoding}")
    return fmt


def _parse(file: BinaryIO) -> tuple[WavFormat, int, bool]:
    """Walk the RIFF chunks up to ``data``: return the format, the data size to use, and whether the header's
    data size could be trusted (not for a file whose writer never closed it).
    """
    file_size = os.fstat(file.fileno()).st_size
    head = file.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:] != b"WAVE":
        raise MalformedWavError(f"not a RIFF/WAVE file: starts with {head!r}")
    fmt: WavFormat | None = None
    pos = 12
    while True:
        chunk_head = file.read(_CHUNK.size)
        if len(chunk_head) < _CHUNK.size:
            raise MalformedWavError("no fmt chunk" if fmt is None else "no data chunk before end of file")
        chunk_id, size = _CHUNK.unpack(chunk_head)
        pos += _CHUNK.size
        if chunk_id == b"data":
            if fmt is None:
                raise MalformedWavError("data chunk comes before the fmt chunk")
            available = file_size - pos
            trusted = 0 < size <= available and size != UNKNOWN_SIZE
            return fmt, size if trusted else available, trusted
        if pos + size > file_size:
            name = chunk_id.decode("latin-1")
            raise MalformedWavError(f"{name!r} chunk of {size} bytes runs past the end of the file")
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(file.read(size))
            file.seek(size & 1, os.SEEK_CUR)
        else:
            file.seek(size + (size & 1), os.SEEK_CUR)  # LIST, fact, cue, …: skip, with the pad byte
        pos += size + (size & 1)


def repair(path: PathLike) -> int:
    """Finish a WAV file whose writer never closed it (the process died): drop a trailing partial frame, pad odd
    data, write the real sizes. Returns the frames it holds; a file already closed is left as it is.

    Only the layout :class:`WavWriter` writes can be finished in place (its header has the same length with or
    without sizes); any other unclosed file raises :class:`MalformedWavError`.
    """
    with open(path, "r+b") as file:
        fmt, data_bytes, complete = _parse(file)
        if complete:
            return data_bytes // fmt.block_align
        data_at = file.tell()
        if data_at != len(_header(fmt, None)):
            raise MalformedWavError(f"cannot finish an unclosed WAV whose samples start at byte {data_at}")
        whole = data_bytes - data_bytes % fmt.block_align
        file.truncate(data_at + whole)
        if whole & 1:
            file.seek(0, os.SEEK_END)
            file.write(b"\x00")
        file.seek(0)
        file.write(_header(fmt, whole))
    return whole // fmt.block_align


class WavReader:
    """Read the frames of a WAV file, including one whose writer never closed it."""

    def __init__(self, path: PathLike) -> None:
        self._file: BinaryIO = open(path, "rb")  # closed by close(), which __exit__ calls
        try:
            self.format, data_bytes, self.header_complete = _parse(self._file)
        except BaseException:
            self._file.close()
            raise
        # header_complete is False when the data size was 0, unknown or past the end: read to EOF instead.
        self.n_frames: Final = data_bytes // self.format.block_align
        """Whole frames in the file; a trailing partial frame (a cut recording) is dropped."""
        self._frames_read = 0

    @property
    def channels(self) -> int:
        return self.format.channels

    @property
    def sample_rate(self) -> int:
        return self.format.sample_rate

    @property
    def encoding(self) -> Encoding:
        return self.format.encoding

    @property
    def sample_width(self) -> int:
        return self.format.sample_width

    def read(self, n_frames: int = -1) -> bytes:
        """Return up to ``n_frames`` interleaved frames (all that remain if negative); ``b""`` at the end."""
        remaining = self.n_frames - self._frames_read
        wanted = remaining if n_frames < 0 else min(n_frames, remaining)
        data = self._file.read(wanted * self.format.block_align)
        whole = len(data) // self.format.block_align
        self._frames_read += whole
        return data[: whole * self.format.block_align]

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _deinterleave(data: bytes, channels: int, sample_width: int) -> tuple[bytes, ...]:
    """Split interleaved frames into one byte string per channel (samples moved as opaque units)."""
    if channels == 1:
        return (data,)
    if sample_width == 1:
        return tuple(data[c::channels] for c in range(channels))
    samples = np.frombuffer(data, dtype=np.uint16).reshape(-1, channels)
    return tuple(samples[:, c].tobytes() for c in range(channels))


def iter_track_frames(path: PathLike, frame_ms: int = 20) -> Iterator[tuple[bytes, ...]]:
    """Yield, per ``frame_ms`` step, one chunk per channel (the last step may be short).

    This is how stereo fixtures are replayed as Twilio's two tracks: channel 0 inbound, channel 1 outbound.
    """
    with WavReader(path) as reader:
        if frame_ms <= 0 or reader.sample_rate * frame_ms % 1000:
            raise UnsupportedRateError(f"{frame_ms} ms is not a whole number of samples at {reader.sample_rate} Hz")
        step = reader.sample_rate * frame_ms // 1000
        while chunk := reader.read(step):
            yield _deinterleave(chunk, reader.channels, reader.sample_width)


def read_tracks(path: PathLike) -> tuple[bytes, ...]:
    """Read a whole file as one byte string per channel."""
    with WavReader(path) as reader:
        return _deinterleave(reader.read(), reader.channels, reader.sample_width)
