"""Live event fan-out to operator dashboards."""

from switchboard.live.hub import Event, InMemoryHub, Overflow, Subscription, TranscriptHub

__all__ = ["Event", "InMemoryHub", "Overflow", "Subscription", "TranscriptHub"]
