"""Spoken symbols: what a word (or two or three) of recogniser output can mean when someone reads out letters
and digits, as :class:`Unit` s with alternative :class:`Reading` s and a cost for each.

People say "L S six", "el ess 6", "Lima Sierra six", "S for sugar", "double seven", "oh" (a zero or the letter
O); recognisers write "LS6", "l. s. six", "ls6", "see" for C, "are" for R, "for" for 4. The grammars
(:mod:`~switchboard.extract.postcode`, :mod:`~switchboard.extract.phone`) decide which reading fits where; this
module only lists the readings. A cost of 0 is "heard as such"; everyday words that may be a letter or digit
("a", "see", "you", "for") cost more, so a grammar uses them only when nothing cheaper fits.

Pure functions over strings; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from switchboard.extract.patterns import FILLERS, REPEAT, TEENS, TENS, Token, read_number, tokenize

NATO: Final = {"alpha": "A", "alfa": "A", "bravo": "B", "charlie": "C", "delta": "D", "echo": "E", "foxtrot": "F",
               "golf": "G", "hotel": "H", "india": "I", "juliet": "J", "juliett": "J", "kilo": "K", "lima": "L",
               "mike": "M", "november": "N", "oscar": "O", "papa": "P", "quebec": "Q", "romeo": "R",
               "sierra": "S", "tango": "T", "uniform": "U", "victor": "V", "whiskey": "W", "whisky": "W",
               "xray": "X", "x-ray": "X", "yankee": "Y", "zulu": "Z"}
LETTER_NAMES: Final = {"ay": "A", "bee": "B", "cee": "C", "dee": "D", "ee": "E", "ef": "F", "eff": "F", "gee": "G",
                       "aitch": "H", "haitch": "H", "jay": "J", "kay": "K", "el": "L", "ell": "L", "em": "M",
                       "en": "N", "pee": "P", "cue": "Q", "queue": "Q", "kew": "Q", "ar": "R", "ess": "S", "es": "S",
                       "tee": "T", "vee": "V", "ex": "X", "zed": "Z", "zee": "Z", "yu": "U"}
"""Letter names as recognisers spell them; none of these is an everyday word."""
WEAK_LETTERS: Final = {"a": "A", "be": "B", "see": "C", "sea": "C", "i": "I", "eye": "I", "pea": "P",
                       "are": "R", "tea": "T", "you": "U", "why": "Y"}
"""Everyday words that sound like a letter name: a reading, at a cost."""
WEAK_COST: Final = 0.3
DIGITS: Final = {"zero": "0", "nought": "0", "nil": "0", "one": "1", "two": "2", "three": "3", "four": "4",
                 "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
WEAK_DIGITS: Final = {"for": "4", "to": "2", "too": "2", "free": "3", "ate": "8", "won": "1", "owe": "0"}
"""Homophones recognisers write for digits; a reading at :data:`WEAK_DIGIT_COST`."""
WEAK_DIGIT_COST: Final = 0.6
COMMON_PAIRS: Final = frozenset({
    "am", "an", "as", "at", "be", "by", "do", "go", "he", "hi", "if", "in", "is", "it", "me", "my", "no", "of",
    "oh", "ok", "on", "or", "so", "to", "up", "us", "we", "ya", "ye", "yo", "ah", "er", "um", "uh", "eh", "hm",
    "mr", "ms", "dr", "st", "rd", "th", "nd", "id", "tv", "aa", "ha", "la", "ma", "pa", "ta", "em", "en", "el",
    "ef", "es", "ex", "ee", "ar", "ay"})
"""Two-letter lower-case words not split into letters (some are letter names, read whole)."""
_ORDINAL: Final = re.compile(r"^(\d+)(st|nd|rd|th)$", re.I)
_MIXED: Final = re.compile(r"[A-Za-z]+|[0-9]+")


@dataclass(frozen=True, slots=True)
class Reading:
    """One meaning of a unit: ``chars`` are upper-case letters and/or digits ("L", "6", "24", "00")."""

    chars: str
    cost: float = 0.0


@dataclass(frozen=True, slots=True)
class Unit:
    """Tokens ``tokens[first:last]`` read as letters/digits; ``start``/``end`` are character offsets."""

    first: int
    last: int
    start: int
    end: int
    readings: tuple[Reading, ...]
    number_word: bool = False
    """Said as a number ("twenty four", "nine hundred"), not digit by digit."""


def units(text: str) -> list[list[Unit]]:
    """The letter/digit units of ``text`` in runs: a word that is no letter or digit ends a run; fillers and
    punctuation do not."""
    return [list(run) for run in _units(text)]


@lru_cache(maxsize=4096)
def _units(text: str) -> tuple[tuple[Unit, ...], ...]:
    """:func:`units`, memoised: each field's grammar and every live re-extraction read the same turns."""
    tokens = tokenize(text)
    runs: list[list[Unit]] = []
    current: list[Unit] = []
    i = 0
    while i < len(tokens):
        found = _unit_at(tokens, i)
        if found:
            current.extend(found)
            i = found[-1].last
            continue
        low = tokens[i].low
        if low not in FILLERS and re.search(r"[a-z0-9]", low):
            if current:
                runs.append(current)
            current = []
        i += 1
    if current:
        runs.append(current)
    return tuple(tuple(run) for run in runs)


def _unit_at(tokens: list[Token], i: int) -> list[Unit]:
    """The unit(s) starting at ``tokens[i]`` (a mixed token such as "LS6" gives several), or []."""
    tok, low = tokens[i], tokens[i].low
    nxt = tokens[i + 1].low if i + 1 < len(tokens) else ""
    if low in REPEAT:
        if nxt in ("you", "u"):  # "double you" is W; "double U" as two U's is rarer
            return [_make(tokens, i, i + 2, (Reading("W"), Reading("UU", 0.5)))]
        inner = _unit_at(tokens, i + 1) if nxt and nxt not in REPEAT else []
        if inner:
            times = REPEAT[low]
            first = inner[0]
            repeated = tuple(Reading(r.chars * times, r.cost) for r in first.readings if len(r.chars) == 1)
            if repeated:
                return [_make(tokens, i, first.last, repeated), *inner[1:]]
        return []
    if low in TENS and _word(tokens, i + 1) == "," and _word(tokens, i + 2) in DIGITS \
            and _word(tokens, i + 2) != "zero":
        # "twenty, four": twenty, then four (the comma between outward and inward code: "G twenty, eight Q Q"),
        # or 24 with a recogniser's comma inside ("C, f, twenty, four, three, h, q")
        unit = DIGITS[_word(tokens, i + 2)]
        tens = str(TENS[low])
        return [_make(tokens, i, i + 3, (Reading(tens + unit), Reading(tens[0] + unit, 0.5)), number_word=True)]
    if low in TEENS or low in TENS or (low in DIGITS and _word(tokens, i + 1) == "hundred"):
        number = read_number(tokens, i)
        if number is not None:
            return [_make(tokens, i, number[1], (Reading(number[0]),), number_word=True)]
    if low == "x" and nxt == "ray":  # "X-ray": the hyphen splits it
        return [_make(tokens, i, i + 2, (Reading("X"),))]
    spelled = _letter_for_word(tokens, i)
    if spelled is not None:
        return [spelled]
    readings = _readings(tok.text)
    if readings:
        return [_make(tokens, i, i + 1, readings)]
    return _split_token(tok, i)


def _letter_for_word(tokens: list[Token], i: int) -> Unit | None:
    """"S for sugar", "B as in Bravo": one letter, said with a word that starts with it."""
    if len(tokens[i].text) != 1 or not tokens[i].text.isalpha():
        return None
    j = i + 1
    if _word(tokens, j) == "for":
        j += 1
    elif _word(tokens, j) == "as" and _word(tokens, j + 1) == "in":
        j += 2
    else:
        return None
    word = _word(tokens, j)
    if len(word) > 2 and word[0] == tokens[i].low and word not in DIGITS:
        return _make(tokens, i, j + 1, (Reading(tokens[i].text.upper()),))
    return None


def _readings(text: str) -> tuple[Reading, ...]:
    low = text.lower()
    if low.isdigit():
        return (Reading(low),)
    if low in ("oh", "o"):
        return (Reading("0"), Reading("O", 0.1))
    if len(low) == 1 and low.isalpha():
        return (Reading(low.upper(), WEAK_COST if text in ("a", "I") else 0.0),)
    for table, cost in ((DIGITS, 0.0), (NATO, 0.0), (LETTER_NAMES, 0.0), (WEAK_LETTERS, WEAK_COST),
                        (WEAK_DIGITS, WEAK_DIGIT_COST)):
        if low in table:
            return (Reading(table[low], cost),)
    return ()


def _split_token(tok: Token, i: int) -> list[Unit]:
    """"LS6" → L, S, 6; "2AB" → 2, A, B; "CF24" → C, F, 24; "ls" → l, s. Words and ordinals are not split."""
    text = tok.text
    if _is_ordinal(text) or not text.isalnum():
        return []
    mixed = any(c.isdigit() for c in text) and any(c.isalpha() for c in text)
    letters_only = text.isalpha() and len(text) <= 3 and (text.isupper() or (
        len(text) == 2 and text.lower() not in COMMON_PAIRS and not re.search(r"[aeiouy]", text.lower())))
    if not (mixed or letters_only):
        return []
    out: list[Unit] = []
    for piece in _MIXED.finditer(text):
        chunks = [piece[0]] if piece[0].isdigit() else list(piece[0])
        offset = piece.start()
        for chunk in chunks:
            start = tok.start + offset
            out.append(Unit(i, i + 1, start, start + len(chunk), (Reading(chunk.upper()),)))
            offset += len(chunk)
    return out


def _is_ordinal(text: str) -> bool:
    """"2nd", "23rd", "11th": an ordinal, not a number and letters ("2rd" is not one)."""
    match = _ORDINAL.match(text)
    if match is None:
        return False
    number, suffix = int(match[1]), match[2].lower()
    if number % 100 in (11, 12, 13):
        return suffix == "th"
    return suffix == {1: "st", 2: "nd", 3: "rd"}.get(number % 10, "th")


def _make(tokens: list[Token], first: int, last: int, readings: tuple[Reading, ...], *,
          number_word: bool = False) -> Unit:
    return Unit(first, last, tokens[first].start, tokens[last - 1].end, readings, number_word)


def _word(tokens: list[Token], i: int) -> str:
    return tokens[i].low if i < len(tokens) else ""


__all__ = ["LETTER_NAMES", "NATO", "WEAK_LETTERS", "Reading", "Unit", "units"]
