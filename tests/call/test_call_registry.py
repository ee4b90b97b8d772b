"""CallRegistry: one stream receiving media per call; the next stream of a call once the earlier one stopped."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from switchboard.call.errors import DuplicateCall
from switchboard.call.registry import CallRegistry
from switchboard.store.base import StreamPlacement


@dataclass
class Stream:
    placement: StreamPlacement = field(default_factory=StreamPlacement)
    media_stopped: bool = False
    timeline_end_ms: int = 0

    def live_stats(self) -> dict[str, Any]:
        return {}


async def test_a_second_stream_is_refused_while_the_first_receives_media() -> None:
    registry = CallRegistry()
    async with registry.hold("CA1", Stream()):
        with pytest.raises(DuplicateCall):
            async with registry.hold("CA1", Stream()):
                pass


async def test_the_next_stream_is_taken_while_the_first_finishes_and_placed_after_it() -> None:
    registry = CallRegistry()
    first = Stream(StreamPlacement(1, 0))
    async with registry.hold("CA1", first):
        first.media_stopped, first.timeline_end_ms = True, 40_000  # stopped; its transcript is still draining
        assert registry.next_stream("CA1") == StreamPlacement(2, 40_000)
        second = Stream(StreamPlacement(2, 40_000))
        async with registry.hold("CA1", second):
            assert registry.get("CA1") is second and len(registry) == 2
            second.timeline_end_ms = 55_000
        assert registry.get("CA1") is first
    assert "CA1" not in registry and len(registry) == 0
    assert registry.next_stream("CA1") == StreamPlacement(3, 55_000)  # remembered after both left
    assert registry.next_stream("CA2") == StreamPlacement()
