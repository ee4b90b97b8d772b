"""G.711 μ-law codec: bit-exact against ``audioop`` for every code and every int16 value, plus round-trip bounds."""

from __future__ import annotations

import importlib
import warnings
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from audio import MULAW_SILENCE, mulaw
from audio.errors import InvalidPcmError

ALL_CODES = bytes(range(256))
ALL_INT16 = np.arange(-32768, 32768, dtype=np.int32).astype(np.int16)
G711_PEAK = 32124
"""Largest magnitude μ-law represents on the 16-bit scale; louder samples saturate to it."""


@pytest.fixture(scope="module")
def audioop() -> ModuleType:
    """The reference: stdlib ``audioop`` (< 3.13) or the ``audioop-lts`` package, which keeps the name."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # stdlib audioop warns on import in 3.11/3.12
        return importlib.import_module("audioop")


def test_decode_is_bit_exact_with_audioop_for_all_256_codes(audioop: ModuleType) -> None:
    assert mulaw.decode(ALL_CODES).tobytes() == audioop.ulaw2lin(ALL_CODES, 2)


def test_encode_is_bit_exact_with_audioop_for_all_65536_values(audioop: ModuleType) -> None:
    expected = audioop.lin2ulaw(ALL_INT16.tobytes(), 2)
    assert mulaw.encode(ALL_INT16) == expected
    assert mulaw.encode(ALL_INT16.tobytes()) == expected


def test_decode_returns_int16_samples_one_per_byte() -> None:
    out = mulaw.decode(bytes([0x00, 0x80, 0xFF, 0x7F]))
    assert out.dtype == np.int16
    assert out.tolist() == [-G711_PEAK, G711_PEAK, 0, 0]


def test_decode_accepts_bytearray_memoryview_and_empty() -> None:
    frame = bytes(range(0, 256, 3))
    expected = mulaw.decode(frame).tolist()
    assert mulaw.decode(bytearray(frame)).tolist() == expected
    assert mulaw.decode(memoryview(frame)).tolist() == expected
    assert mulaw.decode(b"").shape == (0,)


def test_decode_returns_a_fresh_writable_array() -> None:
    first = mulaw.decode(b"\x00\x01")
    first[:] = 7
    assert mulaw.decode(b"\x00\x01").tolist() == [-G711_PEAK, -31100]


def test_decode_float32_is_int16_scaled_to_unit_range() -> None:
    out = mulaw.decode_float32(ALL_CODES)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, mulaw.decode(ALL_CODES).astype(np.float32) / 32768)
    assert -1.0 <= out.min() and out.max() < 1.0


def test_every_code_round_trips_except_negative_zero(audioop: ModuleType) -> None:
    again = mulaw.encode(mulaw.decode(ALL_CODES))
    changed = {code: again[code] for code in range(256) if again[code] != code}
    assert changed == {0x7F: MULAW_SILENCE}
    assert audioop.lin2ulaw(audioop.ulaw2lin(b"\x7f", 2), 2) == bytes([MULAW_SILENCE])


def test_silence_encodes_to_the_silence_code() -> None:
    assert mulaw.encode(np.zeros(160, dtype=np.int16)) == bytes([MULAW_SILENCE]) * 160


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.int16, st.integers(0, 400)))
def test_round_trip_error_stays_within_half_a_quantisation_step(pcm: np.ndarray) -> None:
    """μ-law keeps ~5 bits of relative precision: error ≤ |x|/32 + 8 (half a step plus the 2 dropped bits)."""
    out = mulaw.decode(mulaw.encode(pcm)).astype(np.int32)
    x = pcm.astype(np.int32)
    in_range = np.abs(x) <= G711_PEAK
    assert np.all(np.abs(out - x)[in_range] <= np.abs(x)[in_range] / 32 + 8)
    np.testing.assert_array_equal(out[~in_range], np.sign(x[~in_range]) * G711_PEAK)


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=400))
def test_encode_of_decode_is_identity_up_to_negative_zero(ulaw: bytes) -> None:
    assert mulaw.encode(mulaw.decode(ulaw)) == ulaw.replace(b"\x7f", bytes([MULAW_SILENCE]))


def test_encode_of_two_dimensional_frames_is_interleaved_in_c_order() -> None:
    stereo = np.array([[1000, -1000], [2000, -2000]], dtype=np.int16)
    assert mulaw.encode(stereo) == mulaw.encode(np.array([1000, -1000, 2000, -2000], dtype=np.int16))
    assert mulaw.encode(stereo.T) == mulaw.encode(np.array([1000, 2000, -1000, -2000], dtype=np.int16))


def test_encode_reads_bytes_as_little_endian() -> None:
    assert mulaw.encode(b"\x00\x80") == mulaw.encode(np.array([-32768], dtype=np.int16))


@pytest.mark.parametrize("data", [b"\x00", bytes(161), bytearray(3)])
def test_encode_rejects_odd_byte_length(data: bytes) -> None:
    with pytest.raises(InvalidPcmError, match=f"odd length {len(data)}"):
        mulaw.encode(data)


@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.uint16, np.dtype(">i2")])
def test_encode_rejects_arrays_that_are_not_native_int16(dtype: np.dtype) -> None:
    with pytest.raises(InvalidPcmError, match="int16"):
        mulaw.encode(np.zeros(4, dtype=dtype))
