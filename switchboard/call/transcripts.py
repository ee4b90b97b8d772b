"""TranscriptRelay: where one call's transcript streams go — live events, stored segments, live extraction.

One :meth:`TranscriptRelay.run` per track, each a task of the session's TaskGroup. While the call is live a stream
may take as long as it likes; once the call has stopped, a recogniser may work through its backlog for as long as
it keeps producing results, but a silence of ``drain_stall_s`` abandons the track. A failing recogniser is
reported (``transcriber.error``) and never stops the recording or the other track.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from switchboard.call.ports import LivePublisher, SegmentSink
from switchboard.extract.schema import Speaker
from switchboard.live.events import ProviderSwitchUpdate, TranscriberError, TranscriptUpdate
from switchboard.metrics import Metrics
from switchboard.store.base import Segment
from switchboard.transcribe.base import ProviderSwitched, TranscriptEvent, TranscriptStream
from switchboard.transcribe.errors import TranscriptionError

log = logging.getLogger(__name__)

SPEAKERS: Final[dict[str, Speaker]] = {"inbound": "caller", "outbound": "agent"}
OnFinal = Callable[[Speaker, str, int, tuple[str, ...]], None]
"""``(speaker, text, start_ms, alternatives)`` of each final, for live extraction."""


class TranscriptRelay:
    """One call's transcripts; what happened is kept in ``providers``, ``errors`` and ``switches``."""

    def __init__(self, call_sid: str, hub: LivePublisher, writer: SegmentSink, metrics: Metrics,
                 drain_stall_s: float, on_final: OnFinal | None = None) -> None:
        self.call_sid = call_sid
        self._hub, self._writer, self._metrics = hub, writer, metrics
        self._drain_stall_s, self._on_final = drain_stall_s, on_final
        self.providers: set[str] = set()
        self.errors: list[str] = []
        self.switches: list[ProviderSwitched] = []
        self._waiting: dict[str, asyncio.Timeout] = {}
        self._stopped = False
        self.listener: Callable[[TranscriptEvent], None] | None = None
        """Sees every transcript (partials too) as it is relayed, in the stream's media time: the agent listens to
        the caller here."""
        self.part = 1
        """Which stream of the call this is: its segments are keyed by it (their ``seq`` restarts per stream)."""
        self.offset_ms = 0
        """Added to the stream's media times for what is stored and published: the call's one timeline."""

    def stop(self) -> None:
        """The call has stopped: from now on each result must come within ``drain_stall_s``."""
        self._stopped = True
        for waiting in self._waiting.values():
            waiting.reschedule(self._deadline())

    async def run(self, track: str, stream: TranscriptStream) -> None:
        """Relay ``track`` until its stream ends, fails or stalls after the call."""
        items, seq = aiter(stream), 0
        try:
            while True:
                try:
                    async with asyncio.timeout_at(self._deadline()) as waiting:
                        self._waiting[track] = waiting
                        item = await anext(items)
                except StopAsyncIteration:
                    return
                finally:
                    self._waiting.pop(track, None)
                if isinstance(item, ProviderSwitched):
                    self._switched(item)
                    continue
                self._transcript(item)
                if item.is_final and item.text:
                    seq += 1
                    self._final(track, seq, item)
        except TranscriptionError as exc:
            self._failed(track, f"transcription failed: {exc}")
        except TimeoutError:
            self._failed(track, f"recogniser stalled for {self._drain_stall_s:.0f}s after the call")

    def _deadline(self) -> float | None:
        return asyncio.get_running_loop().time() + self._drain_stall_s if self._stopped else None

    def _transcript(self, event: TranscriptEvent) -> None:
        if self.listener is not None:
            self.listener(event)
        self.providers.add(event.provider)
        at = self.offset_ms
        self._hub.publish(self.call_sid, TranscriptUpdate(
            event.track, SPEAKERS.get(event.track, event.track), event.text, event.is_final, event.start_ms + at,
            event.end_ms + at, event.provider, event.confidence))

    def _final(self, track: str, seq: int, event: TranscriptEvent) -> None:
        at = self.offset_ms
        self._writer.add(Segment(self.call_sid, track, seq, event.start_ms + at, event.end_ms + at, event.text,
                                 event.provider, event.confidence, self.part))
        speaker = SPEAKERS.get(track)
        if self._on_final is not None and speaker is not None:
            self._on_final(speaker, event.text, event.start_ms + at, event.alternatives)

    def _switched(self, switch: ProviderSwitched) -> None:
        self.switches.append(switch)
        labels = {"from": switch.from_provider, "to": switch.to_provider, "reason": switch.reason.value}
        self._metrics.inc("switchboard_provider_switches_total", labels=labels)
        self._hub.publish(self.call_sid, ProviderSwitchUpdate(
            switch.track, switch.from_provider, switch.to_provider, switch.reason.value,
            switch.media_ms + self.offset_ms))

    def _failed(self, track: str, error: str) -> None:
        log.error("call %s track %s: %s", self.call_sid, track, error)
        self.errors.append(f"{track}: {error}")
        self._hub.publish(self.call_sid, TranscriberError(track, error))

    def stats(self) -> dict[str, object]:
        return {
            "transcription_errors": list(self.errors),
            "switches": [{"track": s.track, "from": s.from_provider, "to": s.to_provider, "reason": s.reason.value,
                          "media_ms": s.media_ms, "replay_from_ms": s.replay_from_ms} for s in self.switches],
        }


__all__ = ["SPEAKERS", "OnFinal", "TranscriptRelay"]
