"""Moonshine Base English (model files from the ``moonshine_cpp==0.1.4`` wheel) behind a thread pool.

:class:`MoonshineEngine` runs the model on the ``onnxruntime`` package (:mod:`.moonshine_ort`), not through the
wheel's own ``libmoonshine.so``: that library needs AVX-512 and kills the process with SIGILL on CPUs without
it, so it is never loaded. Moonshine is not streaming and decoding is super-linear in length (CPU seconds,
median of 5: 0.68 s for 2 s of speech, 1.54 s for 5 s, 1.93 s for 8 s; ``scripts/bench_moonshine.py``), so
callers cut utterances with a VAD and decode each at its end. ONNX Runtime releases the GIL during a run, so a
thread pool gives real parallelism; each worker thread owns one engine (≈560 MB RSS once it has decoded:
≈95 MB of model, the rest ONNX Runtime's arena), loaded on its first job.
"""

from __future__ import annotations

import asyncio
import threading
import time
import wave
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from switchboard.transcribe.bias import DEFAULT_BONUS, DEFAULT_WORDS, ContextBias
from switchboard.transcribe.errors import ProviderUnavailable, RecognitionFailed
from switchboard.transcribe.moonshine_ort import ORT_ERRORS, MoonshineOrt, wheel_model_dir
from switchboard.transcribe.wer import wer

PROVIDER = "moonshine"
SAMPLE_RATE = 16_000
SELF_TEST_TEXT = "Ever tried ever failed, no matter try again fail again fail better."
SELF_TEST_MAX_WER = 0.2
DEFAULT_BEAM = 4
"""Beam width of the local decoder: hypotheses are batched in one decoder run per step, and a step's cost is
mostly the weights' dequantisation, so four cost far less than four times one."""
Float32 = npt.NDArray[np.float32]
MODEL_ERRORS: tuple[type[Exception], ...] = (ValueError, *ORT_ERRORS)  # malformed files or a failed run
LOAD_ERRORS: tuple[type[Exception], ...] = (OSError, *MODEL_ERRORS)


@dataclass(frozen=True, slots=True)
class Recognition:
    """What one decode heard: the best ``text`` and the beam's other readings of the same audio, best first."""

    text: str
    alternatives: tuple[str, ...] = ()


class Recognizer(Protocol):
    """One loaded speech-to-text engine; used by one thread at a time."""

    def transcribe(self, samples: Float32) -> str: ...

    def self_test(self) -> str: ...

    def close(self) -> None: ...


@runtime_checkable
class NBestRecognizer(Recognizer, Protocol):
    """An engine that also gives alternative readings (:class:`MoonshineEngine` with a beam)."""

    def recognise(self, samples: Float32) -> Recognition: ...


class MoonshineEngine:
    """One Moonshine model, loaded at construction (≈0.9 s); not safe to call from two threads at once.

    ``model_dir`` holds ``encoder_model.ort``, ``decoder_model_merged.ort`` and ``tokenizer.bin``; by default
    the wheel's ``models/base-en``. The self-test clip is the wheel's ``test-data/beckett.wav``. With
    ``beam_width`` 1 and no ``bias`` it decodes greedily as upstream does; otherwise by beam search with the
    context bias (:meth:`~.moonshine_ort.MoonshineOrt.search`), and :meth:`recognise` also gives the beam's
    other readings.
    """

    def __init__(self, model_dir: Path | None = None, *, beam_width: int = 1,
                 bias: ContextBias | None = None) -> None:
        if beam_width < 1:
            raise ValueError("beam_width must be >= 1")
        self._width, self._bias = beam_width, bias
        try:
            model_dir = wheel_model_dir() if model_dir is None else model_dir
            self._model: MoonshineOrt | None = MoonshineOrt(model_dir)
        except LOAD_ERRORS as exc:  # missing, unreadable or malformed model files
            raise ProviderUnavailable(f"Moonshine model failed to load: {exc}", retryable=False,
                                      provider=PROVIDER) from exc

    def transcribe(self, samples: Float32) -> str:
        """Text of mono float32 16 kHz audio in [-1, 1]; an empty (or sub-56 ms) array gives ""."""
        return self.recognise(samples).text

    def recognise(self, samples: Float32) -> Recognition:
        """:meth:`transcribe` with the beam's other readings (none when greedy)."""
        if samples.ndim != 1:
            raise ValueError(f"expected mono samples, got shape {samples.shape}")
        if self._model is None:
            raise ProviderUnavailable("engine is closed", retryable=False, provider=PROVIDER)
        try:
            if self._width == 1 and self._bias is None:
                return Recognition(self._model.transcribe(samples))
            texts = self._model.transcribe_nbest(samples, self._width, self._bias)
            return Recognition(texts[0], tuple(texts[1:])) if texts else Recognition("")
        except MODEL_ERRORS as exc:  # a run failed, or a token id the tokenizer lacks
            raise RecognitionFailed(f"Moonshine decode failed for {samples.size} samples: {exc}",
                                    provider=PROVIDER) from exc

    def self_test(self) -> str:
        """Decode the bundled ``beckett.wav``; raise ``ProviderUnavailable`` unless it reads as expected."""
        try:
            audio = read_wav_16k(wheel_model_dir().parent.parent / "test-data" / "beckett.wav")
        except (OSError, EOFError, wave.Error, ValueError) as exc:
            raise ProviderUnavailable(f"self-test clip unreadable: {exc}", retryable=False,
                                      provider=PROVIDER) from exc
        text = self.transcribe(audio)
        score = wer(SELF_TEST_TEXT, text)
        if score > SELF_TEST_MAX_WER:
            raise ProviderUnavailable(f"self-test mismatch (WER {score:.2f}): {text!r}", retryable=False,
                                      provider=PROVIDER)
        return text

    def close(self) -> None:
        """Drop the sessions now instead of at garbage collection; idempotent."""
        self._model = None


def moonshine_factory(beam_width: int = DEFAULT_BEAM, vocabulary: Sequence[str] = (),
                      bias_bonus: float = DEFAULT_BONUS) -> Callable[[], MoonshineEngine]:
    """An engine factory for :class:`RecognizerPool`: beam search biased towards the NATO alphabet, number words and
    the business's ``vocabulary`` (street and area names); ``bias_bonus`` 0 turns biasing off, ``beam_width`` 1
    with it is upstream's greedy search."""
    if beam_width < 1 or bias_bonus < 0:
        raise ValueError("beam_width must be >= 1 and bias_bonus >= 0")
    bias = ContextBias((*DEFAULT_WORDS, *vocabulary), bias_bonus) if bias_bonus > 0 else None
    return lambda: MoonshineEngine(beam_width=beam_width, bias=bias)


def read_wav_16k(path: Path) -> Float32:
    """Mono PCM16 16 kHz WAV → float32 in [-1, 1] (only what the self-test and tests need)."""
    with wave.open(str(path), "rb") as wav:
        if (wav.getnchannels(), wav.getsampwidth(), wav.getframerate()) != (1, 2, SAMPLE_RATE):
            raise ValueError(f"{path}: expected mono 16-bit {SAMPLE_RATE} Hz")
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Work done by a pool; ``busy_s`` is worker wall time, so the real-time factor is ``busy_s /
    audio_s``."""

    jobs: int
    audio_s: float
    busy_s: float
    engines: int


class RecognizerPool:
    """Worker threads, each with its own engine, so recognition never runs on the event loop.

    Jobs queue in the executor in submission order; a stream keeps at most one job in flight so its
    utterances are recognised in order. Each engine is loaded lazily by its own thread on that thread's
    first job.
    """

    def __init__(self, workers: int = 1, engine_factory: Callable[[], Recognizer] = MoonshineEngine) -> None:
        if workers < 1:
            raise ValueError("workers must be >= 1")
        self.workers = workers
        self._factory = engine_factory
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="stt-worker")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._engines: list[Recognizer] = []
        self._jobs, self._audio_s, self._busy_s = 0, 0.0, 0.0
        self._closed = False

    def _engine(self) -> Recognizer:
        engine: Recognizer | None = getattr(self._local, "engine", None)
        if engine is None:
            with self._lock:  # one load at a time: loads are memory-heavy and share the lock with stats
                engine = self._factory()
                self._engines.append(engine)
            self._local.engine = engine
        return engine

    def _run(self, samples: Float32) -> Recognition:
        started = time.perf_counter()
        try:
            engine = self._engine()
            if isinstance(engine, NBestRecognizer):
                return engine.recognise(samples)
            return Recognition(engine.transcribe(samples))
        finally:
            with self._lock:
                self._jobs += 1
                self._audio_s += samples.size / SAMPLE_RATE
                self._busy_s += time.perf_counter() - started

    def _check_open(self) -> None:
        if self._closed:
            raise ProviderUnavailable("recognizer pool is closed", retryable=False, provider=PROVIDER)

    def submit(self, samples: Float32) -> asyncio.Future[Recognition]:
        """Queue float32 16 kHz ``samples`` for recognition; cancelling the future drops it if not started."""
        self._check_open()
        return asyncio.get_running_loop().run_in_executor(self._executor, self._run, samples)

    async def recognize(self, samples: Float32) -> str:
        """Text of ``samples`` (float32, 16 kHz), decoded in a worker thread."""
        return (await self.submit(samples)).text

    async def wait_ready(self) -> None:
        """Load an engine (if none is yet) so that a broken install fails here, not mid-call."""
        self._check_open()
        if self._engines:
            return
        await asyncio.get_running_loop().run_in_executor(self._executor, self._engine)

    async def self_test(self) -> str:
        """Run the engine's self-test in a worker: a startup check that the model really recognises speech."""
        self._check_open()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: self._engine().self_test())

    def stats(self) -> PoolStats:
        with self._lock:
            return PoolStats(self._jobs, self._audio_s, self._busy_s, len(self._engines))

    async def aclose(self) -> None:
        """``close()`` without blocking the event loop while a running decode finishes."""
        await asyncio.to_thread(self.close)

    def close(self) -> None:
        """Drop queued jobs, wait for running ones, free every engine; idempotent."""
        self._closed = True
        self._executor.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            engines, self._engines = self._engines, []
        for engine in engines:
            engine.close()


__all__ = ["DEFAULT_BEAM", "MoonshineEngine", "NBestRecognizer", "PoolStats", "Recognition", "Recognizer",
           "RecognizerPool", "moonshine_factory", "read_wav_16k"]
