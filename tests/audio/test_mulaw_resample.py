"""MulawResampler: the same output, from the same push, as decoding and resampling every push; soxr called only
when a block is due; a wrong schedule falls back to every push."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio.errors import AudioError, InvalidPcmError
from audio.mulaw import decode
from audio.mulaw_resample import MulawResampler, block_schedule
from audio.resample import StreamResampler


def mulaw_noise(n: int, seed: int) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def assert_same_as_every_push(ours: MulawResampler, ulaw: bytes, sizes: list[int], quality: str = "MQ") -> None:
    """After every push: the same samples out as StreamResampler fed that push decoded, and the same delay."""
    reference = StreamResampler(8000, 16000, quality)
    pos = i = 0
    while pos < len(ulaw):
        chunk = ulaw[pos : pos + sizes[i % len(sizes)]]
        pos, i = pos + len(chunk), i + 1
        np.testing.assert_array_equal(ours.push(chunk), reference.push(decode(chunk)))
        assert ours.delay_samples == reference.delay_samples
        assert (ours.samples_in, ours.samples_out) == (reference.samples_in, reference.samples_out)
    np.testing.assert_array_equal(ours.flush(), reference.flush())
    assert ours.samples_out == reference.samples_out and ours.delay_samples == 0


@settings(max_examples=40, deadline=None)
@given(
    quality=st.sampled_from(["MQ", "HQ", "LQ"]),
    sizes=st.lists(st.one_of(st.just(0), st.just(1), st.just(160), st.integers(0, 2000)), min_size=1,
                   max_size=30).filter(any),
    seed=st.integers(0, 2**16),
)
def test_output_and_its_timing_equal_resampling_every_push(quality: str, sizes: list[int], seed: int) -> None:
    """Tolerance: none, per push. Skipping soxr calls must never hold a sample back that soxr would have given."""
    ours = MulawResampler(16000, quality)
    assert ours.skips_calls
    assert_same_as_every_push(ours, mulaw_noise(8000 * 3, seed), sizes, quality)


def test_the_measured_schedule_is_where_soxr_releases_fed_one_sample_at_a_time() -> None:
    first, step = block_schedule(8000, 16000, "MQ") or (0, 0)
    stream = StreamResampler(8000, 16000)
    releases = [n for n in range(1, 5000) if stream.push(np.zeros(1, dtype=np.int16)).size]
    assert releases == list(range(first, 5000, step))[: len(releases)] and len(releases) >= 4


def test_twenty_ms_frames_wait_in_mulaw_until_a_block_is_due() -> None:
    first, step = block_schedule(8000, 16000, "MQ") or (0, 0)
    ours, frame = MulawResampler(16000), mulaw_noise(160, 1)
    for n in range(160, first, 160):
        assert not ours.push(frame).size and ours.held_samples == n  # soxr not called: nothing handed over
    assert ours.push(frame).size and ours.held_samples == 0  # the frame that reaches `first` releases a block
    frames = -(-(first + 3 * step - ours.samples_in) // 160)  # enough to reach three more blocks
    released = [(bool(ours.push(frame).size), ours.held_samples == 0) for _ in range(frames)]
    assert released.count((True, True)) == 3 and released.count((False, False)) == len(released) - 3
    # one soxr call per block afterwards, and no other


def test_a_schedule_that_promises_too_early_falls_back_to_every_push() -> None:
    ours = MulawResampler(16000, schedule=(100, 866))
    assert_same_as_every_push(ours, mulaw_noise(8000, 2), [160, 37, 400])
    assert not ours.skips_calls


def test_feeding_every_push_without_a_schedule_is_the_same_too() -> None:
    assert_same_as_every_push(MulawResampler(16000, schedule=None), mulaw_noise(8000, 3), [160, 1, 0, 999])


def test_push_after_flush_raises_second_flush_is_empty_and_bad_input_is_named() -> None:
    ours = MulawResampler(16000)
    with pytest.raises(InvalidPcmError, match="ndarray"):
        ours.push(np.zeros(160, dtype=np.uint8))  # type: ignore[arg-type]
    ours.push(mulaw_noise(160, 4))
    assert len(ours.flush()) == 320 and ours.finished
    assert len(ours.flush()) == 0
    with pytest.raises(AudioError, match="flushed"):
        ours.push(b"\xff" * 160)
