"""Moonshine Base English run on the ``onnxruntime`` package: encoder, merged decoder, greedy search, tokenizer.

Why not the wheel's own engine: ``moonshine_cpp==0.1.4``'s ``libmoonshine.so`` is compiled for AVX-512, so on
a CPU without it (the AVX2 EPYC machines CI runs on) merely constructing its model kills the process with
SIGILL. We keep only the wheel's model files (``models/base-en/``: ``encoder_model.ort``,
``decoder_model_merged.ort``, ``tokenizer.bin``; nothing is downloaded) and run them on PyPI's ``onnxruntime``,
which picks its kernels for the CPU at run time. The package itself is never imported (that loads the library).

The decode loop is upstream's ``MoonshineModel::transcribe`` (https://github.com/usefulsensors/moonshine,
``core/moonshine-model.cpp``): encode once; start token 1; the first decoder step runs with
``use_cache_branch=False``, later steps feed only the last token with the decoder cache from ``present.*`` and
the encoder cache of the first step; greedy argmax until token 2 (EOS) or ``ceil(seconds × 13)`` tokens
(the wheel's library uses 13 tokens per second of audio). :meth:`MoonshineOrt.search` is our own addition: beam
search with contextual biasing (:mod:`.beam`, :mod:`.bias`) on the same steps, the hypotheses batched in one
decoder run per step and the decoder cache reordered by parent. ``tokenizer.bin`` is upstream's ``BinTokenizer``
format (``core/bin-tokenizer/bin-tokenizer.cpp``). One intra-op and one inter-op thread per session: the
recogniser pool gets its parallelism from threads, and ``InferenceSession.run`` releases the GIL.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from switchboard.transcribe.beam import Hypothesis, LogProbs, beam_search, log_softmax
from switchboard.transcribe.bias import ContextBias

PACKAGE = "moonshine_cpp"
MODEL_FILES = ("encoder_model.ort", "decoder_model_merged.ort", "tokenizer.bin")
SAMPLE_RATE = 16_000
START_TOKEN, EOS_TOKEN = 1, 2
MAX_TOKENS_PER_SECOND = 13.0
LAYERS, KV_HEADS, HEAD_DIM = 8, 8, 52  # Moonshine Base
MIN_SAMPLES = 127 + 64 * 12  # the encoder's three convolutions need 895 samples (56 ms) for one frame
SPACE = "\u2581"  # SentencePiece's "▁" word-start marker
Float32 = npt.NDArray[np.float32]
# What InferenceSession raises (Fail, InvalidArgument, NoSuchFile, InvalidProtobuf, ...): plain Exceptions.
ORT_ERRORS: tuple[type[Exception], ...] = tuple(
    value for value in vars(ort_state).values() if isinstance(value, type) and issubclass(value, Exception))


def wheel_model_dir() -> Path:
    """``models/base-en`` inside the installed ``moonshine_cpp`` wheel, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"{PACKAGE} is not installed (it ships the Moonshine model files)")
    return Path(spec.origin).parent / "models" / "base-en"


def parse_tokenizer_bin(data: bytes) -> list[bytes]:
    """Token id → bytes. Each entry is a length then that many bytes; a first length byte ≥ 128 means two
    bytes, ``second × 128 + first − 128``; a length of 0 is an unused id."""
    tokens: list[bytes] = []
    offset = 0
    while offset < len(data):
        count = data[offset]
        offset += 1
        if count >= 128:
            if offset >= len(data):
                raise ValueError(f"tokenizer.bin: truncated length at byte {offset - 1}")
            count = data[offset] * 128 + count - 128
            offset += 1
        if offset + count > len(data):
            raise ValueError(f"tokenizer.bin: token {len(tokens)} runs past the end ({count} bytes at {offset})")
        tokens.append(data[offset : offset + count])
        offset += count
    return tokens


class BinTokenizer:
    """Decoding only: concatenate the tokens' bytes, skip specials (``<...>``), ``▁`` → space, trim."""

    def __init__(self, tokens: Sequence[bytes]) -> None:
        self.tokens = list(tokens)

    @classmethod
    def load(cls, path: Path) -> BinTokenizer:
        return cls(parse_tokenizer_bin(path.read_bytes()))

    def pieces(self) -> list[str]:
        """Each token's text as the bias reads it ("▁" kept, specials and unused ids "")."""
        return ["" if not piece or _special(piece) else piece.decode("utf-8", errors="replace")
                for piece in self.tokens]

    def decode(self, ids: Sequence[int]) -> str:
        out = bytearray()
        for token in ids:
            if not 0 <= token < len(self.tokens) or not self.tokens[token]:
                raise ValueError(f"invalid token id {token}")
            piece = self.tokens[token]
            if _special(piece):
                continue
            out += piece
        return out.decode("utf-8", errors="replace").replace(SPACE, " ").strip()


def _special(piece: bytes) -> bool:
    return len(piece) > 2 and piece.startswith(b"<") and piece.endswith(b">")


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED  # as upstream
    options.log_severity_level = 4  # failures surface as exceptions; do not also print them
    return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])


class MoonshineOrt:
    """One loaded model (two sessions and the tokenizer); one decode at a time."""

    def __init__(self, model_dir: Path | None = None) -> None:
        model_dir = wheel_model_dir() if model_dir is None else model_dir
        missing = [name for name in MODEL_FILES if not (model_dir / name).is_file()]
        if missing:
            raise FileNotFoundError(f"Moonshine model file(s) missing in {model_dir}: {', '.join(missing)}")
        self.tokenizer = BinTokenizer.load(model_dir / "tokenizer.bin")
        self._pieces = self.tokenizer.pieces()
        self._encoder = _session(model_dir / "encoder_model.ort")
        self._decoder = _session(model_dir / "decoder_model_merged.ort")
        self._outputs = [output.name for output in self._decoder.get_outputs()]
        self._cache_names = [f"{layer}.{part}.{kv}" for layer in range(LAYERS)
                             for part in ("decoder", "encoder") for kv in ("key", "value")]
        inputs = {i.name for i in self._decoder.get_inputs()}
        expected = {"input_ids", "encoder_hidden_states", "use_cache_branch"}
        expected |= {f"past_key_values.{name}" for name in self._cache_names}
        if not expected <= inputs or "logits" not in self._outputs:
            raise ValueError(f"{model_dir / 'decoder_model_merged.ort'} is not a Moonshine Base merged decoder")

    def generate(self, audio: Float32) -> list[int]:
        """Token ids for mono float32 16 kHz ``audio`` (at least ``MIN_SAMPLES``), start and EOS included."""
        max_len = math.ceil(audio.size / SAMPLE_RATE * MAX_TOKENS_PER_SECOND)
        hidden = self._encoder.run(["last_hidden_state"], {"input_values": audio.reshape(1, -1)})[0]
        empty = np.zeros((1, KV_HEADS, 1, HEAD_DIM), dtype=np.float32)  # ignored by the no-cache branch
        past = {f"past_key_values.{name}": empty for name in self._cache_names}
        tokens = [START_TOKEN]
        for step in range(max_len):
            feed = {"input_ids": np.array([tokens] if step == 0 else [tokens[-1:]], dtype=np.int64),
                    "encoder_hidden_states": hidden, "use_cache_branch": np.array([step > 0]), **past}
            results = dict(zip(self._outputs, self._decoder.run(self._outputs, feed), strict=True))
            for name in self._cache_names:
                if step == 0 or ".decoder." in name:  # the encoder cache is computed once, at step 0
                    past[f"past_key_values.{name}"] = results[f"present.{name}"]
            token = int(results["logits"][0, -1].argmax())
            tokens.append(token)
            if token == EOS_TOKEN:
                break
        return tokens

    def search(self, audio: Float32, width: int, bias: ContextBias | None = None) -> list[Hypothesis]:
        """Beam search (:func:`.beam.beam_search`): finished hypotheses best first, start and EOS included."""
        max_len = math.ceil(audio.size / SAMPLE_RATE * MAX_TOKENS_PER_SECOND)
        hidden = self._encoder.run(["last_hidden_state"], {"input_values": audio.reshape(1, -1)})[0]
        empty = np.zeros((1, KV_HEADS, 1, HEAD_DIM), dtype=np.float32)
        feed = {"input_ids": np.array([[START_TOKEN]], dtype=np.int64), "encoder_hidden_states": hidden,
                "use_cache_branch": np.array([False]),
                **{f"past_key_values.{name}": empty for name in self._cache_names}}
        results = dict(zip(self._outputs, self._decoder.run(self._outputs, feed), strict=True))
        cache = {name: results[f"present.{name}"] for name in self._cache_names}
        tiled: dict[int, dict[str, Float32]] = {}  # encoder states and cache per batch size, made once

        def step(parents: list[int], tokens: list[int]) -> LogProbs:
            n = len(parents)
            if n not in tiled:
                tiled[n] = {"encoder_hidden_states": np.repeat(hidden, n, axis=0)} | {
                    f"past_key_values.{name}": np.repeat(cache[name], n, axis=0)
                    for name in self._cache_names if ".encoder." in name}
            order = np.array(parents)
            feed = {"input_ids": np.array(tokens, dtype=np.int64).reshape(n, 1),
                    "use_cache_branch": np.array([True]), **tiled[n],
                    **{f"past_key_values.{name}": cache[name][order]
                       for name in self._cache_names if ".decoder." in name}}
            out = dict(zip(self._outputs, self._decoder.run(self._outputs, feed), strict=True))
            for name in self._cache_names:
                if ".decoder." in name:
                    cache[name] = out[f"present.{name}"]
            return log_softmax(out["logits"][:, -1])

        return beam_search(log_softmax(results["logits"][:, -1]), step, start=START_TOKEN, eos=EOS_TOKEN,
                           max_len=max_len, width=width, pieces=self._pieces, bias=bias)

    def transcribe_nbest(self, audio: Float32, width: int, bias: ContextBias | None = None) -> list[str]:
        """Distinct non-empty texts of the beam's hypotheses that ended (EOS), best first, at most ``width``
        ([] for audio under ``MIN_SAMPLES``). A hypothesis that ran out of tokens is a runaway (Moonshine
        repeats "00:00, 00:00, …" on some noisy audio, and the beam can rank such a loop first): never kept, and
        when no hypothesis ended the result is greedy search's, as upstream decodes."""
        if audio.size < MIN_SAMPLES:
            return []
        audio = np.ascontiguousarray(audio, dtype=np.float32)
        texts: list[str] = []
        for hypothesis in self.search(audio, width, bias):
            text = self.tokenizer.decode(hypothesis.tokens)
            if hypothesis.tokens[-1] == EOS_TOKEN and text and text not in texts:
                texts.append(text)
        if not texts:
            return [text] if (text := self.transcribe(audio)) else []
        return texts[:width]

    def transcribe(self, audio: Float32) -> str:
        """Text of mono float32 16 kHz ``audio`` in [-1, 1]; under ``MIN_SAMPLES`` (too short for a word and
        for the encoder) it is ""."""
        if audio.size < MIN_SAMPLES:
            return ""
        return self.tokenizer.decode(self.generate(np.ascontiguousarray(audio, dtype=np.float32)))
