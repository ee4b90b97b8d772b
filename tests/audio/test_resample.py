"""StreamResampler: chunking invariance, exact length, frequency and amplitude kept, state kept across silence."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio.errors import AudioError, InvalidPcmError, UnsupportedRateError
from audio.resample import SUPPORTED_RATES, StreamResampler

PAIRS = [(8000, 16000), (16000, 8000), (24000, 8000), (44100, 8000), (8000, 22050), (48000, 16000)]


def noise(n: int, seed: int = 0, scale: float = 6000.0) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * scale).clip(-32768, 32767).astype(np.int16)


def sine(freq: float, rate: int, n: int, amplitude: float = 10000.0) -> np.ndarray:
    return np.rint(amplitude * np.sin(2 * np.pi * freq * np.arange(n) / rate)).astype(np.int16)


def run(resampler: StreamResampler, chunks: Iterable[np.ndarray]) -> np.ndarray:
    """Push every chunk, flush, and concatenate: the whole stream's output."""
    outs = [resampler.push(chunk) for chunk in chunks]
    outs.append(resampler.flush())
    return np.concatenate(outs)


def one_shot(pcm: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    return run(StreamResampler(in_rate, out_rate), [pcm])


def split(pcm: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Cut ``pcm`` at the given sizes (cycled, zeros included) until it is used up."""
    chunks, pos, i = [], 0, 0
    while pos < len(pcm):
        size = sizes[i % len(sizes)]
        chunks.append(pcm[pos : pos + size])
        pos, i = pos + size, i + 1
    return chunks


@settings(max_examples=40, deadline=None)
@given(
    pair=st.sampled_from(PAIRS),
    sizes=st.lists(st.one_of(st.just(0), st.just(1), st.integers(0, 700)), min_size=1, max_size=30).filter(any),
    seed=st.integers(0, 2**16),
)
def test_any_chunking_gives_exactly_the_one_shot_output(pair: tuple[int, int], sizes: list[int], seed: int) -> None:
    """Tolerance: none. Resampling in float32 and rounding once makes the output bit-identical."""
    pcm = noise(pair[0] // 4, seed)
    chunked = run(StreamResampler(*pair), split(pcm, sizes))
    np.testing.assert_array_equal(chunked, one_shot(pcm, *pair))


@pytest.mark.parametrize(("in_rate", "out_rate"), PAIRS)
@pytest.mark.parametrize("n", [1, 159, 160, 8000, 12345])
def test_total_output_length_after_flush_matches_the_rate_ratio(in_rate: int, out_rate: int, n: int) -> None:
    resampler = StreamResampler(in_rate, out_rate)
    out = run(resampler, split(noise(n), [in_rate // 50]))
    assert abs(len(out) - round(n * out_rate / in_rate)) <= 1
    assert (resampler.samples_in, resampler.samples_out) == (n, len(out))


def test_a_1khz_sine_keeps_its_frequency_amplitude_and_timing_8k_to_16k() -> None:
    pcm = sine(1000, 8000, 8000)
    out = run(StreamResampler(8000, 16000), split(pcm, [160])).astype(np.float64)
    assert len(out) == 16000
    steady = out[800:-800]  # past the filter's start-up and end transients
    spectrum = np.abs(np.fft.rfft(steady * np.hanning(len(steady))))
    assert np.fft.rfftfreq(len(steady), 1 / 16000)[np.argmax(spectrum)] == pytest.approx(1000, abs=2)
    assert np.sqrt(2 * np.mean(steady**2)) == pytest.approx(10000, rel=0.01)
    # Time-aligned output: sample k is input time k/16000, so it matches the ideal sine with no offset.
    ideal = 10000 * np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000)
    assert np.max(np.abs(out - ideal)[800:-800]) < 20


def test_downsampling_removes_content_above_the_new_nyquist() -> None:
    """16 kHz → 8 kHz: a 6 kHz tone must not alias to 2 kHz."""
    out = run(StreamResampler(16000, 8000), split(sine(6000, 16000, 16000), [320])).astype(np.float64)
    assert np.sqrt(np.mean(out[400:-400] ** 2)) < 30  # of 7071 RMS in


def test_a_long_silence_changes_nothing_that_follows() -> None:
    """A resampler that reset on silence would drop the first word's tail and misplace the second word."""
    first, gap, second = noise(8000, 1), np.zeros(5 * 8000, dtype=np.int16), noise(8000, 2)
    stream = np.concatenate([first, gap, second])
    out = run(StreamResampler(8000, 16000), split(stream, [160]))
    np.testing.assert_array_equal(out, one_shot(stream, 8000, 16000))
    # With the filter's memory long past, the second word comes out as if resampled alone, in its place.
    second_alone = one_shot(np.concatenate([np.zeros(8000, dtype=np.int16), second]), 8000, 16000)
    assert np.max(np.abs(out[-len(second) * 2 :].astype(np.int32) - second_alone[16000:])) <= 1
    assert not out[2 * 8000 + 2000 : 2 * 6 * 8000 - 2000].any()  # and the silence stays digital silence


def test_delay_is_what_flush_releases_and_is_reported_while_streaming() -> None:
    resampler = StreamResampler(8000, 16000)
    delays = []
    for chunk in split(noise(8000), [160]):
        resampler.push(chunk)
        delays.append(resampler.delay_samples)
        assert resampler.delay_samples == 2 * resampler.samples_in - resampler.samples_out
    assert delays[0] == 320  # nothing out for the first 20 ms frame
    assert max(delays) <= 2000  # MQ lags at most ~118 ms at 16 kHz (measured 160–1888 samples)
    owed = resampler.delay_samples
    assert len(resampler.flush()) == owed
    assert resampler.delay_samples == 0


def test_push_after_flush_raises_and_second_flush_is_empty() -> None:
    resampler = StreamResampler(8000, 16000)
    resampler.push(noise(160))
    assert len(resampler.flush()) == 320
    assert resampler.finished
    assert len(resampler.flush()) == 0
    with pytest.raises(AudioError, match="flushed"):
        resampler.push(noise(160))


def test_full_scale_input_saturates_instead_of_wrapping() -> None:
    """Filtering a full-scale square overshoots int16; the overshoot must clip, not wrap to the other sign."""
    pattern = np.repeat(np.array([1, -1]), 4)
    full = run(StreamResampler(8000, 16000), [np.tile(pattern * 32767, 1000).astype(np.int16)])
    half = run(StreamResampler(8000, 16000), [np.tile(pattern * 16383, 1000).astype(np.int16)])
    assert full.max() == 32767 and full.min() == -32768  # the overshoot reached both rails
    expected = np.clip(half.astype(np.int32) * 32767 / 16383, -32768, 32767)
    assert np.max(np.abs(full - expected)) <= 2


@pytest.mark.parametrize(
    "bad",
    [np.zeros(160, dtype=np.float32), np.zeros(160, dtype=np.int32), np.zeros((160, 1), dtype=np.int16)],
)
def test_push_rejects_anything_but_a_1d_int16_array(bad: np.ndarray) -> None:
    with pytest.raises(InvalidPcmError, match="1-D int16"):
        StreamResampler(8000, 16000).push(bad)


def test_push_rejects_bytes_naming_the_type() -> None:
    with pytest.raises(InvalidPcmError, match="bytes"):
        StreamResampler(8000, 16000).push(bytes(320))  # type: ignore[arg-type]


@pytest.mark.parametrize(("in_rate", "out_rate"), [(8000, 11025), (7999, 16000), (16000, 0), (96000, 8000)])
def test_unsupported_rate_pairs_are_refused(in_rate: int, out_rate: int) -> None:
    with pytest.raises(UnsupportedRateError, match=f"{in_rate} Hz → {out_rate} Hz"):
        StreamResampler(in_rate, out_rate)


def test_every_supported_pair_constructs() -> None:
    for in_rate in SUPPORTED_RATES:
        for out_rate in SUPPORTED_RATES:
            assert StreamResampler(in_rate, out_rate).delay_samples == 0


def test_unknown_quality_is_refused() -> None:
    with pytest.raises(AudioError, match="quality 'XQ'"):
        StreamResampler(8000, 16000, quality="XQ")


@pytest.mark.parametrize("quality", ["QQ", "LQ", "HQ", "VHQ"])
def test_other_qualities_are_chunking_invariant_too(quality: str) -> None:
    pcm = noise(4000, 3)
    chunked = run(StreamResampler(8000, 16000, quality), split(pcm, [0, 1, 160, 333]))
    np.testing.assert_array_equal(chunked, run(StreamResampler(8000, 16000, quality), [pcm]))
