"""Extraction while the call is live: the operator sees the lead fields fill in as the caller speaks.

One loop per call, owned by the call's TaskGroup. Final transcript segments are noted synchronously
(:meth:`LiveExtraction.note_final`); the loop runs the extractor on the transcript so far when
:class:`~switchboard.extract.IncrementalExtractor` says a run is due (after new caller speech, debounced, rate
limited) and publishes each result as an ``extraction`` live event. The stored, versioned final extraction is a
post-call job; these live runs are previews and are not stored.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from switchboard.extract import Extractor, IncrementalExtractor, Transcript
from switchboard.extract.errors import ExtractionError
from switchboard.extract.schema import Speaker
from switchboard.live import LivePublisher
from switchboard.live.events import ExtractionUpdate

log = logging.getLogger(__name__)


CallerIdLookup = Callable[[], Awaitable[str | None]]
Hold = Callable[[], Awaitable[None]]


class LiveExtraction:
    """``caller_id`` looks up the caller's number once, at the first run (the webhook stored it before the
    stream started); the extraction offers it, flagged, when no callback number has been said.

    ``hold`` is awaited before each run: an agent call holds runs while its reply is being prepared, because the
    caller's final that ends their turn is also what makes a run due, and a run's request (and its parse) then
    competes with the agent's model request for the event loop at the one moment the caller is waiting."""

    def __init__(self, call_sid: str, extractor: Extractor, hub: LivePublisher, *,
                 policy: IncrementalExtractor | None = None, clock: Callable[[], float] | None = None,
                 caller_id: CallerIdLookup | None = None, hold: Hold | None = None) -> None:
        self._call_sid = call_sid
        self._hold = hold
        self._caller_id_lookup = caller_id
        self._caller_id: str | None = None
        self._extractor = extractor
        self._hub = hub
        self._policy = policy or IncrementalExtractor()
        self._clock = clock or asyncio.get_running_loop().time
        self._segments: list[tuple[Speaker, str, int, tuple[str, ...]]] = []
        self._wake = asyncio.Event()
        self._closed = False
        self._due = False
        self.published = 0

    def note_final(self, speaker: Speaker, text: str, start_ms: int, alternatives: tuple[str, ...] = ()) -> None:
        """A final segment arrived (with the recogniser's other readings of it, if any); never waits."""
        self._segments.append((speaker, text, start_ms, alternatives))
        if not self._closed and self._policy.on_final(speaker, self._clock()):
            self._due = True  # the policy counted the run as started: the loop must run it
        self._wake.set()

    def close(self) -> None:
        """The call ended: finish the run in flight, start no more (the final extraction is a post-call job)."""
        self._closed = True
        self._wake.set()

    async def run(self) -> None:
        while not self._closed:
            if not self._due:
                deadline = self._policy.next_deadline()
                delay = None if deadline is None else max(0.0, deadline - self._clock())
                self._wake.clear()
                try:
                    async with asyncio.timeout(delay):
                        await self._wake.wait()
                    continue
                except TimeoutError:
                    if not self._policy.on_timer(self._clock()):
                        continue
            self._due = False
            if self._hold is not None:
                await self._hold()
            if self._closed:
                break
            await self._extract()
            self._due = self._policy.finished(self._clock())

    async def _extract(self) -> None:
        if self._caller_id_lookup is not None:
            lookup, self._caller_id_lookup = self._caller_id_lookup, None
            self._caller_id = await lookup()
        try:
            transcript = Transcript.from_segments(self._segments, caller_id=self._caller_id)
            extraction = await self._extractor.extract(transcript)
        except ExtractionError as exc:  # the fallback extractor already tried the offline rules
            log.warning("call %s: live extraction failed: %s", self._call_sid, exc)
            return
        self.published += 1
        self._hub.publish(self._call_sid, ExtractionUpdate(extraction.model_dump(mode="json")))
