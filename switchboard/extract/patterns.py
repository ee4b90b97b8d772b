"""Spoken numbers and addresses for the offline extractor: tokens, number words, house numbers and streets.

Input is speech recognition output, so numbers arrive as words: "twenty seven" → 27, "three hundred and twelve"
→ 312, "nine hundred" → 900; "zero", "nought" and "oh" are 0 and "double"/"treble" repeat the next digit. Phone
numbers and postcodes have their own grammars (:mod:`~switchboard.extract.phone`,
:mod:`~switchboard.extract.postcode`) on the same tokens.

Pure functions over strings; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

UNITS: Final = {"zero": 0, "nought": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                "seven": 7, "eight": 8, "nine": 9}
TEENS: Final = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
                "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
TENS: Final = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
               "ninety": 90}
REPEAT: Final = {"double": 2, "treble": 3, "triple": 3}
FILLERS: Final = frozenset({"um", "erm", "uh", "er", "ah", "hmm"})
STREET_SUFFIXES: Final = ("road", "street", "lane", "avenue", "drive", "terrace", "close", "way", "vale",
                          "crescent", "grove", "place", "gardens", "court", "hill", "park", "row", "square",
                          "walk", "mews", "rise", "green", "view", "parade", "gate", "wynd", "row")

_TOKEN: Final = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?|[^\sA-Za-z0-9'’-]")


@dataclass(frozen=True, slots=True)
class Token:
    """One word, number or punctuation mark, with its place in the source text."""

    text: str
    start: int
    end: int

    @property
    def low(self) -> str:
        return self.text.lower()


def tokenize(text: str) -> list[Token]:
    """Words (with an apostrophe suffix kept: "it's"), digit runs and single punctuation marks; hyphens split."""
    return [Token(m[0], m.start(), m.end()) for m in _TOKEN.finditer(text)]


def read_number(tokens: list[Token], i: int, *, o_is_zero: bool = False) -> tuple[str, int] | None:
    """Read one spoken or written number at ``tokens[i]``: its digits and the index after it, or None.

    ``o_is_zero`` also reads a bare "o" as 0 (phone numbers; in postcodes it is the letter O).
    """
    low = tokens[i].low
    if low.isdigit():
        return low, i + 1
    if low in REPEAT and i + 1 < len(tokens) and tokens[i + 1].low not in REPEAT:
        nxt = read_number(tokens, i + 1, o_is_zero=o_is_zero)
        if nxt is not None:
            digits, end = nxt
            return digits[0] * REPEAT[low] + digits[1:], end
        return None
    value: int | None = None
    if low in UNITS or (o_is_zero and low == "o"):
        value, i = UNITS.get(low, 0), i + 1
        if low not in ("oh", "o", "zero", "nought") and _word(tokens, i) == "hundred":
            value, i = value * 100, i + 1
            if _word(tokens, i) == "and" and _word(tokens, i + 1) in {*UNITS, *TEENS, *TENS} - {"oh"}:
                i += 1
            rest = _small(tokens, i)
            if rest is not None:
                value, i = value + rest[0], rest[1]
        return str(value), i
    small = _small(tokens, i)
    return None if small is None else (str(small[0]), small[1])


def _small(tokens: list[Token], i: int) -> tuple[int, int] | None:
    """1–99 in words: a teen, or a tens word optionally followed by a unit ("twenty seven")."""
    low = _word(tokens, i)
    if low in TEENS:
        return TEENS[low], i + 1
    if low in TENS:
        unit = _word(tokens, i + 1)
        if unit in UNITS and UNITS[unit] > 0:
            return TENS[low] + UNITS[unit], i + 2
        return TENS[low], i + 1
    if low in UNITS and UNITS[low] > 0:
        return UNITS[low], i + 1
    return None


def _word(tokens: list[Token], i: int) -> str:
    return tokens[i].low if i < len(tokens) else ""


def numerals(text: str) -> str:
    """``text`` with spoken numbers written as digits ("twenty seven Ashgrove" → "27 Ashgrove").

    "oh" becomes 0 only before another number word, so "Oh no" stays as it is.
    """
    tokens, out, last, i = tokenize(text), [], 0, 0
    while i < len(tokens):
        if tokens[i].low == "oh" and (i + 1 >= len(tokens) or read_number(tokens, i + 1) is None):
            i += 1
            continue
        number = read_number(tokens, i)
        if number is None:
            i += 1
            continue
        digits, end = number
        out.append(text[last:tokens[i].start] + digits)
        last, i = tokens[end - 1].end, end
    out.append(text[last:])
    return "".join(out)


_ADDRESS: Final = re.compile(
    r"(?:\b(?P<unit>flat|apartment|unit)\s+(?P<unit_no>\d+[a-z]?)\s*,?\s*)?"
    r"\b(?P<number>\d{1,4}[a-z]?)\s*,?\s+"
    rf"(?P<street>(?:[a-z][\w'’]*\s+){{1,3}}?(?:{'|'.join(STREET_SUFFIXES)}))\b"
    r"(?:\s*,\s*(?!postcode\b)(?P<town>[a-z][\w'’]*(?:\s+(?!postcode\b)[a-z][\w'’]*)?)(?=\s*[,.;]|\s+postcode\b|$))?",
    re.IGNORECASE,
)


def find_address(text: str) -> str | None:
    """"[Flat N, ]NUMBER STREET SUFFIX[, TOWN]" from ``text`` in a tidy form, or None."""
    match = _ADDRESS.search(numerals(text))
    if match is None:
        return None
    street = " ".join(_cap(w) for w in match["street"].split())
    parts = [f"{match['unit'].capitalize()} {match['unit_no']}"] if match["unit"] else []
    parts.append(f"{match['number']} {street}")
    if match["town"]:
        parts.append(" ".join(_cap(w) for w in match["town"].split()))
    return ", ".join(parts)


def _cap(word: str) -> str:
    """Capitalise words the recogniser lower-cased; leave "McLeish" as said."""
    return word.capitalize() if word.islower() else word


__all__ = ["find_address", "numerals", "read_number", "tokenize"]
