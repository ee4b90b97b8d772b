"""Live event fan-out to operator dashboards: the typed events (``events.py``) and the hub that numbers them."""

from switchboard.live.errors import LiveError, Overflow
from switchboard.live.events import LiveEvent, WireEvent
from switchboard.live.hub import InMemoryHub, LivePublisher, Subscription, TranscriptHub

__all__ = [
    "InMemoryHub",
    "LiveError",
    "LiveEvent",
    "LivePublisher",
    "Overflow",
    "Subscription",
    "TranscriptHub",
    "WireEvent",
]
