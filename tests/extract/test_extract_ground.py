"""A model's facts held against the transcript: agreeing values get the grammar's evidence, plausible ones a
capped confidence, values nobody said a low one; the caller ID fills an empty callback number, flagged."""

from __future__ import annotations

from typing import Any

from switchboard.extract.ground import PLAUSIBLE, UNGROUNDED, ground
from switchboard.extract.schema import CallFacts, Transcript

CALL = Transcript.from_text("""\
agent: Name and postcode please?
caller: Chidi Okafor, C S twenty four, three H Q.
agent: Best number?
caller: This one's fine.""")
BASE: dict[str, Any] = {"caller_name": None, "callback_number": None, "address": None, "postcode": None,
                        "urgency": "routine", "issue_category": "other", "summary": "x", "lead_segment": "other"}


def test_agreeing_value_gets_the_grammar_evidence() -> None:
    facts = ground(CallFacts(**{**BASE, "postcode": "CF24 3HQ"}), CALL)
    assert facts.evidence is not None and facts.evidence.postcode is not None
    assert facts.evidence.postcode.confidence < 0.8 and "CM24 3HQ" in facts.evidence.postcode.alternatives
    assert facts.needs_confirmation == ["postcode"]


def test_an_alternative_reading_is_capped() -> None:
    facts = ground(CallFacts(**{**BASE, "postcode": "CM24 3HQ"}), CALL)
    assert facts.evidence is not None and facts.evidence.postcode is not None
    assert facts.evidence.postcode.confidence <= PLAUSIBLE
    assert facts.evidence.postcode.alternatives == ["CF24 3HQ"]


def test_values_nobody_said_are_marked() -> None:
    facts = ground(CallFacts(**{**BASE, "postcode": "M1 1AE", "caller_name": "John Smith"}), CALL)
    assert facts.evidence is not None and facts.evidence.postcode is not None and facts.evidence.caller_name
    assert facts.evidence.postcode.confidence == facts.evidence.caller_name.confidence == UNGROUNDED
    assert facts.needs_confirmation == ["caller_name", "postcode"]


def test_said_name_is_grounded() -> None:
    facts = ground(CallFacts(**{**BASE, "caller_name": "Chidi Okafor"}), CALL)
    assert facts.evidence is not None and facts.evidence.caller_name is not None
    assert facts.evidence.caller_name.confidence >= 0.8


def test_caller_id_fills_an_empty_callback_number() -> None:
    facts = ground(CallFacts(**BASE), Transcript(CALL.turns, "+447700900555"))
    assert facts.callback_number == "+447700900555"
    assert facts.evidence is not None and facts.evidence.callback_number is not None
    assert facts.evidence.callback_number.source == "caller_id"
    assert ground(CallFacts(**BASE), CALL).callback_number is None
