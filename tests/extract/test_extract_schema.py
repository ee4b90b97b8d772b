"""CallFacts normalisation and strict schema; Transcript parsing and rendering."""

from __future__ import annotations

import pytest
from openai.lib._pydantic import to_strict_json_schema
from pydantic import ValidationError

from switchboard.extract.errors import InvalidTranscript
from switchboard.extract.schema import CallFacts, Transcript, Turn, normalise_phone, normalise_postcode
from tests.emulators.openai_server import validate_request

BASE = {"caller_name": "Jo", "callback_number": None, "address": None, "postcode": None, "urgency": "urgent",
        "issue_category": "leak", "summary": "x", "lead_segment": "tenant"}


@pytest.mark.parametrize("raw,expected", [("ls62ab", "LS6 2AB"), ("LS6 2AB", "LS6 2AB"), (" sw1a 1aa ", "SW1A 1AA"),
                                          ("M14-5TQ", "M14 5TQ"), ("12345", None), ("LS6", None)])
def test_normalise_postcode(raw: str, expected: str | None) -> None:
    assert normalise_postcode(raw) == expected


@pytest.mark.parametrize("raw,expected", [("07700 900123", "+447700900123"), ("+44 7700 900123", "+447700900123"),
                                          ("447700900123", "+447700900123"), ("0044 7700 900123", "+447700900123"),
                                          ("0113 496 0000", "+441134960000"), ("+1 415 555 0100", "+14155550100"),
                                          ("123", None), ("", None)])
def test_normalise_phone(raw: str, expected: str | None) -> None:
    assert normalise_phone(raw) == expected


def test_call_facts_normalise_what_a_model_returns() -> None:
    facts = CallFacts.model_validate({**BASE, "postcode": "ls6 2ab", "callback_number": "07700 900123",
                                      "summary": "Leak in the\nkitchen,   ceiling bulging"})
    assert (facts.postcode, facts.callback_number) == ("LS6 2AB", "+447700900123")
    assert facts.summary == "Leak in the kitchen, ceiling bulging"
    kept = CallFacts.model_validate({**BASE, "postcode": "unknown", "callback_number": "ask reception"})
    assert (kept.postcode, kept.callback_number) == ("unknown", "ask reception")


@pytest.mark.parametrize("change", [{"urgency": "high"}, {"issue_category": "plumbing"}, {"extra": 1},
                                    {"summary": None}])
def test_call_facts_reject_values_outside_the_schema(change: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CallFacts.model_validate({**BASE, **change})


def test_strict_schema_is_accepted_by_the_emulator_rules() -> None:
    schema = to_strict_json_schema(CallFacts)
    assert set(schema["required"]) == set(CallFacts.model_fields)
    assert schema["additionalProperties"] is False
    assert schema["properties"]["caller_name"]["anyOf"][1] == {"type": "null"}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "caller: hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "CallFacts", "strict": True,
                                                                       "schema": schema}}}
    assert validate_request(body) is None


def test_transcript_from_text_and_render_round_trip() -> None:
    text = "agent: Northgate, how can I help?\n\nCaller:  My boiler's gone: no heat.\nAGENT : Name?\ncaller:"
    transcript = Transcript.from_text(text)
    assert transcript.turns == (Turn("agent", "Northgate, how can I help?"),
                                Turn("caller", "My boiler's gone: no heat."), Turn("agent", "Name?"),
                                Turn("caller", ""))
    assert Transcript.from_text(transcript.render()) == transcript
    assert transcript.text_of("caller") == "My boiler's gone: no heat. "


def test_transcript_rejects_unlabelled_lines() -> None:
    with pytest.raises(InvalidTranscript, match="line 2"):
        Transcript.from_text("caller: hello\nsomeone: hi")


def test_transcript_from_segments_orders_by_media_time() -> None:
    transcript = Transcript.from_segments([("caller", "second", 900), ("agent", "first", 100), ("agent", "  ", 50)])
    assert [t.text for t in transcript.turns] == ["first", "second"]
    assert transcript.turns[0].start_ms == 100
