"""UK phone numbers from speech: digits said in groups ("oh seven seven double oh, nine double oh, one two
three"), "treble", "plus four four", numbers written by the recogniser ("07700 900123"), and corrections
("… one two three, no sorry, one two four").

A UK number is a trunk 0 and ten digits (a few 01 areas have nine), or +44 and the same without the 0. Ofcom,
"The National Telephone Numbering Plan": https://www.ofcom.org.uk/phones-and-broadband/phone-numbers/numbering
Other ``+``/``00`` numbers keep their country code (:func:`~switchboard.extract.schema.normalise_phone`).

A reading's confidence says how cleanly the digits fitted: a run of exactly one number is sure; digits cut off a
longer run, a short 01 number, homophones ("for" as 4) or a spliced correction are less so. A run that is one
digit short of a number is never padded into one.

Pure functions over strings; no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from switchboard.extract.schema import normalise_phone
from switchboard.extract.spoken import Unit, units

CORRECTION: Final = re.compile(r"\b(?:no|nope|sorry|i mean|actually|wait|hang on|correction|not|rather|scratch)\b",
                               re.I)
"""Words that turn the next digits into a correction of the previous number."""
SURE: Final = 0.92
CUT: Final = 0.6
SHORT_AREA: Final = 0.7
INTERJECTION: Final = 0.85
WEAK_PENALTY: Final = 0.2
SPLICED: Final = 0.75
MIN_SPLICE, MAX_SPLICE = 2, 7


@dataclass(frozen=True, slots=True)
class PhoneReading:
    """One number heard: E.164 ``value``, confidence 0–1, the digits heard, whether a correction made it, and
    the character span it was read from."""

    value: str
    confidence: float
    digits: str
    corrected: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class DigitRun:
    """Consecutive spoken digits: ``digits`` ("+" first after "plus"), how many came from homophones, the span."""

    digits: str
    weak: int
    start: int
    end: int


def digit_runs(text: str) -> list[DigitRun]:
    """Maximal runs of digits; a homophone ("for", "to") counts only between clearly spoken digits."""
    runs: list[DigitRun] = []
    for run in units(text):
        pending: list[Unit] = []
        for index, unit in enumerate(run):
            strong = _digits(unit, weak=False)
            if strong is None and _digits(unit, weak=True) is not None and pending \
                    and index + 1 < len(run) and _digits(run[index + 1], weak=False) is not None:
                pending.append(unit)
                continue
            if strong is None:
                runs.extend(_close(text, pending))
                pending = []
                continue
            pending.append(unit)
        runs.extend(_close(text, pending))
    return runs


def _digits(unit: Unit, *, weak: bool) -> str | None:
    for reading in unit.readings:
        if reading.chars.isdigit() and (reading.cost == 0 or weak):
            return reading.chars
    return None


def _close(text: str, pending: list[Unit]) -> list[DigitRun]:
    if not pending:
        return []
    digits = "".join(_digits(u, weak=True) or "" for u in pending)
    weak = sum(1 for u in pending if _digits(u, weak=False) is None)
    before = text[:pending[0].start].rstrip().lower()
    plus = "+" if before.endswith(("+", "plus")) else ""
    return [DigitRun(plus + digits, weak, pending[0].start, pending[-1].end)]


def parse_phone(digits: str) -> tuple[str, float] | None:
    """The number in one run of digits and how cleanly it fitted, or None."""
    if digits.startswith("00") and len(digits) == 12 and _trunk(digits[1:]):
        return normalise_phone(digits[1:]) or "", INTERJECTION  # "Oh, oh seven seven …"
    if digits.startswith("00") and not digits.startswith("000"):
        digits = "+" + digits[2:]
    if digits.startswith("+") or (digits.startswith("44") and len(digits) in (12, 13)):
        bare = digits.lstrip("+")
        if bare.startswith("440") and len(bare) == 13:
            bare = "44" + bare[3:]  # "+44 (0) 7700 …"
        value = normalise_phone("+" + bare)
        if value is None:
            return None
        return value, SURE if not bare.startswith("44") or len(bare) == 12 else CUT
    if len(digits) == 11 and _trunk(digits):
        return normalise_phone(digits) or "", SURE
    if len(digits) == 10 and digits.startswith("01"):
        return normalise_phone(digits) or "", SHORT_AREA
    for start in range(len(digits) - 11, -1, -1):  # the last number-shaped window of a longer run
        window = digits[start:start + 11]
        if _trunk(window):
            return normalise_phone(window) or "", CUT
    return None


def _trunk(digits: str) -> bool:
    return len(digits) == 11 and digits[0] == "0" and digits[1] in "123456789"


def read_phones(text: str) -> list[PhoneReading]:
    """Every number said in ``text`` in order; a short run after a correction word ("no, sorry, one two four")
    replaces the end of the number before it."""
    found: list[PhoneReading] = []
    previous_end = 0
    for run in digit_runs(text):
        between = text[previous_end:run.start]
        correcting = bool(found) and bool(CORRECTION.search(between))
        previous_end = run.end
        parsed = parse_phone(run.digits)
        if parsed is not None and parsed[0]:
            value, confidence = parsed
            confidence = max(0.1, confidence - WEAK_PENALTY * run.weak)
            found.append(PhoneReading(value, round(confidence, 3), run.digits, correcting, run.start, run.end))
        elif correcting and MIN_SPLICE <= len(run.digits) <= MAX_SPLICE:
            spliced = splice(found[-1].value, run.digits)
            if spliced is not None:
                found.append(PhoneReading(spliced, SPLICED, run.digits, True, found[-1].start, run.end))
    return found


def splice(number: str, tail: str) -> str | None:
    """``number`` (E.164) with its last digits replaced by ``tail``, as a caller corrects the end of a number."""
    if not tail.isdigit() or len(tail) >= len(number) - 3:
        return None
    return normalise_phone(number[:-len(tail)] + tail)


def find_phone(text: str) -> str | None:
    """The last number said in ``text`` (E.164), or None."""
    readings = read_phones(text)
    return readings[-1].value if readings else None


__all__ = ["DigitRun", "PhoneReading", "digit_runs", "find_phone", "parse_phone", "read_phones", "splice"]
