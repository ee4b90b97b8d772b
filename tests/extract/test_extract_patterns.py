"""Spoken-form parsing: the digit and word variants speech recognition produces."""

from __future__ import annotations

import pytest

from switchboard.extract.patterns import find_address, numerals
from switchboard.extract.phone import digit_runs, find_phone
from switchboard.extract.postcode import find_postcode


@pytest.mark.parametrize("said", [
    "oh seven seven double oh, nine double oh, one two three",
    "oh seven seven oh oh nine oh oh one two three",
    "07700 900123",
    "07700900123",
    "0 7 7 0 0 9 0 0 1 2 3",
    "zero seven seven double zero, nine double nought, one two three",
    "oh seven seven double oh, nine hundred, one two three",
    "plus four four seven seven double oh nine double oh one two three",
    "+44 7700 900123",
    "o seven seven o o nine o o one two three",
    "um, it's oh seven seven, erm, double oh, nine double oh, one two three",
    "Oh, oh seven seven double oh, nine double oh, one two three.",
])
def test_phone_variants_read_as_e164(said: str) -> None:
    assert find_phone(f"you can reach me on {said} thanks") == "+447700900123"


def test_phone_takes_the_last_number_said() -> None:
    text = ("it's oh seven seven double oh nine double oh one two three, sorry, "
            "oh seven seven double oh nine double oh four five six")
    assert find_phone(text) == "+447700900456"


@pytest.mark.parametrize("text", [
    "Flat three, twenty seven Ashgrove Terrace",  # a house number is not a phone number
    "my boiler says F twenty eight",
    "call me on oh seven seven double oh",  # too short
    "",
])
def test_no_phone(text: str) -> None:
    assert find_phone(text) is None


def test_digit_runs_keep_going_through_pauses_and_stop_at_words() -> None:
    runs = digit_runs("oh seven seven, double oh. nine double oh, then twelve")
    assert [r.digits for r in runs] == ["07700900", "12"]
    assert [r.digits for r in digit_runs("three hundred and twelve Stratford")] == ["312"]


@pytest.mark.parametrize("said,expected", [
    ("LS6 2AB", "LS6 2AB"),
    ("ls62ab", "LS6 2AB"),
    ("L S six two A B", "LS6 2AB"),
    ("L S six, two A B.", "LS6 2AB"),
    ("l. s. six, two a. b.", "LS6 2AB"),
    ("L S 6, 2 A. B.", "LS6 2AB"),
    ("el ess six two A B", "LS6 2AB"),
    ("M fourteen, five T Q", "M14 5TQ"),
    ("C F twenty four, three H Q", "CF24 3HQ"),
    ("S E fifteen, four Q N", "SE15 4QN"),
    ("G twenty, eight double Q", "G20 8QQ"),
    ("B eleven, one A X", "B11 1AX"),
    ("S W one A, one A A", "SW1A 1AA"),
    ("E C one A, one B B", "EC1A 1BB"),
])
def test_postcode_variants(said: str, expected: str) -> None:
    assert find_postcode(f"the postcode is {said} thanks") == expected


def test_postcode_right_after_a_spoken_phone_number() -> None:
    said = "oh seven seven oh oh nine oh oh four five six L S six two A B"
    assert (find_phone(said), find_postcode(said)) == ("+447700900456", "LS6 2AB")


@pytest.mark.parametrize("text", ["my boiler says F twenty eight", "flat three, twenty seven", "a B C", ""])
def test_no_postcode(text: str) -> None:
    assert find_postcode(text) is None


def test_numerals_rewrite_spoken_numbers_only() -> None:
    assert numerals("Flat three, twenty seven Ashgrove Terrace") == "Flat 3, 27 Ashgrove Terrace"
    assert numerals("three hundred and twelve Stratford Road") == "312 Stratford Road"
    assert numerals("Oh no, it's forty one") == "Oh no, it's 41"


@pytest.mark.parametrize("said,expected", [
    ("Flat three, twenty seven Ashgrove Terrace, Leeds, postcode L S six", "Flat 3, 27 Ashgrove Terrace, Leeds"),
    ("it's forty one Kelvin Drive, Glasgow, G twenty", "41 Kelvin Drive, Glasgow"),
    ("three hundred and twelve Stratford Road, Birmingham.", "312 Stratford Road, Birmingham"),
    ("flat two, nine cotham vale, bristol, postcode", "Flat 2, 9 Cotham Vale, Bristol"),
    ("12 Arran Street", "12 Arran Street"),
])
def test_address(said: str, expected: str) -> None:
    assert find_address(said) == expected


def test_no_address_without_a_street() -> None:
    assert find_address("the flat upstairs, number twelve") is None
