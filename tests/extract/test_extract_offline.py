"""The offline extractor on every fixture's reference transcript, and its rules on made-up calls.

Measured on the 8 domain fixtures' reference text (scripts/extract_accuracy.py): name, phone, postcode,
urgency, category, segment and (fuzzy) address all 8/8 (category/segment 7/7 scored). The per-fixture test
asserts name, phone, postcode, urgency, category and segment exactly, and the address up to a leading business
name.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.extract.offline import OfflineExtractor, classify_urgency, extract_facts, find_name
from switchboard.extract.schema import Speaker, Transcript

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ALL = sorted(FIXTURES.glob("*.json"))
SPEAKERS: dict[str, Speaker] = {"inbound": "caller", "outbound": "agent"}


def load(path: Path) -> tuple[dict[str, Any], Transcript]:
    fixture = json.loads(path.read_text())
    transcript = Transcript.from_segments(
        (SPEAKERS[track], utt["text"], int(utt["start_ms"]))
        for track, data in fixture["tracks"].items() for utt in data["utterances"])
    return fixture, transcript


def test_fixtures_present() -> None:
    assert sum(1 for p in ALL if json.loads(p.read_text()).get("facts")) >= 7


@pytest.mark.parametrize("path", [p for p in ALL if json.loads(p.read_text()).get("facts")], ids=lambda p: p.stem)
def test_domain_fixture_reference_text(path: Path) -> None:
    fixture, transcript = load(path)
    expected, got = fixture["facts"], extract_facts(transcript)
    assert got.caller_name == expected["caller_name"]
    assert got.callback_number == expected["callback_number"]
    assert got.postcode == expected["postcode"]
    assert got.urgency == expected["urgency"]
    for name in ("issue_category", "lead_segment"):
        if expected[name] is not None:
            assert getattr(got, name) == expected[name], name
    if expected["address"] is None:
        assert got.address is None
    else:
        assert got.address and expected["address"].lower().endswith(got.address.lower())
    assert got.summary and "\n" not in got.summary and len(got.summary) <= 160


@pytest.mark.parametrize("path", [p for p in ALL if not json.loads(p.read_text()).get("facts")], ids=lambda p: p.stem)
def test_non_domain_speech_yields_no_contact_details(path: Path) -> None:
    _, transcript = load(path)
    got = extract_facts(transcript)
    assert (got.caller_name, got.callback_number, got.postcode, got.address) == (None, None, None, None)
    assert got.issue_category == "other"


def test_offline_extraction_is_fast() -> None:
    transcripts = [load(p)[1] for p in ALL]
    started = time.perf_counter()
    for transcript in transcripts * 10:
        extract_facts(transcript)
    per_call_ms = (time.perf_counter() - started) * 1000 / (len(transcripts) * 10)
    assert per_call_ms < 50  # ~5–10 ms measured on a busy 2-core machine; guards against blow-ups


async def test_extractor_protocol_result() -> None:
    _, transcript = load(FIXTURES / "tts_gas_emergency_glasgow.json")
    result = await OfflineExtractor().extract(transcript)
    assert (result.source, result.model, result.fallback_reason) == ("offline", None, None)
    assert result.facts.issue_category == "gas"


def call(*lines: str) -> Transcript:
    return Transcript.from_text("\n".join(lines))


@pytest.mark.parametrize("reply", [
    "It's Priya Shah.", "yeah, it's Priya Shah", "My name's Priya Shah, and I'm at home", "Priya Shah.",
    "Um, this is Priya Shah.",
])
def test_name_from_reply_to_name_question(reply: str) -> None:
    assert find_name(call("agent: Who am I speaking to?", f"caller: {reply}")) == "Priya Shah"


def test_name_from_cue_without_a_question() -> None:
    assert find_name(call("caller: Hello, my name is Sean O'Brien and my sink is blocked.")) == "Sean O'Brien"
    assert find_name(call("caller: Hi, I'm locked out. It's Kate Nguyen here.")) == "Kate Nguyen"


@pytest.mark.parametrize("text", [
    "caller: Hello, yeah, my boiler's stopped working.",
    "caller: It's oh seven seven double oh nine double oh one two three.",
    "caller: I'm locked out. Thanks.",
    "agent: Can I take your name?\ncaller: Sorry, what?",
    "caller: Flat Three, Ashgrove Terrace.",
])
def test_no_name(text: str) -> None:
    assert find_name(Transcript.from_text(text)) is None


@pytest.mark.parametrize("caller,agent,expected", [
    ("There's a smell of gas in the kitchen.", "", "emergency"),
    ("We've no heating and my mum is eighty nine.", "", "emergency"),
    ("We've no heating since Monday.", "", "urgent"),
    ("I'm locked out and it's the middle of the night.", "", "emergency"),
    ("I'm locked out of the flat.", "", "urgent"),
    ("There's some damp in the bedroom, no rush.", "", "routine"),
    ("The gate squeaks.", "", "routine"),
    ("We've no heating and the baby is here.", "I'll book that as urgent.", "urgent"),
    ("A tap is dripping.", "Northgate emergency line. Right, that's an emergency.", "emergency"),
    ("The toilet is blocked.", "Northgate emergency line, how can I help?", "urgent"),
])
def test_urgency_rules(caller: str, agent: str, expected: str) -> None:
    assert classify_urgency(caller, agent) == expected


@pytest.mark.parametrize("caller,category,segment", [
    ("My landlord won't fix the boiler and there's no hot water.", "heating_boiler", "tenant"),
    ("My tenants say the back door won't lock.", "door_window_security", "landlord"),
    ("I own the house and the toilet is blocked.", "blockage_drainage", "homeowner"),
    ("Our shop has sparks coming from a socket.", "electrical", "commercial"),
    ("The key snapped in the lock and I'm locked out.", "lockout", "other"),
    ("Just wondering about your prices.", "other", "other"),
])
def test_category_and_segment(caller: str, category: str, segment: str) -> None:
    facts = extract_facts(call(f"caller: {caller}"))
    assert (facts.issue_category, facts.lead_segment) == (category, segment)


UNSEEN_CALLS = [
    ("""agent: Hello, Northgate repairs, Mike speaking.
caller: Hi there, my radiators are all cold and the boiler keeps making a banging noise.
agent: Can I get your name?
caller: Yeah, Siobhan Kelly.
agent: And the address of the property?
caller: It's fifty two Hawthorn Avenue, Sheffield, S eleven, eight Y U.
agent: Is there anyone vulnerable there?
caller: My little boy, he's two, and it's freezing.
agent: Best number?
caller: oh seven nine one one, two three four, five six seven.""",
     {"caller_name": "Siobhan Kelly", "callback_number": "+447911234567", "address": "52 Hawthorn Avenue, Sheffield",
      "postcode": "S11 8YU", "urgency": "emergency", "issue_category": "heating_boiler", "lead_segment": "other"}),
    ("""agent: Northgate, how can I help?
caller: Hello, I manage a few properties and one of my tenants says the front window won't close after a break-in.
agent: Oh dear. Your name please?
caller: My name is Priya Raman.
agent: And where is the property?
caller: Flat ten, one hundred and five Queen's Road, Brighton, B N two, three X E.
agent: We'll get someone out today.""",
     {"caller_name": "Priya Raman", "callback_number": None, "address": "Flat 10, 105 Queen's Road, Brighton",
      "postcode": "BN2 3XE", "urgency": "urgent", "issue_category": "door_window_security",
      "lead_segment": "landlord"}),
]


@pytest.mark.parametrize("text,expected", UNSEEN_CALLS, ids=["boiler_sheffield", "security_brighton"])
def test_calls_written_after_the_rules(text: str, expected: dict[str, Any]) -> None:
    """Calls beyond the fixtures, in other wording. Their first run found gaps (cold radiators with a small child,
    the agent's promised visit time) that the urgency rules now cover, so they guard those rules; they are not a
    held-out accuracy measure."""
    got = extract_facts(Transcript.from_text(text)).model_dump()
    assert {k: got[k] for k in expected} == expected


def test_a_flat_without_other_cues_is_a_tenant() -> None:
    facts = extract_facts(call("agent: And the address?", "caller: Flat four, ten Mill Lane, Derby."))
    assert (facts.address, facts.lead_segment) == ("Flat 4, 10 Mill Lane, Derby", "tenant")


def test_empty_transcript_gives_neutral_facts() -> None:
    facts = extract_facts(Transcript(()))
    assert facts.model_dump(exclude={"evidence"}) == {
        "caller_name": None, "callback_number": None, "address": None, "postcode": None, "urgency": "routine",
        "issue_category": "other", "summary": "Routine other: no problem described", "lead_segment": "other",
        "needs_confirmation": []}
    assert facts.evidence is not None and facts.evidence.postcode is None and facts.evidence.caller_name is None
    assert facts.evidence.urgency is not None and facts.evidence.urgency.source == "inferred"


SPOKEN = st.sampled_from(["oh", "double", "triple", "seven", "twenty", "hundred", "and", "L", "S", "a.", "b", ",",
                          ".", "Flat", "Road", "my name is", "It's", "Jo", "Smith", "gas", "locked out", "postcode",
                          "plus", "four", "o", "12", "LS6", "2AB", "-", "’s", "\n", "caller:", "agent:", "?"])


@settings(max_examples=150, deadline=None)
@given(turns=st.lists(st.tuples(st.sampled_from(["caller", "agent"]),
                                st.one_of(st.text(max_size=80), st.lists(SPOKEN, max_size=30).map(" ".join))),
                      max_size=6))
def test_never_raises_and_stays_in_schema(turns: list[tuple[Speaker, str]]) -> None:
    facts = extract_facts(Transcript.from_segments((speaker, text, n) for n, (speaker, text) in enumerate(turns)))
    assert "\n" not in facts.summary
    assert facts.postcode is None or re.fullmatch(r"[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}", facts.postcode)
    assert facts.callback_number is None or re.fullmatch(r"\+\d{8,15}", facts.callback_number)
