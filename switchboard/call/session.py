"""CallSession: wires one call's parts together and owns their lifetime.

The session does no DSP and no protocol parsing itself: the media handler gives it typed events, the track pipelines
do the audio work, transcript streams do recognition. The session owns one TaskGroup (one consumer task per track
reading its transcript stream) and finalises in ``__aexit__`` whatever ended the call (Twilio's ``stop``, a dropped
socket, a protocol violation, server shutdown): audio held in jitter buffers is flushed, final words are recognised,
the recording is closed and the call row is marked ended with the cause.

When the transcriber fails over (a :class:`~switchboard.transcribe.fallback.FallbackStream`), the stream yields each
switch in order with the events; the session publishes it as a ``provider.switched`` live event, counts it in
``switchboard_provider_switches_total`` and keeps it in the call's stats.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from switchboard.archive.base import recording_key
from switchboard.call.pipeline import TrackPipeline
from switchboard.call.recorder import TRACKS, StereoRecorder, open_recording
from switchboard.jobs.handlers import caller_id_of
from switchboard.live import TranscriptHub
from switchboard.live.events import (
    CallEnded,
    CallStarted,
    ProviderSwitchUpdate,
    TranscriberError,
    TranscriptUpdate,
)
from switchboard.live_extraction import LiveExtraction
from switchboard.metrics import Metrics
from switchboard.store.base import Segment, Store
from switchboard.store.errors import StoreError
from switchboard.store.writer import SegmentWriter
from switchboard.transcribe.base import ProviderSwitched, Transcriber, TranscriptEvent, TranscriptStream
from switchboard.transcribe.errors import TranscriptionError
from switchboard.twilio.media_stream import Media, Start

if TYPE_CHECKING:
    from switchboard.postcall import PostCall

log = logging.getLogger(__name__)

SPEAKERS = {"inbound": "caller", "outbound": "agent"}


@dataclass(frozen=True, slots=True)
class SessionDeps:
    """The services a call needs, built once by the app's lifespan."""

    store: Store
    hub: TranscriptHub
    transcriber: Transcriber
    writer: SegmentWriter
    data_dir: Path
    metrics: Metrics
    post_call: PostCall | None = None
    """Live extraction during the call and the durable post-call jobs; None = transcripts only."""
    drain_stall_s: float = 600.0
    """After the call stops, a track's recogniser may take this long per result before it is abandoned (a local
    recogniser shared by many calls can have a long queue; cloud providers have their own stall detection)."""
    drain_timeout_s: float = 1800.0
    """Hard cap on finishing a call's transcripts (a recogniser working through a long backlog keeps going)."""
    instance_id: str | None = None
    """Stored with the stream's start, so this instance can finish the call if it dies mid-call."""


@dataclass(slots=True)
class _Track:
    pipeline: TrackPipeline
    stream: TranscriptStream
    seq: int = 0
    waiting: asyncio.Timeout | None = None


@dataclass
class CallSession:
    """One live call. Use as ``async with CallSession(start, deps) as session:``."""

    start: Start
    deps: SessionDeps
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    end_reason: str = "stop"
    providers: set[str] = field(default_factory=set)
    transcription_errors: list[str] = field(default_factory=list)
    switches: list[ProviderSwitched] = field(default_factory=list)
    parser_stats: Callable[[], Mapping[str, object]] = dict
    """Read once, at the end of the call: the media-stream parser's counters (skipped messages, gaps)."""
    _tracks: dict[str, _Track] = field(default_factory=dict)
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    _recorder: StereoRecorder | None = None
    _stopped: bool = False
    _live: LiveExtraction | None = None
    _live_task: asyncio.Task[None] | None = None
    _consuming: int = 0
    recording_key: str = ""

    @property
    def call_sid(self) -> str:
        return self.start.call_sid

    async def __aenter__(self) -> CallSession:
        self._recorder, self.recording_key = open_recording(
            self.deps.data_dir, lambda part: recording_key(self.call_sid, self.started_at, part))
        try:
            for track in TRACKS:
                stream = await self.deps.transcriber.open(track, 16000)
                self._stack.push_async_callback(stream.aclose)
                pipeline = TrackPipeline(track, stream, self._recorder.write, lag=self.deps.metrics.handoff_lag)
                self._tracks[track] = _Track(pipeline, stream)
            group = await self._stack.enter_async_context(asyncio.TaskGroup())
            for track, state in self._tracks.items():
                self._consuming += 1
                group.create_task(self._consume(track, state), name=f"transcripts:{self.call_sid}:{track}")
            if self.deps.post_call is not None:
                self._live = LiveExtraction(self.call_sid, self.deps.post_call.extractor, self.deps.hub,
                                            caller_id=self._caller_id)
                self._live_task = group.create_task(self._live.run(), name=f"live-extraction:{self.call_sid}")
        except BaseException:
            await self._stack.aclose()
            self._recorder.close()
            raise
        await self._record_start()
        return self

    async def _caller_id(self) -> str | None:
        """The caller's number the voice webhook stored, for the live extraction's caller-ID fallback."""
        try:
            return caller_id_of(await self.deps.store.get_call(self.call_sid))
        except StoreError as exc:
            log.warning("call %s: no caller ID for live extraction: %s", self.call_sid, exc)
            return None

    def on_media(self, media: Media) -> None:
        state = self._tracks.get(media.track)
        if state is not None and not self._stopped:
            state.pipeline.push(media.chunk, media.timestamp_ms, media.payload)
            for other in self._tracks.values():  # a silent track's holes are filled as time moves on, not at once
                if other is not state:
                    other.pipeline.keep_up(media.timestamp_ms)

    def stop(self, reason: str) -> None:
        """No more media: flush every track so its final words reach the recogniser."""
        if self._stopped:
            return
        self._stopped = True
        self.end_reason = reason
        for state in self._tracks.values():
            state.pipeline.finish()
            if state.waiting is not None:  # from now on each result must come within the stall limit
                state.waiting.reschedule(self._stall_deadline())

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        if exc is not None and not self._stopped:
            self.end_reason = "server shutdown" if isinstance(exc, asyncio.CancelledError) else f"error: {exc!r}"
        self.stop(self.end_reason)
        try:
            async with asyncio.timeout(self.deps.drain_timeout_s):
                await self._stack.__aexit__(None, None, None)
        except TimeoutError:
            log.warning("call %s: transcripts did not drain in %.0fs", self.call_sid, self.deps.drain_timeout_s)
            self.transcription_errors.append("drain timeout")
        finally:
            await self._record_end()

    def _stall_deadline(self) -> float | None:
        return asyncio.get_running_loop().time() + self.deps.drain_stall_s if self._stopped else None

    async def _consume(self, track: str, state: _Track) -> None:
        """Forward one track's transcripts to the live hub and the segment writer.

        While the call is live there is no deadline; once it has stopped, the recogniser may work through its
        backlog for as long as it keeps producing results, but a stall of ``drain_stall_s`` abandons the track.
        """
        events = aiter(state.stream)
        try:
            while True:
                try:
                    async with asyncio.timeout(self._stall_deadline()) as waiting:
                        state.waiting = waiting
                        event = await anext(events)
                except StopAsyncIteration:
                    return
                finally:
                    state.waiting = None
                if isinstance(event, ProviderSwitched):
                    self._publish_switch(event)
                    continue
                self._publish_transcript(event)
                if event.is_final and event.text:
                    state.seq += 1
                    self.deps.writer.add(Segment(self.call_sid, track, state.seq, event.start_ms, event.end_ms,
                                                 event.text, event.provider, event.confidence))
                    if self._live is not None:
                        self._live.note_final(SPEAKERS[track], event.text, event.start_ms)  # type: ignore[arg-type]
        except TranscriptionError as exc:
            # Recognition failing must not stop the recording or the other track.
            self._transcription_failed(track, f"transcription failed: {exc}")
        except TimeoutError:
            self._transcription_failed(track, f"recogniser stalled for {self.deps.drain_stall_s:.0f}s after the call")
        finally:
            self._consuming -= 1
            if self._consuming == 0 and self._live_task is not None:
                # every final is in: a preview still running is moot (the final extraction is a job), and a
                # slow model must not hold up the end of the call
                self._live_task.cancel()

    def _transcription_failed(self, track: str, error: str) -> None:
        log.error("call %s track %s: %s", self.call_sid, track, error)
        self.transcription_errors.append(f"{track}: {error}")
        self.deps.hub.publish(self.call_sid, TranscriberError(track, error))

    def _publish_switch(self, switch: ProviderSwitched) -> None:
        self.switches.append(switch)
        labels = {"from": switch.from_provider, "to": switch.to_provider, "reason": switch.reason.value}
        self.deps.metrics.inc("switchboard_provider_switches_total", labels=labels)
        self.deps.hub.publish(self.call_sid, ProviderSwitchUpdate(
            switch.track, switch.from_provider, switch.to_provider, switch.reason.value, switch.media_ms))

    def _publish_transcript(self, event: TranscriptEvent) -> None:
        self.providers.add(event.provider)
        self.deps.hub.publish(self.call_sid, TranscriptUpdate(
            event.track, SPEAKERS.get(event.track, event.track), event.text, event.is_final, event.start_ms,
            event.end_ms, event.provider, event.confidence))

    async def _record_start(self) -> None:
        self.deps.metrics.inc("switchboard_calls_started_total")
        start = self.start
        self.deps.hub.publish(self.call_sid, CallStarted(start.stream_sid, tuple(start.tracks),
                                                         self.started_at.isoformat()))
        try:
            await self.deps.store.create_call(self.call_sid, account_sid=start.account_sid, from_number=None,
                                              to_number=None, direction=None, mode=None, status="in-progress",
                                              at=self.started_at)
            await self.deps.store.stream_started(self.call_sid, stream_sid=start.stream_sid, at=self.started_at,
                                                 instance_id=self.deps.instance_id,
                                                 recording_key=self.recording_key)
        except StoreError as exc:
            # The call goes on: the end-of-call write upserts the row again.
            log.warning("call %s: could not record stream start: %s", self.call_sid, exc)

    def live_stats(self) -> dict[str, Any]:
        """Media so far, per track (jitter-buffer counters) and for the recording; cheap, for the API."""
        recording = self._recorder.stats() if self._recorder is not None else {}
        return {"tracks": {t: s.pipeline.stats() for t, s in self._tracks.items()}, "recording": recording}

    async def _record_end(self) -> None:
        assert self._recorder is not None
        self.deps.metrics.inc("switchboard_calls_ended_total")
        media_ms = self._recorder.close()
        stats = {
            "tracks": {t: s.pipeline.stats() for t, s in self._tracks.items()},
            "recording": self._recorder.stats(),
            "parser": dict(self.parser_stats()),
            "transcription_errors": self.transcription_errors,
            "switches": [{"track": s.track, "from": s.from_provider, "to": s.to_provider, "reason": s.reason.value,
                          "media_ms": s.media_ms, "replay_from_ms": s.replay_from_ms} for s in self.switches],
        }
        ended = datetime.now(UTC)
        if not await self.deps.writer.wait_flushed():
            log.warning("call %s: transcript segments are still queued at the end of the call", self.call_sid)
        try:
            await self.deps.store.create_call(self.call_sid, account_sid=self.start.account_sid, from_number=None,
                                              to_number=None, direction=None, mode=None, status=None,
                                              at=self.started_at)
            await self.deps.store.end_call(self.call_sid, at=ended, reason=self.end_reason, media_ms=media_ms,
                                           recording_key=self.recording_key, recording_status="local",
                                           providers=sorted(self.providers), stats=stats,
                                           recording_incomplete=self._recorder.incomplete)
        except StoreError as exc:
            log.error("call %s: could not record the end of the call: %s", self.call_sid, exc)
        self.deps.hub.publish(self.call_sid, CallEnded(self.end_reason, media_ms, ended.isoformat(),
                                                       self.recording_key))
        if self.deps.post_call is not None:
            try:
                await self.deps.post_call.handlers.call_ended(
                    self.call_sid, recording_path=self.deps.data_dir / self.recording_key,
                    recording_key=self.recording_key)
            except StoreError as exc:
                log.error("call %s: could not record its post-call jobs: %s", self.call_sid, exc)
