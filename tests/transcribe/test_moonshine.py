"""The real Moonshine model on onnxruntime: tokenizer, self-test, bad model files, the worker pool, and
LocalTranscriber end to end on beckett.wav.

One pool (one model load, ~1 s) serves most of the module; the decodes here are ~10 s of speech in total.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from switchboard.transcribe.errors import ProviderUnavailable, RecognitionFailed
from switchboard.transcribe.local import LocalTranscriber
from switchboard.transcribe.moonshine import SELF_TEST_TEXT, MoonshineEngine, RecognizerPool
from switchboard.transcribe.moonshine_ort import (
    MIN_SAMPLES,
    MODEL_FILES,
    ORT_ERRORS,
    BinTokenizer,
    MoonshineOrt,
    parse_tokenizer_bin,
    wheel_model_dir,
)
from switchboard.transcribe.wer import normalise, wer

RATE = 16_000
PTS0 = 7_000  # the stream starts 7 s into the call
CUT_S, GAP_S, END_S = 3.0, 2.0, 5.8  # "Ever tried. Ever failed." | 2 s gap | "No matter. Try again."


def _beckett() -> np.ndarray:
    spec = importlib.util.find_spec("moonshine_cpp")
    assert spec is not None and spec.origin is not None
    with wave.open(str(Path(spec.origin).parent / "test-data" / "beckett.wav"), "rb") as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


def speech_bounds_ms(pcm: np.ndarray, floor_dbfs: float) -> tuple[int, int]:
    """Where the speech really is, independent of any VAD: first and last run of three 10 ms frames
    at least 15 dB above the recording's noise floor (word tails included, isolated clicks not)."""
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160).astype(np.float64) / 32768
    loud = 10 * np.log10((frames**2).mean(axis=1) + 1e-12) > floor_dbfs + 15
    runs = np.flatnonzero(loud[:-2] & loud[1:-1] & loud[2:])
    return int(runs[0]) * 10, int(runs[-1] + 3) * 10


def noise_floor_dbfs(pcm: np.ndarray) -> float:
    frames = pcm[: len(pcm) // 160 * 160].reshape(-1, 160).astype(np.float64) / 32768
    return float(np.percentile(10 * np.log10((frames**2).mean(axis=1) + 1e-12), 10))


@pytest.fixture(scope="module")
def pool() -> Iterator[RecognizerPool]:
    pool = RecognizerPool(workers=1)
    yield pool
    pool.close()


async def test_self_test_reads_beckett(pool: RecognizerPool) -> None:
    text = await pool.self_test()
    assert normalise(text) == normalise(SELF_TEST_TEXT)
    assert pool.stats().engines == 1


async def test_local_transcriber_end_to_end_with_a_gap(pool: RecognizerPool) -> None:
    beckett = _beckett()
    first, second = beckett[: int(CUT_S * RATE)], beckett[int(CUT_S * RATE) : int(END_S * RATE)]
    gap = np.random.default_rng(1).normal(0, 3, int(GAP_S * RATE)).astype(np.int16)
    audio = np.concatenate([first, gap, second])
    stream = await LocalTranscriber(pool).open("inbound", RATE)
    events = []

    async def consume() -> None:
        events.extend([event async for event in stream])

    async with asyncio.TaskGroup() as group:
        group.create_task(consume())
        for i in range(0, len(audio), 320):  # 20 ms chunks, as the media path pushes them
            stream.push(audio[i : i + 320], PTS0 + i // 16)
            if i % 16_000 == 0:
                await asyncio.sleep(0)
        stream.end()

    assert events and all(e.is_final and e.track == "inbound" and e.provider == "local" for e in events)
    assert [e.start_ms for e in events] == sorted(e.start_ms for e in events)
    gap_start_ms, gap_end_ms = PTS0 + int(CUT_S * 1000), PTS0 + int((CUT_S + GAP_S) * 1000)
    before = [e for e in events if e.end_ms <= gap_start_ms + 300]
    after = [e for e in events if e.start_ms >= gap_end_ms - 300]
    assert len(before) + len(after) == len(events)  # nothing straddles the gap
    assert wer("Ever tried. Ever failed.", " ".join(e.text for e in before)) <= 0.25
    assert wer("No matter. Try again.", " ".join(e.text for e in after)) <= 0.25
    floor = noise_floor_dbfs(beckett)
    for part, offset_ms, found in ((first, PTS0, before), (second, gap_end_ms, after)):
        onset, offset = speech_bounds_ms(part, floor)
        assert abs(found[0].start_ms - (offset_ms + onset)) <= 300
        assert abs(found[-1].end_ms - (offset_ms + offset)) <= 300


async def test_pool_recognize_counts_its_work(pool: RecognizerPool) -> None:
    before = pool.stats()
    text = await pool.recognize(_beckett()[int(0.2 * RATE) : int(1.5 * RATE)].astype(np.float32) / 32768)
    assert normalise(text) == ["ever", "tried"]
    assert await pool.recognize(np.zeros(0, dtype=np.float32)) == ""
    after = pool.stats()
    assert after.jobs == before.jobs + 2
    assert after.busy_s > before.busy_s


def test_engine_rejects_stereo_and_survives_close() -> None:
    engine = MoonshineEngine()
    with pytest.raises(ValueError, match="mono"):
        engine.transcribe(np.zeros((2, 160), dtype=np.float32))
    engine.close()
    engine.close()
    with pytest.raises(ProviderUnavailable):
        engine.transcribe(np.zeros(1600, dtype=np.float32))


def test_missing_package_is_provider_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "moonshine_cpp", None)  # as on a platform without the wheel
    with pytest.raises(ProviderUnavailable, match="moonshine_cpp is not installed") as info:
        MoonshineEngine()
    assert info.value.retryable is False and info.value.provider == "moonshine"


def _model_dir(tmp_path: Path, **replace: bytes | None) -> Path:
    """The wheel's model files linked into ``tmp_path``; ``replace`` swaps a file's content (None drops it)."""
    for name in MODEL_FILES:
        key = name.split(".")[0]
        if key not in replace:
            (tmp_path / name).symlink_to(wheel_model_dir() / name)
        elif (content := replace[key]) is not None:
            (tmp_path / name).write_bytes(content)
    return tmp_path


def test_missing_model_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable, match=r"missing in .*: decoder_model_merged\.ort") as info:
        MoonshineEngine(_model_dir(tmp_path, decoder_model_merged=None))
    assert info.value.retryable is False and info.value.provider == "moonshine"


def test_corrupt_model_file_is_provider_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable, match="Moonshine model failed to load"):
        MoonshineEngine(_model_dir(tmp_path, encoder_model=b"not an ORT flatbuffer"))


def test_truncated_tokenizer_is_provider_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ProviderUnavailable, match="runs past the end"):
        MoonshineEngine(_model_dir(tmp_path, tokenizer=b"\x05<unk>\x03<s>\x09</s>"))


def test_tokenizer_too_small_for_the_model_fails_the_decode(tmp_path: Path) -> None:
    engine = MoonshineEngine(_model_dir(tmp_path, tokenizer=b"\x05<unk>\x03<s>\x04</s>"))
    with pytest.raises(RecognitionFailed, match="invalid token id") as info:
        engine.transcribe(_beckett()[int(0.2 * RATE) : int(1.5 * RATE)].astype(np.float32) / 32768)
    assert info.value.provider == "moonshine"


def test_tokenizer_bin_lengths() -> None:
    long_token = "▁".encode() * 70  # 210 bytes: a two-byte length, 210 = 1 * 128 + (210 - 128)
    data = b"\x03<s>" + b"\x00" + bytes([210 - 128 + 128, 1]) + long_token + b"\x01a"
    assert parse_tokenizer_bin(data) == [b"<s>", b"", long_token, b"a"]
    with pytest.raises(ValueError, match="truncated length"):
        parse_tokenizer_bin(b"\x01a\x85")


def test_tokenizer_decodes_the_wheels_ids() -> None:
    tokenizer = BinTokenizer.load(wheel_model_dir() / "tokenizer.bin")
    assert len(tokenizer.tokens) == 32_000 and tokenizer.tokens[:3] == [b"<unk>", b"<s>", b"</s>"]
    # start, "▁Ever", "▁tried", "▁ever", "▁failed", ",", "▁no", EOS: specials dropped, ▁ is a space, trimmed
    assert tokenizer.decode([1, 18274, 1898, 3926, 5229, 29892, 694, 2]) == "Ever tried ever failed, no"
    assert tokenizer.decode([1, 2]) == ""
    with pytest.raises(ValueError, match="invalid token id 32000"):
        tokenizer.decode([1, 32_000])


def test_audio_shorter_than_one_encoder_frame_is_no_text() -> None:
    model = MoonshineOrt()
    speech = _beckett()[int(0.2 * RATE) :].astype(np.float32) / 32768
    with pytest.raises(ORT_ERRORS):  # what the guard protects against: the encoder's convolutions refuse it
        model.generate(speech[: MIN_SAMPLES - 1])
    assert model.transcribe(speech[: MIN_SAMPLES - 1]) == ""
    tokens = model.generate(speech[:MIN_SAMPLES])  # one frame: ceil(0.056 s * 13) = 1 token after the start
    assert len(tokens) == 2 and tokens[0] == 1


async def test_closed_pool_refuses_work() -> None:
    pool = RecognizerPool(engine_factory=MoonshineEngine)
    pool.close()
    with pytest.raises(ProviderUnavailable):
        await pool.wait_ready()
    with pytest.raises(ProviderUnavailable):
        pool.submit(np.zeros(160, dtype=np.float32))
    with pytest.raises(ProviderUnavailable):
        await LocalTranscriber(pool).open("inbound", RATE)
