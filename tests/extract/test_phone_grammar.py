"""The spoken phone-number grammar on generated spoken forms (groups, "oh", "double"/"treble", "hundred",
"plus four four", written digits) and on repeats, corrections and near misses."""

from __future__ import annotations

import random

import pytest

from switchboard.extract.phone import digit_runs, find_phone, parse_phone, read_phones, splice
from tests.extract.spoken_forms import PHONES, e164, phone_forms, spoken_phone

FORMS = phone_forms(300)


def test_at_least_200_generated_forms_of_many_numbers() -> None:
    assert len(FORMS) >= 200 and len({text for text, _ in FORMS}) >= 290
    assert len({expected for _, expected in FORMS}) == len(PHONES)


@pytest.mark.parametrize(("text", "expected"), FORMS, ids=[f"{n}" for n in range(len(FORMS))])
def test_generated_spoken_form(text: str, expected: str) -> None:
    readings = read_phones(text)
    assert [r.value for r in readings] == [expected], text
    assert readings[0].confidence >= 0.85 and not readings[0].corrected


def _corrections(seed: int) -> list[tuple[str, str, str]]:
    """(text, first number, corrected number): the caller says a number, then corrects it in full or its end."""
    rng = random.Random(seed)
    cases = []
    for number in PHONES:
        digits = number.replace(" ", "")
        tail = rng.choice([3, 4])
        other = digits[:-tail] + "".join(str((int(d) + 3) % 10) for d in digits[-tail:])
        cue = rng.choice(["no, sorry, it's", "sorry, I mean", "no wait,", "actually, no,", "sorry, no,"])
        first = spoken_phone(number, rng)
        if rng.random() < 0.5:
            fixed = spoken_phone(f"{other[:5]} {other[5:]}", rng)
        else:
            fixed = " ".join(["oh" if d == "0" else ["zero", "one", "two", "three", "four", "five", "six", "seven",
                                                     "eight", "nine"][int(d)] for d in other[-tail:]])
        cases.append((f"my number is {first}, {cue} {fixed}", e164(number), "+44" + other[1:]))
    return cases


CORRECTIONS = _corrections(3)


@pytest.mark.parametrize(("text", "first", "fixed"), CORRECTIONS, ids=[c[2] for c in CORRECTIONS])
def test_corrections_replace_the_number_or_its_end(text: str, first: str, fixed: str) -> None:
    readings = read_phones(text)
    assert [r.value for r in readings] == [first, fixed], text
    assert readings[-1].corrected and not readings[0].corrected
    assert find_phone(text) == fixed


def test_partial_correction_is_less_sure_than_a_full_one() -> None:
    [_, partial] = read_phones("oh seven seven double oh nine double oh one two three, no sorry, one two four")
    [_, full] = read_phones("07700 900123, no sorry, 07700 900124")
    assert partial.value == full.value == "+447700900124"
    assert partial.confidence < full.confidence


def test_digits_after_a_number_without_a_correction_word_are_not_spliced() -> None:
    assert [r.value for r in read_phones("07700 900123 and the flat is number four five")] == ["+447700900123"]


@pytest.mark.parametrize(("said", "expected"), [
    ("Oh, oh seven seven double oh, nine double oh, one two three.", "+447700900123"),  # "Oh," is a sigh
    ("plus four four, seven seven double oh, nine double oh, one two three", "+447700900123"),
    ("+44 (0)7700 900123", "+447700900123"),
    ("double oh four four seven seven double oh nine double oh one two three", "+447700900123"),
    ("oh one one three, four nine six, oh seven one five", "+441134960715"),
    ("oh two oh, seven nine four six, oh oh one eight", "+442079460018"),
    ("oh seven seven double oh, nine hundred, one two three", "+447700900123"),
    ("oh seven seven double oh, nine double oh, one two three for you", "+447700900123"),
    ("oh seven seven double oh, nine oh for, one two three", "+447700904123"),  # "for" between digits is 4
    ("oh one six three two, nine six oh, one one one", "+441632960111"),
    ("oh one six nine seven seven, four five six seven", "+44169774567"),  # a short 01 number
])
def test_spoken_forms(said: str, expected: str) -> None:
    assert find_phone(said) == expected


@pytest.mark.parametrize("text", [
    "Flat three, twenty seven Ashgrove Terrace", "my boiler says F twenty eight", "call me on oh seven seven",
    "oh seven seven double oh nine double oh one two",  # a digit short: never padded into a number
    "for two to four", "", "three hundred and twelve Stratford Road", "it's been going on for two weeks",
])
def test_no_number(text: str) -> None:
    assert read_phones(text) == []


def test_a_number_cut_from_a_longer_run_is_less_sure() -> None:
    [reading] = read_phones("twenty seven oh seven seven double oh nine double oh one two three")
    assert reading.value == "+447700900123" and reading.confidence < 0.85


def test_homophone_digits_lower_confidence() -> None:
    [weak] = read_phones("oh seven seven double oh, nine oh for, one two three")
    [clean] = read_phones("oh seven seven double oh, nine oh four, one two three")
    assert weak.confidence < clean.confidence


def test_runs_and_spans() -> None:
    text = "call plus four four seven seven double oh nine double oh one two three please"
    [run] = digit_runs(text)
    assert run.digits == "+447700900123" and text[run.start:run.end].startswith("four four")


def test_parse_and_splice() -> None:
    assert parse_phone("07700900123") == ("+447700900123", 0.92)
    assert parse_phone("0770090012") is None
    assert splice("+447700900123", "456") == "+447700900456"
    assert splice("+447700900123", "4567890123") is None
