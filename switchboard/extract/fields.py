"""Contact fields across the turns of a call, each with its :class:`~switchboard.extract.schema.FieldEvidence`.

A caller says a number, repeats it, corrects it ("no, sorry, it's …", "one two four at the end"), spells a
name ("that's O-K-A-F-O-R"), gives an address over two turns, and confirms or corrects the agent's read-back.
The value kept is the last one the caller said or agreed to; its source says how it was established:

- ``said`` once (confidence from the grammar), a repeat of the same value raises it;
- ``corrected``: the caller replaced an earlier value;
- ``confirmed``: the agent read it back and the caller said yes (then the read-back's value is kept, even if
  the caller's own words were misheard: the caller agreed to it);
- ``spelled``: a name spelled letter by letter;
- ``caller_id``: no number was said; the network's caller ID, flagged and, unless the caller asked to be called
  on "this number", marked for confirmation.

A caller turn whose best transcript holds no postcode (or number) is read again in the recogniser's alternative
readings of the same audio (``Turn.alternatives``, best first): the first that the grammar parses gives the value,
at a confidence capped at :data:`ALTERNATIVE_CAP` so that it is marked for confirmation.

Nothing here invents a value: every value is one a reading of the caller's (or the read-back's) words produced,
or the caller ID. Pure functions; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from difflib import SequenceMatcher
from typing import Final

from switchboard.extract.phone import CORRECTION, digit_runs, read_phones, splice
from switchboard.extract.postcode import read_postcodes
from switchboard.extract.schema import FieldEvidence, FieldSource, Transcript
from switchboard.extract.spoken import units

YES: Final = re.compile(r"^\W*(?:yes|yeah|yep|yup|aye|correct|right|spot on|perfect|exactly|that'?s (?:right|"
                        r"correct|it))\b", re.I)
NO: Final = re.compile(r"^\W*(?:no|nope|not quite|that'?s (?:wrong|not right))\b", re.I)
THIS_NUMBER: Final = re.compile(r"\b(?:this|same|that) number\b|number (?:i'?m|i am) (?:calling|ringing) (?:from|on)|"
                                r"(?:calling|ringing) from\b", re.I)
CONFIRMED: Final = 0.97
REPEAT_FLOOR: Final = 0.9
CALLER_ID_ASKED: Final = 0.9
CALLER_ID_ONLY: Final = 0.5
SPELLED: Final = 0.9
ALTERNATIVE_CAP: Final = 0.6
"""A value only a lower-ranked reading of the audio holds: below the confirmation threshold (0.8)."""


@dataclass(frozen=True, slots=True)
class Heard:
    """A field's value and how it was heard."""

    value: str
    source: FieldSource
    confidence: float
    alternatives: tuple[str, ...] = ()

    def evidence(self) -> FieldEvidence:
        return FieldEvidence(source=self.source, confidence=round(self.confidence, 3),
                             alternatives=list(self.alternatives))


Reader = Callable[[str], list[Heard]]


def _postcodes(text: str) -> list[Heard]:
    return [Heard(r.value, "said", r.confidence, r.alternatives) for r in read_postcodes(text)]


def _phones(text: str) -> list[Heard]:
    return [Heard(r.value, "corrected" if r.corrected else "said", r.confidence) for r in read_phones(text)]


def postcode_field(transcript: Transcript) -> Heard | None:
    """The postcode: the caller's last, as corrected or confirmed."""
    return _follow(transcript, _postcodes)


def phone_field(transcript: Transcript) -> Heard | None:
    """The callback number; the caller ID (flagged) when none was said."""
    heard = _follow(transcript, _phones, tail_fix=True)
    if heard is not None or transcript.caller_id is None:
        return heard
    asked = bool(THIS_NUMBER.search(transcript.text_of("caller")))
    return Heard(transcript.caller_id, "caller_id", CALLER_ID_ASKED if asked else CALLER_ID_ONLY)


def _follow(transcript: Transcript, read: Reader, *, tail_fix: bool = False) -> Heard | None:
    """Walk the turns: caller readings replace or repeat the value; a read-back answered yes confirms it."""
    current: Heard | None = None
    turns = transcript.turns
    for index, turn in enumerate(turns):
        if turn.speaker == "agent":
            answer = _answer(turns, index)
            backs = read(turn.text)
            if backs and answer is True:
                current = _confirm(current, backs[-1])
            continue
        readings = read(turn.text) or _from_alternatives(turn.alternatives, read)
        if not readings and tail_fix and current is not None:
            readings = _tail_correction(turn.text, current, after_no=_after_no(turns, index))
        correcting = bool(CORRECTION.search(turn.text)) or _after_no(turns, index)
        for reading in readings:
            current = _update(current, reading, correcting=correcting)
    return current


def _from_alternatives(alternatives: Sequence[str], read: Reader) -> list[Heard]:
    """The readings of the first alternative transcript that has any, capped at :data:`ALTERNATIVE_CAP`."""
    for text in alternatives:
        readings = read(text)
        if readings:
            return [replace(r, confidence=min(r.confidence, ALTERNATIVE_CAP)) for r in readings]
    return []


def _update(current: Heard | None, reading: Heard, *, correcting: bool) -> Heard:
    if current is None:
        return reading
    if reading.value == current.value:
        sure = 1 - (1 - current.confidence) * (1 - reading.confidence)
        return replace(current, confidence=max(sure, REPEAT_FLOOR, current.confidence))
    source: FieldSource = "corrected" if correcting or reading.source == "corrected" else "said"
    return replace(reading, source=source) if source != reading.source else reading


def _confirm(current: Heard | None, back: Heard) -> Heard:
    """The caller said yes to the read-back ``back``: that value, confirmed."""
    if current is not None and current.value == back.value:
        return replace(current, source="confirmed", confidence=max(current.confidence, CONFIRMED))
    return Heard(back.value, "confirmed", CONFIRMED - 0.02)


def _tail_correction(text: str, current: Heard, *, after_no: bool) -> list[Heard]:
    """"no, it's one two four at the end": a short run after a correction replaces the number's last digits."""
    if not (after_no or CORRECTION.search(text)):
        return []
    for run in digit_runs(text):
        if 2 <= len(run.digits) <= 7 and (fixed := splice(current.value, run.digits)) is not None:
            return [Heard(fixed, "corrected", 0.75)]
    return []


def _answer(turns: Sequence[object], index: int) -> bool | None:
    """The caller's yes (True) / no (False) to the agent turn at ``index``; None if neither."""
    text = _next_caller_text(turns, index)
    if YES.search(text):
        return True
    if NO.search(text):
        return False
    return None


def _after_no(turns: Sequence[object], index: int) -> bool:
    return index > 0 and getattr(turns[index - 1], "speaker", "") == "agent" and _answer(turns, index - 1) is False


def _next_caller_text(turns: Sequence[object], index: int) -> str:
    following = turns[index + 1] if index + 1 < len(turns) else None
    return str(getattr(following, "text", "")) if getattr(following, "speaker", "") == "caller" else ""


# -- names ----------------------------------------------------------------------------------------------------------


def spelled_words(text: str) -> list[str]:
    """Words spelled letter by letter ("O-K-A-F-O-R", "O K A F O R", "oh kay ay eff oh are"), three letters or
    more, capitalised ("Okafor")."""
    words: list[str] = []
    for run in units(text):
        if any(all(r.chars.isdigit() for r in unit.readings) for unit in run):
            continue  # letters among digits are a postcode ("J. twenty, a P. Q."), not a spelling
        letters = ""
        for unit in [*run, None]:
            # a letter name, or any one-character token ("a" and "I" are letters too when spelled out)
            single = unit is not None and unit.end - unit.start == 1
            letter = None if unit is None else next(
                (r.chars for r in unit.readings if len(r.chars) == 1 and r.chars.isalpha() and (r.cost <= 0.1
                                                                                                  or single)), None)
            if letter is not None:
                letters += letter
                continue
            if len(letters) >= 3:
                words.append(letters.capitalize())
            letters = ""
    return words


def apply_spelling(name: str | None, spelled: Sequence[str]) -> Heard | None:
    """The name with the spelled word put in place of the word it spells (the closest, else the surname)."""
    if not spelled:
        return None if name is None else Heard(name, "said", 0.85)
    word = spelled[-1]
    if name is None:
        return Heard(word, "spelled", SPELLED - 0.2)
    parts = name.split()
    scores = [SequenceMatcher(None, part.lower(), word.lower()).ratio() for part in parts]
    best = max(range(len(parts)), key=lambda i: scores[i])
    at = best if scores[best] >= 0.5 else len(parts) - 1
    parts[at] = word
    return Heard(" ".join(parts), "spelled", SPELLED)


def confirm_by_readback(transcript: Transcript, heard: Heard | None) -> Heard | None:
    """``heard`` confirmed when an agent turn contains its value and the caller's next turn says yes."""
    if heard is None:
        return None
    for index, turn in enumerate(transcript.turns):
        if turn.speaker == "agent" and _contains(turn.text, heard.value) and _answer(transcript.turns, index):
            return replace(heard, source="confirmed", confidence=max(heard.confidence, CONFIRMED))
    return heard


def _contains(text: str, value: str) -> bool:
    words = re.findall(r"[a-z0-9]+", value.lower())
    return bool(words) and re.search(r"\b" + r"\W+".join(map(re.escape, words)) + r"\b", text.lower()) is not None


__all__ = ["NO", "YES", "Heard", "apply_spelling", "confirm_by_readback", "phone_field", "postcode_field",
           "spelled_words"]
