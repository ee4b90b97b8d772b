"""Contact fields across turns, with evidence: repeats, corrections, read-backs, spelled names, addresses over
several turns, the caller ID fallback, and what is marked for confirmation."""

from __future__ import annotations

from switchboard.extract.fields import apply_spelling, spelled_words
from switchboard.extract.offline import extract_facts
from switchboard.extract.schema import CallFacts, Transcript


def call(*lines: str, caller_id: str | None = None) -> CallFacts:
    transcript = Transcript.from_text("\n".join(lines))
    return extract_facts(Transcript(transcript.turns, caller_id))


def evidence(facts: CallFacts, name: str) -> tuple[str, float, list[str]]:
    assert facts.evidence is not None
    found = getattr(facts.evidence, name)
    assert found is not None, name
    return found.source, found.confidence, found.alternatives


def test_said_once_cleanly_needs_no_confirmation() -> None:
    facts = call("agent: Postcode?", "caller: L S six, two A B.", "agent: And a number?",
                 "caller: oh seven seven double oh, nine double oh, one two three")
    assert (facts.postcode, facts.callback_number) == ("LS6 2AB", "+447700900123")
    assert evidence(facts, "postcode")[0] == evidence(facts, "callback_number")[0] == "said"
    assert facts.needs_confirmation == []


def test_misheard_postcode_is_corrected_by_grammar_and_marked_for_confirmation() -> None:
    facts = call("agent: And the postcode?", "caller: C S twenty four, three H Q.")
    source, confidence, alternatives = evidence(facts, "postcode")
    assert (facts.postcode, source) == ("CF24 3HQ", "said")
    assert confidence < 0.8 and "CM24 3HQ" in alternatives
    assert facts.needs_confirmation == ["postcode"]


def test_readback_confirmed_by_the_caller() -> None:
    facts = call("caller: It's C S twenty four, three H Q.", "agent: Is that C F twenty four, three H Q?",
                 "caller: Yes, that's right.")
    assert facts.postcode == "CF24 3HQ"
    assert evidence(facts, "postcode")[:2] == ("confirmed", 0.97)
    assert facts.needs_confirmation == []


def test_readback_answered_no_then_corrected() -> None:
    facts = call("caller: my number is oh seven seven double oh, nine double oh, one two three",
                 "agent: That's oh seven seven double oh, nine double oh, one two three?",
                 "caller: No, it's one two four at the end.")
    assert facts.callback_number == "+447700900124"
    assert evidence(facts, "callback_number")[0] == "corrected"


def test_number_corrected_in_full_in_a_later_turn() -> None:
    facts = call("caller: oh seven seven double oh, nine double oh, one two three",
                 "agent: Thanks.", "caller: Sorry, no, it's oh seven seven double oh, nine double oh, four five six")
    assert (facts.callback_number, evidence(facts, "callback_number")[0]) == ("+447700900456", "corrected")


def test_repeated_number_is_surer() -> None:
    once = call("caller: twenty seven, oh seven seven double oh nine double oh one two three")
    twice = call("caller: twenty seven, oh seven seven double oh nine double oh one two three",
                 "agent: Sorry?", "caller: oh seven seven double oh nine double oh one two three")
    assert once.callback_number == twice.callback_number == "+447700900123"
    assert evidence(twice, "callback_number")[1] > evidence(once, "callback_number")[1]
    assert "callback_number" in once.needs_confirmation and "callback_number" not in twice.needs_confirmation


def test_caller_id_is_a_flagged_fallback() -> None:
    asked = call("agent: Best number?", "caller: This number's fine.", caller_id="+447700900555")
    assert (asked.callback_number, evidence(asked, "callback_number")[0]) == ("+447700900555", "caller_id")
    assert asked.needs_confirmation == []
    silent = call("caller: my boiler's broken", caller_id="+447700900555")
    assert (silent.callback_number, evidence(silent, "callback_number")[:2]) == ("+447700900555", ("caller_id", 0.5))
    assert silent.needs_confirmation == ["callback_number"]
    said = call("caller: call me on oh seven seven double oh nine double oh one two three", caller_id="+447700900555")
    assert evidence(said, "callback_number")[0] == "said" and said.callback_number == "+447700900123"


def test_no_caller_id_and_nothing_said_is_null() -> None:
    facts = call("agent: Best number?", "caller: This number's fine.")
    assert facts.callback_number is None and facts.evidence is not None and facts.evidence.callback_number is None


def test_spelled_surname_replaces_the_misheard_one() -> None:
    facts = call("agent: Can I take your name?", "caller: Chidi Okafore.", "agent: How do you spell that?",
                 "caller: O-K-A-F-O-R.")
    assert facts.caller_name == "Chidi Okafor"
    assert evidence(facts, "caller_name")[0] == "spelled"


def test_spelled_forms() -> None:
    assert spelled_words("that's O-K-A-F-O-R") == ["Okafor"]
    assert spelled_words("it's O K A F O R, Okafor") == ["Okafor"]
    assert spelled_words("O, k, a f, o r..") == ["Okafor"]  # the recogniser on the real_ivr_spelled_name voice
    assert spelled_words("Lima Sierra six two A B") == []
    assert spelled_words("Robert Mcleash, Glasgow, J. twenty, a P. Q..") == []  # a postcode, not a spelling
    assert spelled_words("I see you") == []
    assert apply_spelling("Jo Smyth", ["Smith"]) is not None
    assert apply_spelling("Jo Smyth", ["Smith"]).value == "Jo Smith"  # type: ignore[union-attr]
    assert apply_spelling(None, ["Okafor"]).value == "Okafor"  # type: ignore[union-attr]


def test_name_corrected_after_readback() -> None:
    facts = call("agent: Your name?", "caller: Sarah Lee.", "agent: Thanks Sarah Lee, is that right?",
                 "caller: No, Sara Leigh.")
    assert (facts.caller_name, evidence(facts, "caller_name")[0]) == ("Sara Leigh", "corrected")


def test_name_confirmed_by_readback() -> None:
    facts = call("agent: Your name?", "caller: Sarah Lee.", "agent: Sarah Lee, is that right?", "caller: Yep.")
    assert evidence(facts, "caller_name")[0] == "confirmed"


def test_address_over_two_turns() -> None:
    facts = call("agent: What's the address?", "caller: Flat three.", "agent: Mm-hm.",
                 "caller: twenty seven Ashgrove Terrace.", "agent: And the town?", "caller: Leeds.")
    assert facts.address == "Flat 3, 27 Ashgrove Terrace, Leeds"


def test_address_confirmed_by_readback() -> None:
    facts = call("agent: Address?", "caller: 41 Kelvin Drive, Glasgow.",
                 "agent: So that's 41 Kelvin Drive, Glasgow?", "caller: That's right.")
    assert (facts.address, evidence(facts, "address")[0]) == ("41 Kelvin Drive, Glasgow", "confirmed")


def test_nothing_said_nothing_filled() -> None:
    facts = call("agent: How can I help?", "caller: I see, yes, we are at home for two days, no rush.")
    assert (facts.caller_name, facts.callback_number, facts.address, facts.postcode) == (None, None, None, None)
    assert facts.needs_confirmation == []


def test_needs_confirmation_is_derived_not_input() -> None:
    facts = call("agent: And the postcode?", "caller: C S twenty four, three H Q.")
    dumped = facts.model_dump(mode="json")
    assert dumped["needs_confirmation"] == ["postcode"]
    again = CallFacts.model_validate({**dumped, "needs_confirmation": []})
    assert again == facts and again.needs_confirmation == ["postcode"]
