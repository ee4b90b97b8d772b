"""The recogniser's other readings of a turn (``Turn.alternatives``, from the local beam): a postcode or number
only an alternative holds is taken, marked for confirmation; the best reading wins when it has one; nothing is
taken that no reading holds."""

from __future__ import annotations

from switchboard.extract.offline import extract_facts
from switchboard.extract.schema import CallFacts, Transcript

GREEDY = "Yes, you can reach me on O seven seven, Dud below nine, Dud below one, two, three."
BEAM = "Yes, you can reach me on oh seven seven double oh nine double oh one two three"


def facts(*segments: tuple[str, str, int] | tuple[str, str, int, list[str]]) -> CallFacts:
    return extract_facts(Transcript.from_segments(segments))  # type: ignore[arg-type]


def test_a_number_only_an_alternative_reading_holds_is_taken_for_confirmation() -> None:
    got = facts(("agent", "And a number?", 0), ("caller", GREEDY, 1000, [GREEDY + ",", BEAM]))
    assert got.callback_number == "+447700900123"
    assert got.evidence is not None and got.evidence.callback_number is not None
    assert got.evidence.callback_number.source == "said" and got.evidence.callback_number.confidence <= 0.6
    assert got.needs_confirmation == ["callback_number"]


def test_a_postcode_from_an_alternative_and_none_without_one() -> None:
    heard = ("caller", "Bristol, post-cognacic, sig, say char.", 0)
    assert facts(heard).postcode is None
    got = facts((*heard, ["Bristol, postcode B S six, six H R."]))
    assert got.postcode == "BS6 6HR" and "postcode" in got.needs_confirmation


def test_the_best_reading_wins_when_it_has_a_value() -> None:
    got = facts(("caller", "It's L S six, two A B.", 0, ["It's L S six, two A D."]))
    assert got.postcode == "LS6 2AB" and got.needs_confirmation == []


def test_alternatives_that_hold_nothing_fill_nothing() -> None:
    got = facts(("caller", GREEDY, 0, ["Dud below nine", "Dead below nine, one two three"]))
    assert got.callback_number is None and got.postcode is None


def test_segments_without_alternatives_still_read() -> None:
    transcript = Transcript.from_segments([("caller", " hello ", 5), ("agent", "hi", 1),
                                           ("caller", "x", 9, [" a ", ""])])
    assert [(t.speaker, t.text, t.alternatives) for t in transcript.turns] == [
        ("agent", "hi", ()), ("caller", "hello", ()), ("caller", "x", ("a",))]
