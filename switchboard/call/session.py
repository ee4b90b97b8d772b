"""CallSession: wires one call's parts together and owns their lifetime.

The session does no DSP and no protocol parsing itself: the media handler gives it typed events, the track pipelines
do the audio work, transcript streams do recognition, the :class:`~.transcripts.TranscriptRelay` forwards what they
say. Everything outside the call comes in through the small protocols of :mod:`.ports` (``SessionDeps``), so the
whole lifecycle runs in unit tests on in-memory fakes.

The session owns one TaskGroup (one relay task per track, and live extraction) and finalises in ``__aexit__``
whatever ended the call (Twilio's ``stop``, a dropped socket, a protocol violation, an error, server shutdown):
audio held in jitter buffers is flushed, final words are recognised, the recording is closed, the call row is marked
ended with the cause, ``call.ended`` is published and the post-call jobs are recorded. Store failures never end a
call early: they are logged, and the end-of-call write upserts the row again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from audio import SAMPLES_PER_MS, STT_RATE
from switchboard.archive.base import recording_key
from switchboard.call.pipeline import TrackPipeline
from switchboard.call.ports import AfterCall, CallStore, EndSpool, LivePublisher, Recorder, RecorderFactory, SegmentSink
from switchboard.call.recorder import TRACKS, StereoRecorder, open_recording
from switchboard.call.transcripts import TranscriptRelay
from switchboard.extract import Extractor
from switchboard.extract.schema import Speaker
from switchboard.jobs.end_spool import CallEnd
from switchboard.jobs.handlers import caller_id_of
from switchboard.live.events import CallEnded, CallStarted, LiveEvent, TranscriptUpdate
from switchboard.live_extraction import LiveExtraction
from switchboard.metrics import Metrics
from switchboard.store.base import Segment, StreamPlacement
from switchboard.store.errors import StoreError
from switchboard.transcribe.base import Transcriber, TranscriptEvent, TranscriptStream
from switchboard.transcribe.null import NullStream
from switchboard.twilio.media_stream import Dtmf, Mark, Media, Start

if TYPE_CHECKING:
    from switchboard.call.agent import AgentCall

log = logging.getLogger(__name__)

def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class SessionDeps:
    """The services a call needs, built once by the app's lifespan (or as fakes by a test)."""

    store: CallStore
    hub: LivePublisher
    transcriber: Transcriber
    writer: SegmentSink
    data_dir: Path
    metrics: Metrics
    live_extractor: Extractor | None = None
    """Extraction previews while the call is live; None = none."""
    after_call: AfterCall | None = None
    """Records the durable post-call jobs; None = transcripts only."""
    end_spool: EndSpool | None = None
    """Keeps the end of a call (row and jobs) on disk when the database cannot take it; None = logged only."""
    recorder: RecorderFactory = StereoRecorder
    clock: Callable[[], datetime] = field(default=utc_now)
    """Wall time for the call's timestamps (started/ended); media time never comes from it."""
    drain_stall_s: float = 600.0
    """After the call stops, a track's recogniser may take this long per result before it is abandoned (a local
    recogniser shared by many calls can have a long queue; cloud providers have their own stall detection)."""
    drain_timeout_s: float = 1800.0
    """Hard cap on finishing a call's transcripts (a recogniser working through a long backlog keeps going)."""
    instance_id: str | None = None
    """Stored with the stream's start, so this instance can finish the call if it dies mid-call."""


class CallSession:
    """One live call. Use as ``async with CallSession(start, deps) as session:``."""

    def __init__(self, start: Start, deps: SessionDeps, *,
                 parser_stats: Callable[[], Mapping[str, object]] = dict,
                 local: StreamPlacement | None = None) -> None:
        """``parser_stats`` is read once, at the end: the media-stream parser's counters (skipped messages, gaps).
        ``local``: where this instance would place the stream in its call (earlier streams it holds or held); the
        store's placement, which also knows other instances' streams, wins unless the database is down."""
        self.start, self.deps = start, deps
        self.placement = local or StreamPlacement()
        self._media_end_ms = 0
        self.started_at = deps.clock()
        self.end_reason = "stop"
        self.recording_key = recording_key(start.call_sid, self.started_at)
        self._parser_stats = parser_stats
        self._live: LiveExtraction | None = None
        self._relay = TranscriptRelay(start.call_sid, deps.hub, deps.writer, deps.metrics, deps.drain_stall_s,
                                      self._note_final)
        self._tracks: dict[str, TrackPipeline] = {}
        self._stack = AsyncExitStack()
        self._recorder: Recorder | None = None
        self._live_task: asyncio.Task[None] | None = None
        self._relaying = 0
        self._stopped = False
        self.agent: AgentCall | None = None
        """Agent mode (a bidirectional stream): the agent this call hosts (:mod:`switchboard.call.agent`); its
        audio is the outbound track, recorded as played and never re-transcribed. Set before ``__aenter__``."""
        self._agent_chunks = 0
        self._agent_seq = 0
        self._stt_seconds: dict[str, float] = {}

    @property
    def call_sid(self) -> str:
        return self.start.call_sid

    @property
    def providers(self) -> set[str]:
        return self._relay.providers

    async def __aenter__(self) -> CallSession:
        recorder, self.recording_key = open_recording(
            self.deps.data_dir, lambda part: recording_key(self.call_sid, self.started_at, part), self.deps.recorder)
        self._recorder = recorder
        try:
            await self._place()
            streams = []
            if self.agent is not None:
                # The greeting goes out while the caller's recogniser opens (which can take hundreds of ms): the
                # agent's own track first, then the agent in a group of its own (exited last, after the drain).
                streams.append(("outbound", await self._open("outbound")))
                agent_group = await self._stack.enter_async_context(asyncio.TaskGroup())
                self._relay.listener = self._heard
                agent_group.create_task(self.agent.run(), name=f"agent:{self.call_sid}")
            streams += [(track, await self._open(track)) for track in TRACKS if track not in self._tracks]
            group = await self._stack.enter_async_context(asyncio.TaskGroup())
            for track, stream in streams:
                self._relaying += 1
                group.create_task(self._relay_track(track, stream), name=f"transcripts:{self.call_sid}:{track}")
            if self.deps.live_extractor is not None:
                self._live = LiveExtraction(self.call_sid, self.deps.live_extractor, self.deps.hub,
                                            caller_id=self._caller_id,
                                            hold=None if self.agent is None else self.agent.wait_not_thinking)
                self._live_task = group.create_task(self._live.run(), name=f"live-extraction:{self.call_sid}")
        except BaseException:
            if self.agent is not None:
                self.agent.stop("the call could not start")
            await self._stack.aclose()
            recorder.close()
            raise
        await self._record_start()
        return self

    async def _open(self, track: str) -> TranscriptStream:
        assert self._recorder is not None
        agent_track = self.agent is not None and track == "outbound"
        stream = NullStream(track) if agent_track else await self.deps.transcriber.open(track, STT_RATE)
        self._stack.push_async_callback(stream.aclose)
        self._tracks[track] = TrackPipeline(track, stream, self._recorder.write, lag=self.deps.metrics.handoff_lag)
        return stream

    async def _caller_id(self) -> str | None:
        """The caller's number the voice webhook stored, for the live extraction's caller-ID fallback."""
        try:
            return caller_id_of(await self.deps.store.get_call(self.call_sid))
        except StoreError as exc:
            log.warning("call %s: no caller ID for live extraction: %s", self.call_sid, exc)
            return None

    def on_media(self, media: Media) -> None:
        pipeline = self._tracks.get(media.track)
        if pipeline is not None and not self._stopped:
            self._media_end_ms = max(self._media_end_ms, media.timestamp_ms + len(media.payload) // SAMPLES_PER_MS)
            pipeline.push(media.chunk, media.timestamp_ms, media.payload)
            for other in self._tracks.values():  # a silent track's holes are filled as time moves on, not at once
                if other is not pipeline:
                    other.keep_up(media.timestamp_ms)
            if self.agent is not None and media.track == "inbound":
                self.agent.on_caller_audio(media)

    def on_control(self, event: Mark | Dtmf) -> None:
        """A mark echo or a key press (bidirectional streams only): the agent's."""
        if self.agent is not None and not self._stopped:
            self.agent.on_control(event)

    # -- the agent's host (switchboard.call.agent.AgentHost) --------------------------------------------------

    def play(self, timestamp_ms: int, payload: bytes) -> None:
        pipeline = self._tracks.get("outbound")
        if pipeline is not None and payload and not self._stopped:
            self._agent_chunks += 1
            pipeline.push(self._agent_chunks, timestamp_ms, payload)

    def agent_said(self, text: str, start_ms: int, end_ms: int) -> None:
        self._agent_seq += 1
        self.providers.add("tts")
        at, part = self.placement.offset_ms, self.placement.part
        start_ms, end_ms = start_ms + at, end_ms + at
        self.deps.writer.add(Segment(self.call_sid, "outbound", self._agent_seq, start_ms, end_ms, text, "tts", None,
                                     part))
        self.deps.hub.publish(self.call_sid, TranscriptUpdate("outbound", "agent", text, True, start_ms, end_ms,
                                                              "tts", None))
        self._note_final("agent", text, start_ms)

    def publish(self, event: LiveEvent) -> None:
        self.deps.hub.publish(self.call_sid, event)

    def _heard(self, event: TranscriptEvent) -> None:
        """A caller transcript for the agent; finals count as STT usage (seconds of speech per provider)."""
        if event.track != "inbound":
            return
        if event.is_final and event.text:
            seconds = max(0, event.end_ms - event.start_ms) / 1000
            self._stt_seconds[event.provider] = self._stt_seconds.get(event.provider, 0.0) + seconds
        if self.agent is not None and not self._stopped:
            self.agent.on_transcript(event)

    def stop(self, reason: str) -> None:
        """No more media: flush every track so its final words reach the recogniser."""
        if self._stopped:
            return
        self._stopped = True
        self.end_reason = reason
        if self.agent is not None:
            self.agent.stop(reason)
        for pipeline in self._tracks.values():
            pipeline.finish()
        self._relay.stop()

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
            self._relay.errors.append("drain timeout")
        finally:
            await self._record_end()

    def live_stats(self) -> dict[str, Any]:
        """Media so far, per track (jitter-buffer counters) and for the recording; cheap, for the API."""
        recording = self._recorder.stats() if self._recorder is not None else {}
        return {"tracks": {t: p.stats() for t, p in self._tracks.items()}, "recording": recording}

    async def _relay_track(self, track: str, stream: TranscriptStream) -> None:
        try:
            await self._relay.run(track, stream)
        finally:
            self._relaying -= 1
            if self._relaying == 0 and self._live_task is not None:
                # every final is in: a preview still running is moot (the final extraction is a job), and a slow
                # model must not hold up the end of the call
                self._live_task.cancel()

    def _note_final(self, speaker: Speaker, text: str, start_ms: int, alternatives: tuple[str, ...] = ()) -> None:
        if self._live is not None:
            self._live.note_final(speaker, text, start_ms, alternatives)

    async def _place(self) -> None:
        """Store the stream's start and learn its place in the call (before any segment: they carry it)."""
        start, at, store = self.start, self.started_at, self.deps.store
        await self._stored("record stream start", store.create_call(
            self.call_sid, account_sid=start.account_sid, from_number=None, to_number=None, direction=None,
            mode=None, status="in-progress", at=at))
        try:
            self.placement = await store.stream_started(
                self.call_sid, stream_sid=start.stream_sid, at=at, instance_id=self.deps.instance_id,
                recording_key=self.recording_key, after_ms=self.placement.offset_ms)
        except StoreError as exc:
            log.error("call %s: could not record stream start (placed by this instance: %s): %s", self.call_sid,
                      self.placement, exc)
        self._relay.part, self._relay.offset_ms = self.placement.part, self.placement.offset_ms

    @property
    def media_stopped(self) -> bool:
        """No more media will come (the stream stopped): another stream of the call may start."""
        return self._stopped

    @property
    def timeline_end_ms(self) -> int:
        """The newest media of this stream on the call's timeline: where a next stream of the call may start."""
        return self.placement.offset_ms + self._media_end_ms

    async def _record_start(self) -> None:
        self.deps.metrics.inc("switchboard_calls_started_total")
        start, at = self.start, self.started_at
        self.deps.hub.publish(self.call_sid, CallStarted(start.stream_sid, tuple(start.tracks), at.isoformat(),
                                                         self.placement.part, self.placement.offset_ms))

    async def _record_end(self) -> None:
        assert self._recorder is not None
        self.deps.metrics.inc("switchboard_calls_ended_total")
        media_ms = self._recorder.close()
        stats = {"tracks": {t: p.stats() for t, p in self._tracks.items()}, "recording": self._recorder.stats(),
                 "parser": dict(self._parser_stats()), **self._relay.stats()}
        if self.agent is not None:
            stats["agent"] = self.agent.summary()
        ended = self.deps.clock()
        if not await self.deps.writer.wait_flushed():
            log.warning("call %s: transcript segments are still queued at the end of the call", self.call_sid)
        store = self.deps.store
        ok = await self._stored("record the end of the call", store.create_call(
            self.call_sid, account_sid=self.start.account_sid, from_number=None, to_number=None, direction=None,
            mode=None, status=None, at=self.started_at))
        part = self.placement.part
        ok = await self._stored("record the end of the call", store.end_call(
            self.call_sid, at=ended, reason=self.end_reason, media_ms=media_ms, recording_key=self.recording_key,
            recording_status="local", providers=sorted(self.providers), stats=stats,
            recording_incomplete=self._recorder.incomplete, part=part)) and ok
        if self.agent is not None:
            ok = await self._record_agent(self.agent) and ok
        self.deps.hub.publish(self.call_sid, CallEnded(self.end_reason, self.placement.offset_ms + media_ms,
                                                       ended.isoformat(), self.recording_key, self.start.stream_sid,
                                                       part))
        if self.deps.after_call is not None:
            ok = await self._stored("record its post-call jobs", self.deps.after_call.call_ended(
                self.call_sid, recording_path=self.deps.data_dir / self.recording_key,
                recording_key=self.recording_key, part=part)) and ok
        if not ok and self.deps.end_spool is not None:  # the database missed the end: keep it on disk until it is back
            await self.deps.end_spool.put(CallEnd(
                self.call_sid, self.start.account_sid, self.started_at, ended, self.end_reason, media_ms,
                self.recording_key, str(self.deps.data_dir / self.recording_key), sorted(self.providers), stats,
                self._recorder.incomplete, part))

    async def _record_agent(self, agent: AgentCall) -> bool:
        """The agent's usage (STT: seconds of caller speech each provider recognised) and turn latencies, stored
        with the call and counted in ``/metrics``."""
        for provider, seconds in self._stt_seconds.items():
            agent.usage.add_stt(provider, seconds)
        usage = agent.usage.as_json()
        metrics = self.deps.metrics
        for model, tokens in usage["models"].items():
            for kind in ("prompt_tokens", "completion_tokens"):
                metrics.inc("switchboard_agent_model_tokens_total", tokens[kind], labels={"model": model, "kind": kind})
        for voice, chars in usage["tts_chars"].items():
            metrics.inc("switchboard_agent_tts_characters_total", chars, labels={"voice": voice})
        for provider, seconds in usage["stt_seconds"].items():
            metrics.inc("switchboard_agent_stt_ms_total", round(seconds * 1000), labels={"provider": provider})
        return await self._stored("store the agent's usage", self.deps.store.record_usage(
            self.call_sid, usage=usage, turn_latencies_ms=agent.turns.latencies_ms))

    async def _stored(self, what: str, write: Awaitable[None]) -> bool:
        """Run one store write; a :class:`StoreError` is logged (the call goes on), never raised. The one place the
        session handles store errors."""
        try:
            await write
        except StoreError as exc:
            log.error("call %s: could not %s: %s", self.call_sid, what, exc)
            return False
        return True


__all__ = ["CallSession", "SessionDeps", "utc_now"]
