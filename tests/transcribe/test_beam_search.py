"""beam_search over a bigram table standing in for the decoder: greedy equivalence, biasing, parents, n-best."""

from __future__ import annotations

import numpy as np
import pytest

from switchboard.transcribe.beam import beam_search, log_softmax
from switchboard.transcribe.bias import ContextBias

W = "\u2581"
PIECES = ["", "", "", f"{W}Dud", f"{W}Dou", "ble", f"{W}below", f"{W}oh", f"{W}nine"]
START, EOS = 1, 2
DUD, DOU, BLE, BELOW, OH, NINE = 3, 4, 5, 6, 7, 8


def table() -> np.ndarray:
    """log P(next | last): "Dud below nine" is likelier than "Double oh nine", but not by much."""
    p = np.full((len(PIECES), len(PIECES)), 1e-4)
    p[START, DUD], p[START, DOU] = 0.55, 0.45
    p[DUD, BELOW] = 1.0
    p[DOU, BLE] = 1.0
    p[BLE, OH] = 1.0
    p[BELOW, NINE] = 1.0
    p[OH, NINE] = 1.0
    p[NINE, EOS] = 1.0
    return log_softmax(np.log(p).astype(np.float32))


class Model:
    def __init__(self) -> None:
        self.table = table()
        self.calls: list[tuple[list[int], list[int]]] = []

    def step(self, parents: list[int], tokens: list[int]) -> np.ndarray:
        self.calls.append((parents, tokens))
        return self.table[tokens]

    def search(self, width: int, bias: ContextBias | None = None) -> list[tuple[int, ...]]:
        found = beam_search(self.table[[START]], self.step, start=START, eos=EOS, max_len=10, width=width,
                            pieces=PIECES, bias=bias)
        return [h.tokens for h in found]


def greedy(model: Model) -> tuple[int, ...]:
    tokens = [START]
    while tokens[-1] != EOS:
        tokens.append(int(model.table[tokens[-1]].argmax()))
    return tuple(tokens)


def test_width_one_without_bias_is_greedy() -> None:
    model = Model()
    assert model.search(1)[0] == greedy(model) == (START, DUD, BELOW, NINE, EOS)


def test_the_bias_lifts_a_close_second_reading_over_the_likelier_one() -> None:
    model = Model()
    assert model.search(4)[0] == (START, DUD, BELOW, NINE, EOS)
    biased = model.search(4, ContextBias(["double", "oh"], bonus=0.5))
    assert biased[0] == (START, DOU, BLE, OH, NINE, EOS)
    assert (START, DUD, BELOW, NINE, EOS) in biased  # the other reading stays in the n-best


def test_the_bias_cannot_invent_what_the_model_finds_unlikely() -> None:
    model = Model()
    model.table[START] = log_softmax(np.log(np.where(np.arange(len(PIECES)) == DUD, 0.999, 1e-4)).astype(
        np.float32))
    assert model.search(4, ContextBias(["double", "oh"], bonus=0.5))[0][1] == DUD


def test_each_step_extends_the_hypotheses_it_was_given() -> None:
    model = Model()
    model.search(2)
    first_parents, first_tokens = model.calls[0]
    assert first_parents == [0, 0] and sorted(first_tokens) == [DUD, DOU]
    for parents, tokens in model.calls[1:]:
        assert len(parents) == len(tokens) <= 2 and all(0 <= p < 2 for p in parents)


def test_out_of_tokens_the_open_hypotheses_are_returned_and_a_bad_width_is_refused() -> None:
    model = Model()
    found = beam_search(model.table[[START]], model.step, start=START, eos=EOS, max_len=2, width=2,
                        pieces=PIECES)
    assert found and all(h.tokens[-1] != EOS for h in found)
    with pytest.raises(ValueError, match="width"):
        model.search(0)
