"""The live events: README's table, the JSON on the wire and the dataclasses are one definition."""

from __future__ import annotations

import re
from pathlib import Path

from switchboard.live import InMemoryHub
from switchboard.live.events import (
    EVENT_TYPES,
    CallStarted,
    ExtractionUpdate,
    ProviderSwitchUpdate,
    as_json,
    json_keys,
)

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_table() -> dict[str, list[str]]:
    rows = re.findall(r"^\| `([a-z.]+)` \| (.*) \|$", README.read_text(), re.M)
    return {kind: re.findall(r"`([a-z_]+)`", fields) for kind, fields in rows if "." in kind or kind.isalpha()}


def test_readme_lists_every_event_with_exactly_its_fields() -> None:
    table = readme_table()
    for kind in EVENT_TYPES:
        assert kind.type in table, f"README has no row for {kind.type}"
        assert table[kind.type] == json_keys(kind), kind.type


def test_json_shape_renames_and_inlines_where_the_wire_says_so() -> None:
    switched = as_json(ProviderSwitchUpdate("inbound", "wisprflow", "local", "stall", 4_200))
    assert switched == {"type": "provider.switched", "track": "inbound", "from": "wisprflow", "to": "local",
                        "reason": "stall", "media_ms": 4_200}
    assert as_json(ExtractionUpdate({"name": "Ada"})) == {"type": "extraction", "name": "Ada", "final": False}
    assert as_json(CallStarted("MZ1", ("inbound", "outbound"), "t"))["tracks"] == ["inbound", "outbound"]


def test_the_hub_stamps_the_event_json() -> None:
    stamped = InMemoryHub().publish("CA1", CallStarted("MZ1", ("inbound",), "t"))
    assert stamped == {"type": "call.started", "stream_sid": "MZ1", "tracks": ["inbound"], "started_at": "t", "part": 1,
                       "offset_ms": 0,
                       "call_sid": "CA1", "seq": 1, "id": 1}
