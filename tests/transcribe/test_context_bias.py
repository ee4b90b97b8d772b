"""ContextBias: a bonus per letter while a hypothesis spells a bias word, taken back when it spells another."""

from __future__ import annotations

import pytest

from switchboard.transcribe.bias import DEFAULT_WORDS, START, ContextBias, words_of

W = "\u2581"


def score(bias: ContextBias, pieces: list[str]) -> float:
    state, total = START, 0.0
    for piece in pieces:
        state, delta = bias.advance(state, piece)
        total += delta
    return total + bias.finish(state)


def test_a_whole_bias_word_keeps_one_bonus_per_letter() -> None:
    bias = ContextBias(["double"], bonus=0.5)
    assert score(bias, [f"{W}Dou", "ble", f"{W}oh"]) == pytest.approx(3.0)


def test_a_prefix_that_becomes_another_word_gives_everything_back() -> None:
    bias = ContextBias(["double"], bonus=0.5)
    assert score(bias, [f"{W}Dud", f"{W}below"]) == pytest.approx(0.0)
    state, delta = bias.advance(START, f"{W}Dou")
    assert delta == pytest.approx(1.5)  # earned while it may still be "double"
    _, back = bias.advance(state, "bt")
    assert back == pytest.approx(-1.5)


def test_a_word_cut_short_by_the_end_or_by_punctuation_is_not_rewarded() -> None:
    bias = ContextBias(["treble"], bonus=0.5)
    assert score(bias, [f"{W}tre"]) == pytest.approx(0.0)
    assert score(bias, [f"{W}tre", "."]) == pytest.approx(0.0)
    assert score(bias, [f"{W}Treble", ",", f"{W}five"]) == pytest.approx(3.0)


def test_a_longer_word_that_starts_with_a_bias_word_is_not_it() -> None:
    bias = ContextBias(["oh"], bonus=0.5)
    assert score(bias, [f"{W}Oh", "io"]) == pytest.approx(0.0)
    assert score(bias, [f"{W}Oh", ","]) == pytest.approx(1.0)


def test_vocabulary_phrases_become_lower_case_words() -> None:
    assert words_of(["Ashgrove Terrace, Headingley", "St. John's-Wood", "A"]) == (
        "ashgrove", "terrace", "headingley", "st", "johns", "wood")
    assert {"double", "treble", "oh", "sierra", "quebec"} <= set(DEFAULT_WORDS)
    assert "four" not in DEFAULT_WORDS  # would turn "for" into "four" in ordinary speech


def test_no_bonus_without_bias_words_and_a_negative_bonus_is_refused() -> None:
    assert score(ContextBias([], bonus=1.0), [f"{W}double"]) == 0.0
    with pytest.raises(ValueError, match="bonus"):
        ContextBias(["oh"], bonus=-1)
