"""The spoken-postcode grammar on generated spoken forms (letter names, NATO words, "S for sugar", "double",
"oh", numbers said as numbers, recogniser spellings) and on the confusions phone lines cause."""

from __future__ import annotations

import random

import pytest

from switchboard.extract.postcode import AREAS, CONFUSABLE, parse_postcode, read_postcodes
from tests.extract.spoken_forms import POSTCODES, postcode_forms, spoken_postcode

FORMS = postcode_forms(300)
CONFIRM_BELOW = 0.8  # switchboard.extract.evidence.CONFIRM_BELOW: a reading under it must be confirmed


def test_at_least_200_generated_forms_of_many_postcodes() -> None:
    assert len(FORMS) >= 200 and len({text for text, _ in FORMS}) >= 290
    assert len({expected for _, expected in FORMS}) == len(POSTCODES)


@pytest.mark.parametrize(("text", "expected"), FORMS, ids=[f"{n}" for n in range(len(FORMS))])
def test_generated_spoken_form(text: str, expected: str) -> None:
    readings = read_postcodes(text)
    assert [r.value for r in readings] == [expected], text


def _confused(seed: int) -> list[tuple[str, str, str]]:
    """(text, expected, heard area): the area's letter swapped for a confusable one that makes no valid area."""
    rng = random.Random(seed)
    cases = []
    for postcode in POSTCODES:
        outward, inward = postcode.split()
        area = "".join(c for c in outward[:2] if c.isalpha())
        swaps = [(i, other) for i, ch in enumerate(area) for other in sorted(CONFUSABLE.get(ch, {}))
                 if area[:i] + other + area[i + 1:] not in AREAS]
        for i, other in rng.sample(swaps, min(2, len(swaps))):
            heard = area[:i] + other + area[i + 1:]
            said = spoken_postcode(f"{heard}{outward[len(area):]} {inward}", rng) if rng.random() < 0.5 \
                else " ".join(heard) + f" {outward[len(area):]}, {inward[0]} {inward[1]} {inward[2]}"
            cases.append((f"the postcode is {said}", postcode, heard))
    return cases


CONFUSED = _confused(11)


def test_enough_confusions() -> None:
    assert len(CONFUSED) >= 60


@pytest.mark.parametrize(("text", "expected", "heard"), CONFUSED, ids=[c[2] + c[1] for c in CONFUSED])
def test_impossible_area_is_corrected_with_alternatives_and_low_confidence(text: str, expected: str,
                                                                           heard: str) -> None:
    [reading] = read_postcodes(text)
    assert expected in (reading.value, *reading.alternatives), (text, reading)
    assert reading.confidence < CONFIRM_BELOW


@pytest.mark.parametrize(("said", "value", "also"), [
    ("C S twenty four, three H Q", "CF24 3HQ", "CM24 3HQ"),  # ess/eff
    ("CS24 3HQ", "CF24 3HQ", "CM24 3HQ"),
    ("S C fifteen, four Q N", "SE15 4QN", "ST15 4QN"),  # see/ee
    ("SC15 4QN", "SE15 4QN", "SG15 4QN"),
    ("L F six two A B", "LS6 2AB", None),
    ("E M one, two N G", "EN1 2NG", None),  # em/en; EM is no area
])
def test_classic_confusions(said: str, value: str, also: str | None) -> None:
    [reading] = read_postcodes(said)
    assert (reading.value, reading.corrected) == (value, True)
    assert reading.confidence < CONFIRM_BELOW
    if also:
        assert also in reading.alternatives


@pytest.mark.parametrize("postcode", [p for p in POSTCODES if p[-2] in "AH" or p[-1] in "AH"])
def test_eight_in_a_letter_slot_is_a_or_h(postcode: str) -> None:
    outward, inward = postcode.split()
    said = " ".join([*outward, inward[0], *("eight" if c in "AH" else c for c in inward[1:])])
    [reading] = read_postcodes(said)
    assert postcode in (reading.value, *reading.alternatives)
    assert {reading.value, *reading.alternatives} >= {postcode.replace("H", "A") if "H" in inward else postcode}
    assert reading.corrected and reading.confidence < CONFIRM_BELOW


def test_eight_as_heard_in_the_issue() -> None:
    [reading] = read_postcodes("L. S. six, two, eight, D")
    assert (reading.value, reading.alternatives[0]) == ("LS6 2AD", "LS6 2HD")
    assert reading.heard == "LS628D" and reading.confidence < 0.5


@pytest.mark.parametrize(("said", "expected"), [
    ("C R oh, two Y R", "CR0 2YR"),  # "oh" in a digit slot is 0
    ("oh el eight, one double you A", "OL8 1WA"),  # … and in a letter slot O
    ("O X one three B G", "OX1 3BG"),
    ("Z E one, oh double L", "ZE1 0LL"),
])
def test_oh_by_position(said: str, expected: str) -> None:
    assert [r.value for r in read_postcodes(said)] == [expected]


def test_inward_letters_never_used_are_corrected() -> None:
    [reading] = read_postcodes("L S six two A C")  # C is never an inward letter
    assert reading.value.startswith("LS6 2A") and reading.value != "LS6 2AC"
    assert "LS6 2AE" in (reading.value, *reading.alternatives) and reading.corrected


def test_exact_reading_is_confident_and_uncorrected() -> None:
    [reading] = read_postcodes("the postcode is L S six, two A B")
    assert (reading.value, reading.corrected, reading.heard) == ("LS6 2AB", False, "LS62AB")
    assert reading.confidence >= 0.9


def test_a_correction_gives_two_readings_last_wins() -> None:
    readings = read_postcodes("LS6 2AB, sorry, no, LS6 2AD")
    assert [r.value for r in readings] == ["LS6 2AB", "LS6 2AD"]


def test_reading_spans_point_at_the_words() -> None:
    text = "yeah it's M fourteen, five T Q thanks"
    [reading] = read_postcodes(text)
    assert text[reading.start:reading.end] == "M fourteen, five T Q"


@pytest.mark.parametrize("text", [
    "my boiler says F twenty eight", "flat three, twenty seven Ashgrove Terrace", "a B C", "",
    "I see you are there at eight", "call me on oh seven seven double oh nine double oh one two three",
    "it's about half past two, I think", "the code on the boiler is E one one nine", "A B one two three",
    "room 2B, floor 3",
])
def test_no_postcode(text: str) -> None:
    assert read_postcodes(text) == []


def test_parse_postcode_lists_costs() -> None:
    assert parse_postcode("LS62AB")[0] == ("LS6 2AB", 0.0)
    assert parse_postcode("QQ12AB") == []
    assert parse_postcode("") == []


@pytest.mark.parametrize(("said", "expected", "flagged"), [
    ("C, f, twenty, four, three, h, q..", "CF24 3HQ", True),  # the recogniser's commas inside "twenty four"
    ("G twenty, eight Q Q", "G20 8QQ", False),  # a comma between the outward and inward codes
    ("J. twenty, a P. Q..", "G20 8PQ", True),  # recogniser output for G20 8QQ: "a" in a digit slot is 8
])
def test_recogniser_forms(said: str, expected: str, flagged: bool) -> None:
    [reading] = read_postcodes(said)
    assert reading.value == expected
    assert (reading.confidence < CONFIRM_BELOW) is flagged
