"""UK postcodes from speech, by grammar: spoken units (:mod:`~switchboard.extract.spoken`) fitted to the postcode
format, with the area checked against the fixed list of UK postcode areas and confusions corrected by position.

A postcode is an outward code (area: one or two letters from :data:`AREAS`; district: a digit, two digits, or a
digit and a letter in central London) and an inward code (a digit and two letters, never C I K M O V). Royal Mail,
"Postcode Address File programmers' guide", section on postcode format:
https://www.poweredbypaf.com/wp-content/uploads/2017/07/Latest-Programmers_guide_Edition-7-Version-6.pdf

What the grammar corrects, and only where a slot rules out what was heard:

- an area that does not exist: one letter swapped for one that sounds alike on a phone line ("CS24" → CF24,
  "SC15" → SE15; ess/eff, see/ee, em/en are the classic pairs);
- a digit in a letter slot: "eight" is A (or H, "aitch"); "oh" is O; a letter in a digit slot: O is 0;
- an inward letter that is never used (C I K M O V): the nearest-sounding allowed letter.

Each correction has a cost; a reading's confidence falls with its cost and with how close the alternatives are,
and the alternatives are kept (:class:`PostcodeReading`), never dropped silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from itertools import product
from typing import Final

from switchboard.extract.spoken import Unit, units

AREAS: Final = frozenset(
    "AB AL B BA BB BD BH BL BN BR BS BT CA CB CF CH CM CO CR CT CV CW DA DD DE DG DH DL DN DT DY E EC EH EN EX FK FY "
    "G GL GU GY HA HD HG HP HR HS HU HX IG IM IP IV JE KA KT KW KY L LA LD LE LL LN LS LU M ME MK ML N NE NG NN NP NR "
    "NW OL OX PA PE PH PL PO PR RG RH RM S SA SE SG SK SL SM SN SO SP SR SS ST SW SY TA TD TF TN TQ TR TS TW UB W WA "
    "WC WD WF WN WR WS WV YO ZE".split())
"""The 121 UK postcode areas and the Crown dependencies' GY, IM and JE."""
LETTER_DISTRICT_AREAS: Final = frozenset({"E", "EC", "N", "NW", "SE", "SW", "W", "WC"})
"""Central London areas whose districts may end in a letter (SW1A, EC1V, W1D)."""
A9A_LETTERS: Final = frozenset("ABCDEFGHJKPSTUW")
AA9A_LETTERS: Final = frozenset("ABEHMNPRVWXY")
INWARD_LETTERS: Final = frozenset("ABDEFGHJLNPQRSTUWXYZ")

_PAIRS: Final = {("F", "S"): 0.4, ("M", "N"): 0.4, ("C", "E"): 0.5, ("B", "D"): 0.5, ("B", "P"): 0.5,
                 ("B", "V"): 0.5, ("D", "T"): 0.5, ("P", "T"): 0.5, ("C", "Z"): 0.5, ("S", "X"): 0.5,
                 ("A", "H"): 0.6, ("A", "K"): 0.6, ("A", "J"): 0.7, ("I", "Y"): 0.5, ("Q", "U"): 0.6,
                 ("G", "J"): 0.7, ("F", "X"): 0.6, ("D", "E"): 0.6, ("E", "G"): 0.7, ("O", "U"): 0.9}
_SETS: Final = ("BCDEGPTVZ", "AHJK", "FLMNSX", "IY", "QUW")
"""Letters whose names rhyme (the E-set, the A-set, the "eh"-set …): confusable at a higher cost."""
SET_COST: Final = 0.9
LETTER_FOR_DIGIT: Final = {"8": (("A", 0.5), ("H", 0.7)), "0": (("O", 0.1),), "1": (("I", 0.8),)}
DIGIT_FOR_LETTER: Final = {"O": (("0", 0.1),), "I": (("1", 0.8),), "L": (("1", 1.0),), "S": (("5", 1.0),),
                           "Z": (("2", 1.0),), "B": (("8", 1.0),), "A": (("8", 0.6),), "H": (("8", 0.8),)}
"""A letter heard in a digit slot: "eight" is heard as "a" (or "aitch") as often as the other way round."""
DROP_COST: Final = 1.0
"""Cost of leaving out a clearly heard letter or digit next to a postcode (it may belong to it)."""
WEAK_DROP_COST: Final = 0.4
"""… and of leaving out an everyday word that may be a letter ("I M one" is IM1 rather than M1)."""
MAX_COST: Final = 1.6
"""Readings needing more correction than this are not postcodes."""
SHARPNESS: Final = 3.0
"""How fast an alternative's weight falls with its extra cost (softmax over -SHARPNESS × cost)."""
MAX_ALTERNATIVES: Final = 5
ALTERNATIVE_SPAN: Final = 1.0
"""Readings costing this much more than the best are not worth listing as alternatives."""
OUTWARD_SHAPES: Final = {2: ("a9",), 3: ("a99", "aa9", "a9x"), 4: ("aa99", "aa9x")}


def _confusions() -> dict[str, dict[str, float]]:
    table: dict[str, dict[str, float]] = {}
    for group in _SETS:
        for a in group:
            for b in group:
                if a != b:
                    table.setdefault(a, {})[b] = SET_COST
    for (a, b), cost in _PAIRS.items():
        table.setdefault(a, {})[b] = cost
        table.setdefault(b, {})[a] = cost
    return table


CONFUSABLE: Final = _confusions()


@dataclass(frozen=True, slots=True)
class PostcodeReading:
    """One postcode heard in the text: the best reading, its confidence (0–1), and the other readings best first.

    ``heard`` is what was heard as letters and digits; ``corrected`` says the grammar changed it to fit.
    ``start``/``end`` are character offsets of the words it was read from.
    """

    value: str
    confidence: float
    alternatives: tuple[str, ...]
    heard: str
    corrected: bool
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class _Candidate:
    value: str
    cost: float
    heard: str
    first: int  # unit indices within the run, inclusive / exclusive
    last: int


def read_postcodes(text: str) -> list[PostcodeReading]:
    """Every postcode said in ``text``, in spoken order."""
    found: list[PostcodeReading] = []
    for run in units(text):
        found.extend(_read_run(run))
    return found


def find_postcode(text: str) -> str | None:
    """The last postcode said in ``text`` ("LS6 2AB"), or None."""
    readings = read_postcodes(text)
    return readings[-1].value if readings else None


def parse_postcode(chars: str) -> list[tuple[str, float]]:
    """Every postcode ``chars`` (letters and digits as heard, no spaces) can be with its correction cost, best
    first; [] if none within :data:`MAX_COST`."""
    return list(_parse(chars.upper()))


@lru_cache(maxsize=8192)
def _parse(chars: str) -> tuple[tuple[str, float], ...]:
    """:func:`parse_postcode`, memoised: a call's transcript offers the same windows again on every extraction."""
    best: dict[str, float] = {}
    for shape in OUTWARD_SHAPES.get(len(chars) - 3, ()):
        for value, cost in _fit(chars, shape):
            if cost <= MAX_COST and cost < best.get(value, math.inf):
                best[value] = cost
    return tuple(sorted(best.items(), key=lambda item: (item[1], item[0])))


def _fit(chars: str, shape: str) -> Iterator[tuple[str, float]]:
    n_area = shape.count("a")
    outward_rest, inward = chars[n_area:len(shape)], chars[len(shape):]
    for area, area_cost in _areas(chars[:n_area]):
        rest_options = [_digit_options(outward_rest[0])]
        if len(shape) - n_area == 2:
            rest_options.append(_district_letter_options(outward_rest[1], area) if shape.endswith("x")
                                else _digit_options(outward_rest[1]))
        inward_options = [_digit_options(inward[0]), _inward_letter(inward[1]), _inward_letter(inward[2])]
        for picks in product(*rest_options, *inward_options):
            cost = area_cost + sum(c for _, c in picks)
            letters = "".join(ch for ch, _ in picks)
            split = len(outward_rest)
            yield f"{area}{letters[:split]} {letters[split:]}", cost


def _areas(heard: str) -> list[tuple[str, float]]:
    """Valid areas for the heard area letters: as heard (digits read as letters), else one letter swapped."""
    options = [[(heard_char, 0.0), *LETTER_FOR_DIGIT.get(heard_char, ())] for heard_char in heard]
    found: dict[str, float] = {}
    for picks in product(*options):
        letters = [ch for ch, _ in picks]
        if not all(ch.isalpha() for ch in letters):
            continue
        base = sum(c for _, c in picks)
        area = "".join(letters)
        if area in AREAS:
            found[area] = min(found.get(area, math.inf), base)
            continue
        for i, ch in enumerate(letters):
            for other, cost in CONFUSABLE.get(ch, {}).items():
                swapped = "".join([*letters[:i], other, *letters[i + 1:]])
                if swapped in AREAS:
                    found[swapped] = min(found.get(swapped, math.inf), base + cost)
    return list(found.items())


def _digit_options(ch: str) -> list[tuple[str, float]]:
    return [(ch, 0.0)] if ch.isdigit() else list(DIGIT_FOR_LETTER.get(ch, ()))


def _district_letter_options(ch: str, area: str) -> list[tuple[str, float]]:
    allowed = A9A_LETTERS if len(area) == 1 else AA9A_LETTERS
    if area not in LETTER_DISTRICT_AREAS or not ch.isalpha():
        return []
    return [(ch, 0.0)] if ch in allowed else [(o, c) for o, c in CONFUSABLE.get(ch, {}).items() if o in allowed]


def _inward_letter(ch: str) -> list[tuple[str, float]]:
    if ch.isdigit():
        return [(letter, cost) for letter, cost in LETTER_FOR_DIGIT.get(ch, ()) if letter in INWARD_LETTERS]
    if ch in INWARD_LETTERS:
        return [(ch, 0.0)]
    return [(other, cost) for other, cost in CONFUSABLE.get(ch, {}).items() if other in INWARD_LETTERS]


def _candidates(run: list[Unit]) -> Iterator[_Candidate]:
    """Every window of whole units whose letters and digits parse as a postcode."""
    for first in range(len(run)):
        if not any(r.chars[0].isalpha() or r.chars[0] in LETTER_FOR_DIGIT for r in run[first].readings):
            continue  # a postcode starts with a letter (or a digit heard for one)
        stack: list[tuple[int, str, float]] = [(first, "", 0.0)]
        while stack:
            index, chars, cost = stack.pop()
            if index > first and 5 <= len(chars) <= 7:
                for value, extra in parse_postcode(chars):
                    if cost + extra <= MAX_COST:
                        yield _Candidate(value, cost + extra, chars, first, index)
            if index == len(run) or len(chars) >= 7:
                continue
            for reading in run[index].readings:
                if len(chars) + len(reading.chars) <= 7:
                    stack.append((index + 1, chars + reading.chars, cost + reading.cost))


def _read_run(run: list[Unit]) -> list[PostcodeReading]:
    """Overlapping candidates are one postcode said once: keep the best of each group, with the rest as
    alternatives."""
    candidates = sorted(_candidates(run), key=lambda c: (c.first, c.last))
    groups: list[list[_Candidate]] = []
    for candidate in candidates:
        if groups and candidate.first < max(c.last for c in groups[-1]):
            groups[-1].append(candidate)
        else:
            groups.append([candidate])
    return [_reading(run, group) for group in groups]


def _reading(run: list[Unit], group: list[_Candidate]) -> PostcodeReading:
    first, last = min(c.first for c in group), max(c.last for c in group)
    drop = [DROP_COST if any(r.cost == 0 for r in unit.readings) else WEAK_DROP_COST for unit in run]

    def total(c: _Candidate) -> float:
        return c.cost + sum(drop[i] for i in range(first, last) if not c.first <= i < c.last)

    costs: dict[str, tuple[float, _Candidate]] = {}
    for candidate in group:
        cost = total(candidate)
        if candidate.value not in costs or cost < costs[candidate.value][0]:
            costs[candidate.value] = (cost, candidate)
    # cheapest first; on a tie the reading that keeps more of what was heard
    ranked = sorted(costs.items(), key=lambda item: (item[1][0], item[1][1].first - item[1][1].last, item[0]))
    best_cost, best = ranked[0][1]
    weights = [math.exp(-SHARPNESS * (cost - best_cost)) for _, (cost, _) in ranked]
    confidence = math.exp(-best_cost) * weights[0] / sum(weights)
    close = [value for value, (cost, _) in ranked[1:] if cost < best_cost + ALTERNATIVE_SPAN]
    alternatives = tuple(close[:MAX_ALTERNATIVES])
    return PostcodeReading(
        value=best.value, confidence=round(confidence, 3), alternatives=alternatives,
        heard=best.heard, corrected=best.heard != best.value.replace(" ", ""),
        start=run[best.first].start, end=run[best.last - 1].end)


__all__ = ["AREAS", "PostcodeReading", "find_postcode", "parse_postcode", "read_postcodes"]
