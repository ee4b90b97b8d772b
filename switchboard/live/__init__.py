"""Live event fan-out to operator dashboards: the typed events (``events.py``) and the hub that numbers them."""

from switchboard.live.events import LiveEvent, WireEvent
from switchboard.live.hub import InMemoryHub, LivePublisher, Overflow, Subscription, TranscriptHub

__all__ = ["InMemoryHub", "LiveEvent", "LivePublisher", "Overflow", "Subscription", "TranscriptHub", "WireEvent"]
