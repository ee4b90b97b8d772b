"""Streaming WAV: round trips, crash-cut files, foreign writers (stdlib ``wave``, SoX), chunk walking, bad files."""

from __future__ import annotations

import shutil
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from audio import mulaw
from audio.errors import AudioError, InvalidPcmError, MalformedWavError, UnsupportedRateError
from audio.wav import (
    UNKNOWN_SIZE,
    WavFormat,
    WavReader,
    WavWriter,
    _header,
    iter_track_frames,
    read_tracks,
    repair,
)

MULAW_HEADER = 58
PCM_HEADER = 44


def interleave(*tracks: bytes, width: int) -> bytes:
    """Interleave per-channel byte strings of ``width``-byte samples into frames."""
    dtype = np.uint8 if width == 1 else np.uint16
    return np.stack([np.frombuffer(t, dtype=dtype) for t in tracks], axis=1).tobytes()


def tracks_for(encoding: str, channels: int, n_frames: int) -> tuple[bytes, ...]:
    rng = np.random.default_rng(channels)
    if encoding == "mulaw":
        return tuple(rng.integers(0, 256, n_frames, dtype=np.uint8).tobytes() for _ in range(channels))
    return tuple(rng.integers(-32768, 32767, n_frames, dtype=np.int16).astype("<i2").tobytes() for _ in range(channels))


def chunk(chunk_id: bytes, body: bytes) -> bytes:
    """One RIFF chunk, with the pad byte an odd-sized body needs."""
    return struct.pack("<4sI", chunk_id, len(body)) + body + b"\x00" * (len(body) & 1)


def fmt_body(tag: int = 7, channels: int = 1, rate: int = 8000, bits: int = 8, align: int | None = None) -> bytes:
    block = align if align is not None else channels * bits // 8
    return struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)


def riff(*chunks: bytes, size: int | None = None) -> bytes:
    body = b"WAVE" + b"".join(chunks)
    return struct.pack("<4sI", b"RIFF", len(body) if size is None else size) + body


@pytest.mark.parametrize("encoding", ["mulaw", "pcm16"])
@pytest.mark.parametrize("channels", [1, 2])
def test_round_trip(tmp_path: Path, encoding: str, channels: int) -> None:
    tracks = tracks_for(encoding, channels, 1001)
    width = 1 if encoding == "mulaw" else 2
    frames = interleave(*tracks, width=width)
    path = tmp_path / "call.wav"
    with WavWriter(path, channels, 16000, encoding) as writer:  # type: ignore[arg-type]
        for start in range(0, len(frames), 320 * channels):
            writer.write(frames[start : start + 320 * channels])
        assert writer.frames_written == 1001
    assert writer.closed
    with WavReader(path) as reader:
        assert (reader.channels, reader.sample_rate, reader.encoding) == (channels, 16000, encoding)
        assert (reader.sample_width, reader.n_frames, reader.header_complete) == (width, 1001, True)
        assert reader.read() == frames
        assert reader.read(10) == b""
    assert read_tracks(path) == tracks


def test_stereo_mulaw_header_is_the_one_sox_writes(tmp_path: Path) -> None:
    path = tmp_path / "a.wav"
    with WavWriter(path, 2) as writer:
        writer.write(bytes(16000))
    sox_header = bytes.fromhex(
        "52494646b23e000057415645666d7420120000000700020040"
        "1f0000803e00000200080000006661637404000000401f000064617461803e0000"
    )  # from `sox -n -r 8000 -c 2 -e u-law out.wav synth 1 sine 440`
    assert path.read_bytes()[:MULAW_HEADER] == sox_header


def test_pcm16_header_is_the_one_stdlib_wave_writes(tmp_path: Path) -> None:
    samples = np.arange(-500, 500, dtype="<i2").tobytes()
    with WavWriter(tmp_path / "ours.wav", 2, 22050, "pcm16") as writer:
        writer.write(samples)
    with wave.open(str(tmp_path / "theirs.wav"), "wb") as theirs:
        theirs.setnchannels(2)
        theirs.setsampwidth(2)
        theirs.setframerate(22050)
        theirs.writeframes(samples)
    assert (tmp_path / "ours.wav").read_bytes() == (tmp_path / "theirs.wav").read_bytes()


def test_header_says_unknown_length_until_close(tmp_path: Path) -> None:
    path = tmp_path / "live.wav"
    writer = WavWriter(path, 2)
    writer.write(bytes(320))
    writer.flush()
    raw = path.read_bytes()
    riff_size, fact, data_size = (struct.unpack_from("<I", raw, at)[0] for at in (4, 46, 54))
    assert riff_size == fact == data_size == UNKNOWN_SIZE
    writer.close()
    raw = path.read_bytes()
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    assert struct.unpack_from("<I", raw, 46)[0] == 160  # fact: frames, not bytes
    assert struct.unpack_from("<I", raw, 54)[0] == 320


@pytest.mark.parametrize("encoding", ["mulaw", "pcm16"])
def test_a_never_closed_file_reads_back_everything_flushed(tmp_path: Path, encoding: str) -> None:
    """A process killed before close(): copy the bytes on disk as they stand, then read the copy."""
    frames = interleave(*tracks_for(encoding, 2, 800), width=1 if encoding == "mulaw" else 2)
    writer = WavWriter(tmp_path / "rec.wav", 2, encoding=encoding)  # type: ignore[arg-type]
    writer.write(frames[: len(frames) // 2])
    writer.flush()
    writer.write(frames[len(frames) // 2 :])
    writer.flush(durable=True)
    cut = tmp_path / "cut.wav"
    shutil.copyfile(tmp_path / "rec.wav", cut)
    writer.close()
    with cut.open("ab") as f:
        f.write(b"\x01")  # half a frame, as when the process died mid-write
    with WavReader(cut) as reader:
        assert (reader.n_frames, reader.header_complete) == (800, False)
        assert reader.read() == frames


@pytest.mark.parametrize(("encoding", "channels", "n_frames", "tail"), [
    ("pcm16", 2, 800, b"\x01\x02\x03"),  # three bytes of a four-byte frame: dropped
    ("mulaw", 1, 801, b""),  # odd data: padded
    ("mulaw", 2, 0, b"\x7f"),  # died before the first whole frame
])
def test_repair_finishes_a_never_closed_file_in_place(tmp_path: Path, encoding: str, channels: int, n_frames: int,
                                                      tail: bytes) -> None:
    frames = interleave(*tracks_for(encoding, channels, n_frames), width=1 if encoding == "mulaw" else 2)
    path = tmp_path / "rec.wav"
    writer = WavWriter(path, channels, encoding=encoding)  # type: ignore[arg-type]
    writer.write(frames)
    writer.flush()
    cut = tmp_path / "cut.wav"
    shutil.copyfile(path, cut)  # the bytes on disk when the process died
    writer.close()
    with cut.open("ab") as f:
        f.write(tail)
    assert repair(cut) == n_frames
    assert cut.read_bytes() == path.read_bytes()  # exactly what close() would have written
    assert repair(cut) == n_frames  # a finished file is left as it is
    assert cut.read_bytes() == path.read_bytes()


def test_repair_refuses_a_foreign_unclosed_layout(tmp_path: Path) -> None:
    path = tmp_path / "x.wav"
    data = struct.pack("<4sI", b"data", UNKNOWN_SIZE) + bytes(10)
    path.write_bytes(riff(chunk(b"LIST", b"INFO"), chunk(b"fmt ", fmt_body()), data, size=0))
    before = path.read_bytes()
    with pytest.raises(MalformedWavError, match="cannot finish"):
        repair(path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("declared", [0, UNKNOWN_SIZE, 10_000])
def test_data_size_zero_unknown_or_past_the_end_reads_to_eof(tmp_path: Path, declared: int) -> None:
    audio = bytes(range(201))
    path = tmp_path / "x.wav"
    data = struct.pack("<4sI", b"data", declared) + audio
    path.write_bytes(riff(chunk(b"fmt ", fmt_body()), data, size=0))
    with WavReader(path) as reader:
        assert reader.n_frames == 201
        assert not reader.header_complete
        assert reader.read() == audio


def test_chunks_are_walked_skipping_unknown_ones_and_pad_bytes(tmp_path: Path) -> None:
    path = tmp_path / "odd.wav"
    audio = bytes(range(7))
    trailing_list = chunk(b"LIST", b"INFOISFT\x03\x00\x00\x00ab")
    path.write_bytes(
        riff(
            chunk(b"JUNK", b"xyz"),  # odd size: one pad byte follows
            chunk(b"fmt ", fmt_body() + b"\x00\x00\x00"),  # an odd-sized fmt with extra bytes, padded too
            chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00sox!\x00"),
            chunk(b"data", audio),  # odd data: padded, and the size in the header is trusted
            trailing_list,
        )
    )
    with WavReader(path) as reader:
        assert (reader.n_frames, reader.header_complete) == (7, True)
        assert reader.read() == audio  # neither pad nor the trailing LIST leaks into the audio


def test_odd_mono_mulaw_is_padded_on_close_and_reads_back_exactly(tmp_path: Path) -> None:
    path = tmp_path / "odd.wav"
    with WavWriter(path, 1) as writer:
        writer.write(b"\x11\x22\x33")
    raw = path.read_bytes()
    assert len(raw) == MULAW_HEADER + 4 and raw[-1] == 0
    assert struct.unpack_from("<I", raw, 4)[0] == len(raw) - 8
    assert read_tracks(path) == (b"\x11\x22\x33",)
    if shutil.which("sox"):
        info = subprocess.run(["sox", "--i", "-s", str(path)], capture_output=True, text=True, check=True)
        assert info.stdout.strip() == "3"


@pytest.mark.parametrize("channels", [1, 2])
def test_files_from_stdlib_wave_parse(tmp_path: Path, channels: int) -> None:
    pcm = np.arange(-3000, 3000, 7, dtype="<i2").tobytes()[: 4 * 200]
    with wave.open(str(tmp_path / "w.wav"), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(pcm)
    with WavReader(tmp_path / "w.wav") as reader:
        assert (reader.encoding, reader.channels, reader.n_frames) == ("pcm16", channels, 400 // channels)
        assert reader.read() == pcm


@pytest.mark.skipif(shutil.which("sox") is None, reason="sox is not installed")
def test_a_stereo_mulaw_file_from_sox_parses(tmp_path: Path) -> None:
    path = tmp_path / "sox.wav"
    subprocess.run(
        ["sox", "-n", "-r", "8000", "-c", "2", "-e", "u-law", str(path), "synth", "1", "sine", "440"], check=True
    )
    left, right = read_tracks(path)
    assert len(left) == len(right) == 8000
    # SoX's own decode of its file, as PCM16 frames: our parse must land on exactly the same samples.
    sox_pcm = subprocess.run(
        ["sox", str(path), "-t", "raw", "-e", "signed", "-b", "16", "-L", "-"], capture_output=True, check=True
    ).stdout
    decoded = np.stack([mulaw.decode(left), mulaw.decode(right)], axis=1)
    assert decoded.astype("<i2").tobytes() == sox_pcm
    spectrum = np.abs(np.fft.rfft(decoded[:, 0].astype(np.float64)))
    assert np.fft.rfftfreq(8000, 1 / 8000)[np.argmax(spectrum)] == 440


def test_wave_format_extensible_pcm16_parses(tmp_path: Path) -> None:
    pcm_guid = struct.pack("<H", 1) + bytes.fromhex("000000001000800000aa00389b71")
    ext = fmt_body(tag=0xFFFE, channels=2, bits=16) + struct.pack("<HHI", 22, 16, 3) + pcm_guid
    path = tmp_path / "ext.wav"
    path.write_bytes(riff(chunk(b"fmt ", ext), chunk(b"data", bytes(range(8)))))
    with WavReader(path) as reader:
        assert (reader.encoding, reader.channels, reader.n_frames) == ("pcm16", 2, 2)


def test_read_in_pieces(tmp_path: Path) -> None:
    path = tmp_path / "p.wav"
    frames = bytes(range(200))
    with WavWriter(path, 2) as writer:
        writer.write(frames)
    with WavReader(path) as reader:
        assert reader.read(30) == frames[:60]
        assert reader.read(0) == b""
        assert reader.read(-1) == frames[60:]
        assert reader.read(5) == b""


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not a RIFF/WAVE file"),
        (b"RIFX\x00\x00\x00\x00WAVE", "not a RIFF/WAVE file"),
        (b"RIFF\x00\x00\x00\x00AVI LIST", "not a RIFF/WAVE file"),
        (riff(), "no fmt chunk"),
        (riff(chunk(b"fmt ", fmt_body())), "no data chunk"),
        (riff(chunk(b"fmt ", fmt_body()), b"da"), "no data chunk"),
        (riff(chunk(b"data", b"abc"), chunk(b"fmt ", fmt_body())), "data chunk comes before the fmt chunk"),
        (riff(chunk(b"fmt ", fmt_body())[:20]), "runs past the end"),
        (riff(chunk(b"LIST", bytes(10))[:14]), "'LIST' chunk of 10 bytes runs past the end"),
        (riff(chunk(b"fmt ", fmt_body()[:14]), chunk(b"data", b"")), "fmt chunk is 14 bytes"),
        (riff(chunk(b"fmt ", fmt_body(tag=3, bits=32)), chunk(b"data", b"")), "unsupported format tag 0x0003"),
        (riff(chunk(b"fmt ", fmt_body(tag=1, bits=8)), chunk(b"data", b"")), "with 8 bits per sample"),
        (riff(chunk(b"fmt ", fmt_body(channels=0)), chunk(b"data", b"")), "0 channels"),
        (riff(chunk(b"fmt ", fmt_body(rate=0)), chunk(b"data", b"")), "at 0 Hz"),
        (riff(chunk(b"fmt ", fmt_body(channels=2, align=1)), chunk(b"data", b"")), "block align 1"),
    ],
)
def test_unparseable_files_raise_malformed_wav_naming_the_problem(tmp_path: Path, content: bytes, reason: str) -> None:
    path = tmp_path / "bad.wav"
    path.write_bytes(content)
    with pytest.raises(MalformedWavError, match=reason):
        WavReader(path)


def test_a_truncated_real_file_raises_malformed(tmp_path: Path) -> None:
    path = tmp_path / "t.wav"
    with WavWriter(path, 2) as writer:
        writer.write(bytes(320))
    for cut in (0, 11, 30, MULAW_HEADER - 3):
        (tmp_path / "cut.wav").write_bytes(path.read_bytes()[:cut])
        with pytest.raises(MalformedWavError):
            WavReader(tmp_path / "cut.wav")


def test_iter_track_frames_deinterleaves_20ms_steps_with_a_short_last_one(tmp_path: Path) -> None:
    inbound, outbound = tracks_for("mulaw", 2, 1000)
    path = tmp_path / "call.wav"
    with WavWriter(path, 2) as writer:
        writer.write(interleave(inbound, outbound, width=1))
    steps = list(iter_track_frames(path))
    assert [len(s[0]) for s in steps] == [160] * 6 + [40]
    assert all(len(a) == len(b) for a, b in steps)
    assert b"".join(s[0] for s in steps) == inbound
    assert b"".join(s[1] for s in steps) == outbound


def test_iter_track_frames_pcm16_and_mono(tmp_path: Path) -> None:
    left = np.arange(0, 480, dtype="<i2")
    right = -left
    with WavWriter(tmp_path / "s.wav", 2, 16000, "pcm16") as writer:
        writer.write(np.stack([left, right], axis=1).tobytes())
    steps = list(iter_track_frames(tmp_path / "s.wav", frame_ms=10))
    assert [len(s[0]) for s in steps] == [320, 320, 320]
    assert np.frombuffer(steps[1][1], "<i2").tolist() == (-left[160:320]).tolist()
    with WavWriter(tmp_path / "m.wav", 1) as writer:
        writer.write(b"\x01" * 200)
    assert [s[0] for s in iter_track_frames(tmp_path / "m.wav")] == [b"\x01" * 160, b"\x01" * 40]


@pytest.mark.parametrize("frame_ms", [0, -20, 3])
def test_iter_track_frames_rejects_steps_that_are_not_whole_samples(tmp_path: Path, frame_ms: int) -> None:
    with WavWriter(tmp_path / "r.wav", 1, 22050) as writer:
        writer.write(bytes(100))
    with pytest.raises(UnsupportedRateError, match=f"{frame_ms} ms"):
        next(iter_track_frames(tmp_path / "r.wav", frame_ms))


@pytest.mark.parametrize(("channels", "encoding", "size"), [(2, "mulaw", 3), (1, "pcm16", 5), (2, "pcm16", 6)])
def test_write_rejects_partial_frames(tmp_path: Path, channels: int, encoding: str, size: int) -> None:
    with WavWriter(tmp_path / "w.wav", channels, encoding=encoding) as writer:  # type: ignore[arg-type]
        with pytest.raises(InvalidPcmError, match=f"{size} bytes is not a whole number"):
            writer.write(bytes(size))
        assert writer.frames_written == 0


def test_writer_argument_errors(tmp_path: Path) -> None:
    with pytest.raises(InvalidPcmError, match="not 3 channels"):
        WavWriter(tmp_path / "a.wav", 3)
    with pytest.raises(InvalidPcmError, match="'alaw'"):
        WavWriter(tmp_path / "a.wav", 1, encoding="alaw")  # type: ignore[arg-type]
    with pytest.raises(UnsupportedRateError, match="got 0"):
        WavWriter(tmp_path / "a.wav", 1, sample_rate=0)


def test_close_is_idempotent_write_after_close_raises_and_exit_closes_on_error(tmp_path: Path) -> None:
    path = tmp_path / "c.wav"
    with pytest.raises(RuntimeError), WavWriter(path, 1) as writer:
        writer.write(b"\x05" * 10)
        raise RuntimeError("call dropped")
    assert writer.closed
    writer.close()
    with pytest.raises(AudioError, match="closed"):
        writer.write(b"\x05")
    with WavReader(path) as reader:
        assert reader.header_complete and reader.read() == b"\x05" * 10


def test_a_recording_past_4_gib_keeps_the_unknown_markers() -> None:
    header = _header(WavFormat(2, 8000, "mulaw"), 2**32)
    assert struct.unpack_from("<I", header, 4)[0] == UNKNOWN_SIZE
    assert struct.unpack_from("<I", header, MULAW_HEADER - 4)[0] == UNKNOWN_SIZE
    assert len(_header(WavFormat(1, 8000, "pcm16"), 10)) == PCM_HEADER
