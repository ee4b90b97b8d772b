"""Check a model's facts against the transcript: the model's values stay, its confidence does not.

A language model reads "C S twenty four" as CS24 or CF24 with the same calm certainty, and may fill a field from
nothing. So after OpenAI answers, each contact field is held against what the offline grammars read in the same
transcript (:func:`~switchboard.extract.offline.extract_facts`):

- the same value: the grammar's evidence (source, calibrated confidence, alternatives);
- another reading the grammar also allows (an alternative), or a value found somewhere in the call: kept, with
  the model's source, confidence at most :data:`PLAUSIBLE`, the grammar's value as an alternative;
- a value found nowhere in the call: kept but at :data:`UNGROUNDED` confidence, so it is marked for confirmation;
- nothing from the model where the caller ID is the offline fallback: the caller ID, flagged as such.

Pure; the caller runs it in a worker thread with the extraction.
"""

from __future__ import annotations

import re
from typing import Final

from switchboard.extract.fields import Heard
from switchboard.extract.offline import extract_facts
from switchboard.extract.phone import read_phones
from switchboard.extract.postcode import read_postcodes
from switchboard.extract.schema import CONTACT_FIELDS, CallFacts, Evidence, FieldEvidence, Transcript

PLAUSIBLE: Final = 0.6
UNGROUNDED: Final = 0.3
INFERRED: Final = FieldEvidence(source="inferred", confidence=0.7, alternatives=[])


def ground(facts: CallFacts, transcript: Transcript) -> CallFacts:
    """``facts`` (from a model) with evidence checked against ``transcript``."""
    offline = extract_facts(transcript)
    assert offline.evidence is not None
    said = " ".join(turn.text for turn in transcript.turns)
    values: dict[str, str | None] = {}
    evidence: dict[str, FieldEvidence | None] = {}
    for name in CONTACT_FIELDS:
        value, ours = getattr(facts, name), getattr(offline.evidence, name)
        theirs = getattr(facts.evidence, name, None) if facts.evidence else None
        if value is None and ours is not None and ours.source == "caller_id":
            values[name], evidence[name] = getattr(offline, name), ours
            continue
        values[name] = value
        evidence[name] = None if value is None else _check(name, value, getattr(offline, name), ours, theirs, said)
    for judged in ("urgency", "issue_category", "lead_segment"):
        theirs = getattr(facts.evidence, judged, None) if facts.evidence else None
        evidence[judged] = theirs or INFERRED
    return facts.model_copy(update={**values, "evidence": Evidence(**evidence)})


def _check(name: str, value: str, offline_value: str | None, ours: FieldEvidence | None,
           theirs: FieldEvidence | None, said: str) -> FieldEvidence:
    if value == offline_value and ours is not None:
        return ours
    source = theirs.source if theirs is not None and theirs.source != "caller_id" else "said"
    alternatives = [offline_value] if offline_value and offline_value != value else []
    if (ours is not None and value in ours.alternatives) or _found(name, value, said):
        confidence = min(PLAUSIBLE, theirs.confidence if theirs is not None else PLAUSIBLE)
        return Heard(value, source, confidence, tuple(alternatives)).evidence()
    return Heard(value, source, UNGROUNDED, tuple(alternatives)).evidence()


def _found(name: str, value: str, said: str) -> bool:
    """``value`` is one of the readings of what was said (postcode, number) or its words were said (name,
    address)."""
    if name == "postcode":
        return any(value == r.value or value in r.alternatives for r in read_postcodes(said))
    if name == "callback_number":
        return any(value == r.value for r in read_phones(said))
    words = re.findall(r"[a-z]+", value.lower())
    heard = set(re.findall(r"[a-z]+", said.lower()))
    return bool(words) and sum(word in heard for word in words) * 2 >= len(words) + 1


__all__ = ["PLAUSIBLE", "UNGROUNDED", "ground"]
