"""The one check every consumer of 16-bit PCM makes: a 1-D int16 ndarray, or :class:`InvalidPcmError`."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from audio.errors import InvalidPcmError

Pcm16 = npt.NDArray[np.int16]


def describe(value: object) -> str:
    """What ``value`` is, for an error message (dtype and shape of an array, else its type)."""
    if isinstance(value, np.ndarray):
        return f"ndarray(dtype={value.dtype}, shape={value.shape})"
    return type(value).__name__


def check_pcm(pcm: object) -> Pcm16:
    """``pcm`` if it is a 1-D int16 ndarray, else raise :class:`InvalidPcmError` naming what it is."""
    if not isinstance(pcm, np.ndarray) or pcm.dtype != np.int16 or pcm.ndim != 1:
        raise InvalidPcmError(f"expected 1-D int16 PCM, got {describe(pcm)}")
    return pcm


__all__ = ["Pcm16", "check_pcm", "describe"]
