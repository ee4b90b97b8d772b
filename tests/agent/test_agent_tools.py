"""Tool calls from the model are untrusted: strict schemas, size limits, no numbers, configured targets only."""

from __future__ import annotations

import json

import pytest

from switchboard.agent.profile import load_profile
from switchboard.agent.tools import (
    RaiseAlert,
    RecordDetails,
    RequestEnd,
    RequestTransfer,
    ToolRejected,
    parse_tool_call,
    tool_specs,
)

FACTS = {"caller_name": "Jane Doe", "callback_number": "07700 900123", "address": "1 Main St, Leeds",
         "postcode": "ls62ab", "urgency": "urgent", "issue_category": "leak", "summary": "Leak  under sink",
         "lead_segment": "tenant"}


def test_specs_are_strict_functions_with_the_extraction_schema() -> None:
    specs = {s["function"]["name"]: s["function"] for s in tool_specs(load_profile())}
    assert set(specs) == {"record_details", "transfer_to_operator", "send_emergency_alert", "end_call"}
    for spec in specs.values():
        assert spec["strict"] is True and spec["parameters"]["additionalProperties"] is False
        assert spec["description"]
    assert set(specs["record_details"]["parameters"]["properties"]) >= set(FACTS)
    assert "number" not in json.dumps(specs["transfer_to_operator"]["parameters"]["properties"])


def test_valid_calls_become_decisions_with_normalised_facts() -> None:
    decision = parse_tool_call("record_details", json.dumps(FACTS))
    assert isinstance(decision, RecordDetails)
    assert (decision.facts.postcode, decision.facts.callback_number) == ("LS6 2AB", "+447700900123")
    assert parse_tool_call("transfer_to_operator", '{"reason": "asked for a person"}') == RequestTransfer(
        "asked for a person")
    assert parse_tool_call("send_emergency_alert", '{"summary": "gas smell"}') == RaiseAlert("gas smell")
    assert parse_tool_call("end_call", '{"reason": "done"}') == RequestEnd("done")


@pytest.mark.parametrize(("name", "arguments", "reason"), [
    ("transfer_to_operator", '{"reason": "asked", "number": "09098790000"}', "number"),
    ("send_emergency_alert", '{"summary": "x", "recipients": ["+449098790000"]}', "recipients"),
    ("forward_call", '{"to": "09098790000"}', "no such tool"),
    ("end_call", "not json", "not JSON"),
    ("record_details", '{"caller_name": "Da', "not JSON"),
    ("end_call", "[1, 2]", "JSON object"),
    ("end_call", json.dumps({"reason": "x" * 301}), "reason"),
    ("record_details", json.dumps({**FACTS, "urgency": "catastrophic"}), "urgency"),
    ("record_details", json.dumps({**FACTS, "summary": "y" * 301}), "summary is longer"),
    ("record_details", json.dumps({**FACTS, "caller_name": "z" * 5000}), "longer than 4096 bytes"),
])
def test_bad_calls_are_rejected_with_a_reason(name: str, arguments: str, reason: str) -> None:
    with pytest.raises(ToolRejected, match=reason) as info:
        parse_tool_call(name, arguments)
    assert info.value.tool == name
    # only output that is not a JSON object is the model's breakage; the rest are refused requests
    assert info.value.malformed == (reason in ("not JSON", "JSON object"))
