"""Beam search with shallow-fusion context biasing over any autoregressive decoder step.

Sans-I/O: the model is a ``step(parents, tokens)`` callable that extends the hypotheses kept at the previous step
(``parents`` index them) by one token each and returns the next-token log-probabilities, one row per hypothesis;
:mod:`.moonshine_ort` implements it with the decoder's KV cache. Each step keeps the ``width`` best extensions among
each hypothesis' ``width × 2`` likeliest tokens, scored by model log-probability plus the
:class:`~.bias.ContextBias` bonus; a hypothesis that picks EOS is finished. The search ends when ``width``
hypotheses have finished or at ``max_len`` tokens, as Whisper's ``BeamSearchDecoder`` does
(https://github.com/openai/whisper, ``whisper/decoding.py``). Finished hypotheses are ranked by their total score
divided by their length (Whisper's default ``length_penalty=None``), which stops beam search from preferring
hypotheses that end early.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from switchboard.transcribe.bias import START, BiasState, ContextBias

LogProbs = npt.NDArray[np.float32]
Step = Callable[[list[int], list[int]], LogProbs]
"""``step(parents, tokens)``: row ``i`` of the result is the next-token log-probabilities after hypothesis
``parents[i]`` of the previous step extended by ``tokens[i]``."""


@dataclass(frozen=True, slots=True)
class Hypothesis:
    """Token ids (start and EOS included when present), the model's log-probability and the bias bonus kept."""

    tokens: tuple[int, ...]
    logprob: float
    bonus: float
    state: BiasState = START

    @property
    def score(self) -> float:
        """Mean score per generated token: what finished hypotheses are ranked by."""
        return (self.logprob + self.bonus) / max(1, len(self.tokens) - 1)


def log_softmax(logits: npt.NDArray[np.float32]) -> LogProbs:
    """Row-wise log-softmax in float32 (numerically safe)."""
    shifted = logits - logits.max(axis=-1, keepdims=True)
    out: LogProbs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    return out


def beam_search(first: LogProbs, step: Step, *, start: int, eos: int, max_len: int, width: int,
                pieces: Sequence[str], bias: ContextBias | None = None) -> list[Hypothesis]:
    """Finished hypotheses, best first (at least one). ``first`` is the log-probabilities after ``start`` (one
    row); ``pieces[t]`` is token ``t``'s text for the bias ("" for specials)."""
    if width < 1:
        raise ValueError("width must be >= 1")
    beams = [Hypothesis((start,), 0.0, 0.0)]
    logprobs = first
    finished: list[Hypothesis] = []
    for _ in range(max_len):
        ranked = sorted(_extensions(beams, logprobs, eos, width, pieces, bias),
                        key=lambda ext: -(ext[1].logprob + ext[1].bonus))
        kept: list[tuple[int, Hypothesis]] = []
        for parent, hypothesis in ranked:
            if hypothesis.tokens[-1] == eos:
                finished.append(hypothesis)
            else:
                kept.append((parent, hypothesis))
            if len(kept) == width:
                break
        if len(finished) >= width or not kept:
            break
        beams = [hypothesis for _, hypothesis in kept]
        logprobs = step([parent for parent, _ in kept], [h.tokens[-1] for h in beams])
    else:
        finished.extend(_ended(b, bias) for b in beams)  # out of tokens: the open ones count as they are
    return sorted(finished, key=lambda h: -h.score)


def _extensions(beams: list[Hypothesis], logprobs: LogProbs, eos: int, width: int, pieces: Sequence[str],
                bias: ContextBias | None) -> list[tuple[int, Hypothesis]]:
    out: list[tuple[int, Hypothesis]] = []
    top = min(2 * width, logprobs.shape[-1])
    for index, beam in enumerate(beams):
        row = logprobs[index]
        for token in np.argpartition(-row, top - 1)[:top].tolist():
            logprob = beam.logprob + float(row[token])
            if token == eos:
                out.append((index, _ended(Hypothesis((*beam.tokens, eos), logprob, beam.bonus, beam.state), bias)))
                continue
            state, delta = (beam.state, 0.0) if bias is None else bias.advance(beam.state, pieces[token])
            out.append((index, Hypothesis((*beam.tokens, token), logprob, beam.bonus + delta, state)))
    return out


def _ended(hypothesis: Hypothesis, bias: ContextBias | None) -> Hypothesis:
    if bias is None:
        return hypothesis
    return Hypothesis(hypothesis.tokens, hypothesis.logprob, hypothesis.bonus + bias.finish(hypothesis.state),
                      START)


__all__ = ["Hypothesis", "LogProbs", "Step", "beam_search", "log_softmax"]
