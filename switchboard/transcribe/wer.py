"""Word error rate with a normalisation that forgives spelling choices but not recognition errors.

Moonshine writes cased, punctuated text with digits ("LS6 2AB", "07700 900123") while fixture scripts
may spell things out ("l s six two a b", "oh seven seven double oh"). ``normalise`` maps both to one
canonical word list:

1. lowercase; "&" → "and", "ok" → "okay"; hyphens, slashes and other punctuation become spaces;
   apostrophes are dropped ("don't" → "dont"); hesitations ("erm", "um", "uh", ...) are removed, as
   recognisers rightly leave them out; a few spelling variants are unified ("Mr" → "mister",
   "goodbye" → "good bye", as "good-bye" splits).
2. all-caps tokens of 2–4 letters in the original text ("LS", "AB", "BBC") and tokens mixing letters and
   digits ("LS6", "2AB") are spelled out character by character: "LS6" → "l s 6".
3. number words become digits: "forty two" → "42", "two hundred and five" → "205", "fifteen" → "15";
   "double"/"triple" repeat the next digit; "oh" or the letter "o" next to a digit counts as zero.
4. every digit string is split into single digits, so "42", "forty two" and "four two" all become "4 2".

Punctuation, case and number format therefore never count as errors; a wrong digit or word always does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

_UNITS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine".split())}
_TEENS = {w: i + 10 for i, w in enumerate(
    "ten eleven twelve thirteen fourteen fifteen sixteen seventeen eighteen nineteen".split())}
_TENS = {w: (i + 2) * 10 for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALES = {"hundred": 100, "thousand": 1000}
_REPEATS = {"double": 2, "triple": 3}
_TOKEN = re.compile(r"[A-Za-z0-9]+")
_FILLERS = frozenset({"er", "erm", "um", "umm", "uh", "uhm", "hmm", "mm", "mhm"})
_ZERO = frozenset({"oh", "o"})
_SPELLINGS = {"mr": ["mister"], "mrs": ["missus"], "dr": ["doctor"], "goodbye": ["good", "bye"]}


def _is_number_word(word: str) -> bool:
    return word in _UNITS or word in _TEENS or word in _TENS or word.isdigit()


def _spell(token: str) -> list[str]:
    """Split acronyms and letter/digit mixes into characters, keeping digit runs together."""
    if token.lower() == "ok":
        return ["okay"]
    mixed = any(c.isdigit() for c in token) and any(c.isalpha() for c in token)
    acronym = token.isalpha() and token.isupper() and 2 <= len(token) <= 4
    if not (mixed or acronym):
        return [token.lower()]
    return [part.lower() for part in re.findall(r"\d+|[A-Za-z]", token)]


def _tokens(text: str) -> list[str]:
    text = text.replace("&", " and ").replace("'", "").replace("’", "")
    words: list[str] = []
    for token in _TOKEN.findall(text):
        for word in _spell(token):
            words.extend(_SPELLINGS.get(word, [word]))
    return words


def _numbers(words: list[str]) -> list[str]:
    """Fold runs of number words into digit strings ("forty two" → "42"); "four two" stays two numbers."""
    out: list[str] = []
    i = 0
    while i < len(words):
        word = words[i]
        nxt = words[i + 1] if i + 1 < len(words) else ""
        prev_digit = bool(out) and out[-1].isdigit()
        if word in _REPEATS and (nxt in _UNITS or nxt in _ZERO or nxt.isdigit()):
            digit = "0" if nxt in _ZERO else str(_UNITS.get(nxt, nxt))
            out.extend([digit] * _REPEATS[word])
            i += 2
            continue
        if word in _ZERO and (prev_digit or _is_number_word(nxt) or nxt in _REPEATS or nxt in _ZERO):
            out.append("0")
            i += 1
            continue
        if word in _UNITS or word in _TEENS or word in _TENS:
            value, i = _read_number(words, i)
            out.append(str(value))
            continue
        out.append(word)
        i += 1
    return out


def _kind(word: str) -> str:
    if word in _SCALES:
        return "scale"
    return "tens" if word in _TENS else "teen" if word in _TEENS else "unit"


def _read_number(words: list[str], i: int) -> tuple[int, int]:
    """Read one spoken number starting at ``words[i]``; return its value and the index after it."""
    total, current = 0, 0
    last = ""  # kind of the last word consumed: unit, teen, tens, scale
    while i < len(words):
        word = words[i]
        if word in _TENS and last in ("", "scale"):
            current += _TENS[word]
        elif word in _TEENS and last in ("", "scale"):
            current += _TEENS[word]
        elif word in _UNITS and last in ("", "scale", "tens"):
            current += _UNITS[word]
        elif word in _SCALES and last in ("unit", "teen", "tens") and current:
            if _SCALES[word] == 100:
                if current >= 100:  # "one hundred two hundred": a new number starts
                    break
                current *= 100
            else:
                total, current = total + current * 1000, 0
        elif word == "and" and last == "scale" and i + 1 < len(words) and _is_number_word(words[i + 1]):
            i += 1
            continue
        else:
            break
        last = _kind(word)
        i += 1
    return total + current, i


def normalise(text: str) -> list[str]:
    """Canonical word list of ``text`` (see the module docstring for the rules)."""
    words = _numbers([w for w in _tokens(text) if w not in _FILLERS])
    out: list[str] = []
    for word in words:
        out.extend(list(word) if word.isdigit() else [word])
    return out


@dataclass(frozen=True, slots=True)
class WerResult:
    """Edit counts between a reference and a hypothesis, on normalised words."""

    substitutions: int
    deletions: int
    insertions: int
    reference_words: int

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def wer(self) -> float:
        """Errors per reference word; an empty reference scores 0 if the hypothesis is empty too, else 1."""
        if self.reference_words == 0:
            return 0.0 if self.errors == 0 else 1.0
        return self.errors / self.reference_words

    def __add__(self, other: WerResult) -> WerResult:
        return WerResult(self.substitutions + other.substitutions, self.deletions + other.deletions,
                         self.insertions + other.insertions, self.reference_words + other.reference_words)


def align(reference: list[str], hypothesis: list[str]) -> WerResult:
    """Levenshtein alignment on words, counting each kind of edit (ties prefer substitution)."""
    # Each cell holds (cost, substitutions, deletions, insertions) for ref[:i] vs hyp[:j].
    prev = [(j, 0, 0, j) for j in range(len(hypothesis) + 1)]
    for i, ref_word in enumerate(reference, start=1):
        row = [(i, 0, i, 0)]
        for j, hyp_word in enumerate(hypothesis, start=1):
            c, s, d, n = prev[j - 1]
            diagonal = (c, s, d, n) if ref_word == hyp_word else (c + 1, s + 1, d, n)
            c, s, d, n = prev[j]
            deletion = (c + 1, s, d + 1, n)
            c, s, d, n = row[j - 1]
            insertion = (c + 1, s, d, n + 1)
            row.append(min(diagonal, deletion, insertion, key=lambda cell: cell[0]))
        prev = row
    _, s, d, n = prev[-1]
    return WerResult(s, d, n, len(reference))


def word_errors(reference: str, hypothesis: str) -> WerResult:
    """Normalise both texts and align them."""
    return align(normalise(reference), normalise(hypothesis))


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate of ``hypothesis`` against ``reference`` after normalisation."""
    return word_errors(reference, hypothesis).wer


def total(results: Iterable[WerResult]) -> WerResult:
    """Pool several results: the corpus WER weighs each file by its reference length."""
    return sum(results, WerResult(0, 0, 0, 0))


__all__ = ["WerResult", "align", "normalise", "total", "wer", "word_errors"]
