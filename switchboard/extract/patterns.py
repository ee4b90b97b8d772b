"""Spoken-form parsing for the offline extractor: numbers, phone numbers, postcodes, addresses.

Input is speech recognition output, so the same fact arrives in many spellings: "LS6 2AB", "L S six two A B",
"l. s. six, two a. b."; "07700 900123", "oh seven seven double oh, nine double oh, one two three". Everything
here tokenises the text once and reads numbers the way people say them in the UK:

- digits: "zero", "nought", "oh" (and "o" inside a phone number) are 0; "double"/"triple" repeat the next digit;
- numbers: "twenty seven" → 27, "three hundred and twelve" → 312, "nine hundred" → 900;
- letters: single letters ("l", "l.") and the unambiguous letter names ("aitch", "ess", "zed", …).

Pure functions over strings; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from switchboard.extract.schema import normalise_phone, normalise_postcode

UNITS: Final = {"zero": 0, "nought": 0, "oh": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
                "seven": 7, "eight": 8, "nine": 9}
TEENS: Final = {"ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
                "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19}
TENS: Final = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
               "ninety": 90}
REPEAT: Final = {"double": 2, "triple": 3}
LETTER_NAMES: Final = {"aitch": "H", "haitch": "H", "ess": "S", "zed": "Z", "el": "L", "ef": "F", "dee": "D",
                       "bee": "B", "gee": "G", "pee": "P", "tee": "T", "vee": "V", "kay": "K", "jay": "J",
                       "cue": "Q", "queue": "Q"}
FILLERS: Final = frozenset({"um", "erm", "uh", "er", "ah", "hmm"})
STREET_SUFFIXES: Final = ("road", "street", "lane", "avenue", "drive", "terrace", "close", "way", "vale",
                          "crescent", "grove", "place", "gardens", "court", "hill", "park", "row", "square",
                          "walk", "mews", "rise", "green", "view", "parade", "gate", "wynd", "row")

_TOKEN: Final = re.compile(r"[A-Za-z0-9]+(?:['’][A-Za-z]+)?|[^\sA-Za-z0-9'’-]")
_POSTCODE_IN: Final = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}")


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


def digit_runs(text: str) -> list[str]:
    """Maximal runs of spoken/written digits; pauses (commas, full stops) and fillers do not break a run,
    any other word does. A leading "plus" is kept as "+"."""
    tokens, runs, current, i = tokenize(text), [], "", 0
    while i < len(tokens):
        low = tokens[i].low
        number = read_number(tokens, i, o_is_zero=True)
        if number is not None:
            current, i = current + number[0], number[1]
            continue
        if low in FILLERS or low in {",", ".", "-"}:
            i += 1
            continue
        if current:
            runs.append(current)
        current, i = ("+" if low == "plus" else ""), i + 1
    if current.strip("+"):
        runs.append(current)
    return [run for run in runs if run.strip("+")]


def find_phone(text: str) -> str | None:
    """The last UK-style phone number said in ``text`` as E.164, or None.

    A run may carry extra digits ("oh, it's oh seven…", a house number just before): the number is the last
    11-digit window that starts with a single trunk 0, or a +44 / 44 form.
    """
    found: str | None = None
    for run in digit_runs(text):
        if run.startswith("+") or (run.startswith("44") and len(run) == 12):
            found = normalise_phone(run if run.startswith("+") else "+" + run) or found
            continue
        for start in range(len(run) - 9):
            window = run[start:start + 11]
            if window[0] == "0" and window[1] != "0" and len(window) == 11:
                found = normalise_phone(window) or found
                break
        else:
            if len(run) == 10 and run[0] == "0" and run[1] != "0":
                found = normalise_phone(run) or found
    return found


def letter_stream(text: str) -> list[str]:
    """Postcode-shaped pieces of ``text``: letters and digits joined, broken at every other word.

    Commas and the dots of "l. s." do not break a piece; a full stop after a longer word does.
    """
    tokens, pieces, current, i = tokenize(text), [], "", 0
    while i < len(tokens):
        tok, low = tokens[i], tokens[i].low
        number = None if low == "o" else read_number(tokens, i)
        if number is not None:
            current, i = current + number[0], number[1]
            continue
        i += 1
        if re.fullmatch(r"[a-z0-9]+", low) and (len(low) == 1 or any(c.isdigit() for c in low)):
            current += low.upper()
        elif low in LETTER_NAMES:
            current += LETTER_NAMES[low]
        elif low == "double" and i < len(tokens) and len(tokens[i].text) == 1 and tokens[i].text.isalpha():
            current += tokens[i].text.upper()  # "double Q" → Q, and the Q itself follows
        elif low == "," or (low == "." and i >= 2 and len(tokens[i - 2].text) == 1) or low in FILLERS:
            continue
        elif tok.text.isalpha() and tok.text.isupper() and len(tok.text) <= 3:
            current += tok.text  # "LS" written as one word
        else:
            if current:
                pieces.append(current)
            current = ""
    if current:
        pieces.append(current)
    return pieces


def find_postcode(text: str) -> str | None:
    """The last UK postcode said in ``text``, normalised ("LS6 2AB"), or None."""
    found: str | None = None
    for piece in letter_stream(text):
        for match in _POSTCODE_IN.finditer(piece):
            found = normalise_postcode(match[0]) or found
    return found


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


__all__ = ["digit_runs", "find_address", "find_phone", "find_postcode", "letter_stream", "numerals",
           "read_number", "tokenize"]
