"""WER: normalisation of digits, letters and punctuation, and the edit counting."""

from __future__ import annotations

import pytest

from switchboard.transcribe.wer import WerResult, align, normalise, total, wer, word_errors


@pytest.mark.parametrize(
    ("written", "spoken"),
    [
        ("LS6 2AB", "l s six two a b"),
        ("Call 07700 900123.", "call oh seven seven double oh nine double oh one two three"),
        ("It's 42 Elm Street!", "its forty-two elm street"),
        ("Flat 205", "flat two hundred and five"),
        ("M14 5TQ", "M one four five T Q"),
        ("OK, that's fine & dandy", "okay thats fine and dandy"),
        ("15 minutes", "fifteen minutes"),
    ],
)
def test_written_and_spoken_forms_normalise_alike(written: str, spoken: str) -> None:
    assert normalise(written) == normalise(spoken)
    assert wer(spoken, written) == 0.0


def test_normalise_keeps_real_differences() -> None:
    assert normalise("Ever tried, ever failed.") == ["ever", "tried", "ever", "failed"]
    assert normalise("four two") == normalise("42") == ["4", "2"]
    assert normalise("LS6") != normalise("LS5")
    assert normalise("oh, one more thing")[:2] == ["0", "1"]  # both sides get the same reading
    assert normalise("") == []


def test_alignment_counts_each_kind_of_edit() -> None:
    ref = "the boiler is leaking in the kitchen".split()
    assert align(ref, ref) == WerResult(0, 0, 0, 7)
    assert align(ref, "the boiler is leaking in kitchen".split()) == WerResult(0, 1, 0, 7)
    assert align(ref, "the old boiler is leaking in the kitchen".split()) == WerResult(0, 0, 1, 7)
    assert align(ref, "the boiler is leaning in the kitchen".split()) == WerResult(1, 0, 0, 7)
    result = align(ref, [])
    assert result == WerResult(0, 7, 0, 7) and result.wer == 1.0


def test_wer_value_and_corpus_pooling() -> None:
    a = word_errors("one two three four", "one two three fore")  # digits 1 2 3 vs "fore"
    assert a.errors == 1 and a.reference_words == 4 and a.wer == pytest.approx(0.25)
    b = word_errors("hello there", "hello there")
    pooled = total([a, b])
    assert pooled.reference_words == 6 and pooled.wer == pytest.approx(1 / 6)
    assert total([]).wer == 0.0
    assert wer("", "something") == 1.0  # insertions against an empty reference are all wrong
    assert wer("hello", "hello hello hello") == 2.0  # WER is unbounded above
