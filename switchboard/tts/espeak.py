"""espeak-ng through ctypes, from the ``espeakng-loader`` wheel (libespeak-ng 1.52 and its data; GPL-3.0-or-later,
an optional extra loaded at run time): the instant last-resort voice, formant-synthesised, robotic but clear.

The library keeps process-wide state (one voice, one callback, one synthesis at a time), so this module keeps
one lock for it and initialises it once; every instance of :class:`EspeakEngine` shares them. Calls block
(synchronous output mode): run them off the event loop. API:
https://github.com/espeak-ng/espeak-ng/blob/master/src/include/espeak-ng/speak_lib.h
"""

from __future__ import annotations

import ctypes
import importlib
import threading
from collections.abc import Iterator
from typing import Any, Final

import numpy as np

from switchboard.tts.errors import VoiceProtocolError, VoiceUnavailable

NAME: Final = "espeak"
_AUDIO_OUTPUT_SYNCHRONOUS: Final = 2
_INITIALIZE_DONT_EXIT: Final = 0x8000
"""Without it a data error makes the library call ``exit()`` and take the server down."""
_CHARS_UTF8: Final = 1
_POS_CHARACTER: Final = 1
_RATE: Final = 1
_MAX_DATA_PATH: Final = 140
"""A longer data path is silently replaced by the build path compiled into the library."""

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_LOCK = threading.Lock()
"""The library is one per process, so is its lock (held for initialisation and each synthesis)."""
_STATE: dict[str, Any] = {}
"""The loaded library, its sample rate and the callback (kept alive here: ctypes does not own it)."""


def _load() -> tuple[Any, int]:
    """Load and initialise libespeak-ng once per process; the caller holds ``_LOCK``."""
    if "lib" in _STATE:
        return _STATE["lib"], _STATE["rate"]
    try:
        loader = importlib.import_module("espeakng_loader")
        lib = ctypes.CDLL(loader.get_library_path())
        data_dir = str(loader.get_data_path()).removesuffix("/espeak-ng-data")
    except (ImportError, OSError, RuntimeError) as exc:
        raise VoiceUnavailable(f"espeak-ng is not installed (pip install -e '.[voice]'): {exc}",
                               retryable=False, provider=NAME) from exc
    if len(data_dir) > _MAX_DATA_PATH:
        raise VoiceUnavailable(f"espeak-ng data path longer than {_MAX_DATA_PATH} characters: {data_dir}",
                               retryable=False, provider=NAME)
    lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
                                 ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
    lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
    lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
    rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data_dir.encode(), _INITIALIZE_DONT_EXIT)
    if rate <= 0:
        raise VoiceUnavailable(f"espeak_Initialize failed ({rate})", retryable=False, provider=NAME)
    sink: list[np.ndarray] = []

    def on_audio(wav: Any, n: int, _events: Any) -> int:
        if n > 0 and wav:
            sink.append(np.ctypeslib.as_array(wav, shape=(n,)).copy())
        return 0

    callback = _CALLBACK(on_audio)
    lib.espeak_SetSynthCallback(callback)
    _STATE.update(lib=lib, rate=rate, callback=callback, sink=sink, voice=None)
    return lib, rate


class EspeakEngine:
    """Blocking synthesis, one utterance at a time (process-wide); ``synthesize`` yields int16 at ``sample_rate``."""

    name = NAME

    def __init__(self, voice: str = "en-us", words_per_minute: int = 150) -> None:
        self.voice = voice
        self.words_per_minute = words_per_minute
        with _LOCK:
            _, self.sample_rate = _load()

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        with _LOCK:
            lib, _ = _load()
            if _STATE["voice"] != self.voice and lib.espeak_SetVoiceByName(self.voice.encode()) != 0:
                raise VoiceUnavailable(f"espeak-ng has no voice {self.voice!r}", retryable=False, provider=NAME)
            _STATE["voice"] = self.voice
            lib.espeak_SetParameter(_RATE, self.words_per_minute, 0)
            sink: list[np.ndarray] = _STATE["sink"]
            sink.clear()
            data = text.encode("utf-8")
            err = lib.espeak_Synth(data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if err != 0:
                raise VoiceProtocolError(f"espeak_Synth failed ({err})", provider=NAME)
            pieces = list(sink)
            sink.clear()
        yield from pieces


__all__ = ["EspeakEngine"]
