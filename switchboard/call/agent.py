"""The voice agent in a live call: the caller's track in, the agent's voice out, on one bidirectional stream.

The session hosts one :class:`AgentCall` when the stream is ``<Connect><Stream>`` (``customParameters.mode ==
"agent"``). It feeds the call's inputs in, synchronously: caller frames (:meth:`on_caller_audio`: the media clock,
a speech gate for speech start/stop with its level, the turn-taking core's timers), caller transcripts
(:meth:`on_transcript`), Twilio mark echoes and keys (:meth:`on_control`). The agent turns the core's actions into
I/O: the dialog (model or offline script) in a task per reply, the voice (one stream per call, kept across turns),
Twilio ``media`` + ``mark`` frames per voice chunk and ``clear`` on barge-in, the emergency SMS during the call, a
transfer through the REST API. Time is media time (the caller track's timestamps), so the core's deadlines are
checked on every caller frame and need no timers of their own.

What the caller heard goes back to the host at the media time they heard it (:class:`~.playout.Playout`): the
recording's agent channel, and the agent's transcript (the text actually spoken, ``provider: tts``).

Lifetime: :meth:`run` owns every task of the call (sender, voice reader, replies, alerts, the transfer) in one
TaskGroup and returns, with all of them cancelled and awaited, once :meth:`stop` is called or the agent hangs up.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

from switchboard.agent.dialog import Dialog, DialogStats, Say
from switchboard.agent.events import (
    Action,
    AudioDone,
    AudioQueued,
    CallStarted,
    CancelReply,
    EndCall,
    Event,
    Heard,
    HungUp,
    Keypad,
    MarkPlayed,
    SendClear,
    SendMark,
    Speak,
    SpeechStarted,
    SpeechStopped,
    StartReply,
    Transfer,
    TurnUpdate,
)
from switchboard.agent.intake import gather
from switchboard.agent.profile import AgentProfile
from switchboard.agent.replies import CallMemory, ReplyAssembler
from switchboard.agent.tools import RaiseAlert
from switchboard.agent.turns import Phase, TurnTaker
from switchboard.agent.usage import CallUsage
from switchboard.alerts.sms import SmsAlerter, SmsError
from switchboard.call.playout import Playout, SpeechGate
from switchboard.call.turn_trace import TurnTrace
from switchboard.live.events import AgentTurnUpdate, LiveEvent
from switchboard.transcribe.base import TranscriptEvent
from switchboard.tts.base import AudioChunk, TurnEnd, VoiceStream
from switchboard.tts.errors import VoiceError
from switchboard.tts.fallback import FallbackStream
from switchboard.twilio.calls import CallApiError, TwilioCalls
from switchboard.twilio.events import Dtmf, Mark, Media
from switchboard.twilio.twiml import transfer_twiml

log = logging.getLogger(__name__)

MAX_OUTGOING = 500
"""Frames waiting for the socket (100 ms of audio each at most): the voice reader waits beyond this."""


class StreamGone(Exception):
    """The socket to Twilio can no longer be written (closed or reset): the call is over for the agent."""


class AgentHost(Protocol):
    """What the agent needs from the call it runs in."""

    @property
    def call_sid(self) -> str: ...

    def play(self, timestamp_ms: int, payload: bytes) -> None:
        """The caller heard ``payload`` (μ-law) from ``timestamp_ms``: the recording's agent channel."""

    def agent_said(self, text: str, start_ms: int, end_ms: int) -> None:
        """A final line of the agent's transcript (what was heard of one turn)."""

    def publish(self, event: LiveEvent) -> None: ...

    def stop(self, reason: str) -> None:
        """End the call's media (the agent hung up or handed the call on)."""


@dataclass
class Wire:
    """The stream's outgoing side: frame builders (the sans-I/O parser's) and the socket's send and close."""

    media: Callable[[bytes], str]
    mark: Callable[[str], str]
    clear: Callable[[], str]
    send: Callable[[str], Awaitable[None]]
    close: Callable[[], Awaitable[None]]


@dataclass
class Turns:
    """Per reply: when its audio started playing, and the latencies of the call (media ms)."""

    first_audio_ms: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[int] = field(default_factory=list)
    interrupted: int = 0
    finished: int = 0


class AgentCall:
    def __init__(self, host: AgentHost, wire: Wire, voice: VoiceStream, dialog: Dialog, profile: AgentProfile,
                 core: TurnTaker, *, calls: TwilioCalls | None = None, alerter: SmsAlerter | None = None,
                 call_url: str = "", caller_id: str | None = None, stats: DialogStats | None = None,
                 wall: Callable[[], float] = time.monotonic,
                 fork: Callable[[], tuple[str, dict[str, str]]] | None = None) -> None:
        """``fork``: the stream URL and parameters (a fresh token) a transfer forks the operator leg to, so the
        call's recording and transcript go on; None = the operator leg is not recorded."""
        self._host, self._wire, self._voice, self._dialog = host, wire, voice, dialog
        self._fork = fork
        self.profile, self.core = profile, core
        self._calls, self._alerter, self._call_url, self._caller_id = calls, alerter, call_url, caller_id
        self.stats = stats or DialogStats()
        self.memory = CallMemory()
        self.usage = CallUsage()
        self.turns = Turns()
        self.trace = TurnTrace()
        self._wall = wall
        self._final_at: float | None = None
        self.alerts_sent: list[str] = []
        self.end_reason: str | None = None
        self.now = 0
        self._gate = SpeechGate()
        self._playout = Playout()
        self._voice_turns: dict[int, int] = {}  # voice turn → reply id
        self._replies: dict[int, asyncio.Task[None]] = {}
        self._out: deque[tuple[str, str, int | None]] = deque()  # (kind, frame, reply id if its first audio)
        self._tasks: set[asyncio.Task[None]] = set()
        self._last_event_ms = 0
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._done = asyncio.Event()
        self._settled = asyncio.Event()  # set while no reply is being prepared (see wait_not_thinking)
        self._settled.set()
        self._group: asyncio.TaskGroup | None = None
        self._wall_started = time.monotonic()

    # -- lifetime -------------------------------------------------------------------------------------------------

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            sender = group.create_task(self._send_loop(), name=f"agent-send:{self._host.call_sid}")
            self._spawn(self._voice_loop(), "agent-voice")
            self._apply(self.core.handle(CallStarted(), self.now))
            await self._done.wait()
            for task in list(self._tasks):
                task.cancel()
            await self._flush_then(sender)
        self._group = None
        await self._voice.aclose()
        self.usage_from_voice()

    def stop(self, reason: str) -> None:
        """The call is over (caller hung up, stream stopped): cancel everything the agent was doing."""
        if self.end_reason is None:
            self.end_reason = reason
        self._apply(self.core.handle(HungUp(), self.now))
        self._done.set()

    async def _flush_then(self, sender: asyncio.Task[None]) -> None:
        """Let frames already queued go out (a goodbye's last mark), briefly, then stop the sender."""
        try:
            async with asyncio.timeout(0.5):
                while self._out and not sender.done():
                    self._room.clear()
                    await self._room.wait()
        except TimeoutError:
            pass
        sender.cancel()

    # -- inputs (synchronous, from the session) ----------------------------------------------------------------

    def on_caller_audio(self, media: Media) -> None:
        end = media.timestamp_ms + len(media.payload) // 8
        self.now = max(self.now, end)
        for edge in self._gate.push(media.payload, media.timestamp_ms):
            # At the edge's own time (up to 300 ms back), never before an event already given to the core.
            at = max(edge.at_ms, self._last_event_ms)
            event: Event = SpeechStarted(edge.level_db) if edge.started else SpeechStopped()
            self._apply(self.core.handle(event, at))
        deadline = self.core.next_deadline()
        if deadline is not None and deadline <= self.now:
            self._apply(self.core.on_timer(self.now))
        for timestamp, audio in self._playout.played(self.now):
            self._host.play(timestamp, audio)

    def on_transcript(self, event: TranscriptEvent) -> None:
        if event.is_final and event.text.strip():
            self._final_at = self._wall_ms()
        if event.text.strip() or event.is_final:
            self._apply(self.core.handle(Heard(event.text, event.is_final), self.now))

    def on_control(self, event: Mark | Dtmf) -> None:
        if isinstance(event, Mark):
            self._apply(self.core.handle(MarkPlayed(event.name), self.now))
        else:
            self._apply(self.core.handle(Keypad(event.digit), self.now))

    async def wait_not_thinking(self) -> None:
        """Until no reply is being prepared (the caller is waiting for the agent's first words): other work of
        the call that can wait (live extraction) waits for this."""
        await self._settled.wait()

    # -- actions --------------------------------------------------------------------------------------------------

    def _apply(self, actions: list[Action]) -> None:
        self._last_event_ms = max(self._last_event_ms, self.now)
        self._apply_actions(actions)
        if self.core.phase is Phase.THINKING:
            self._settled.clear()
        else:
            self._settled.set()

    def _apply_actions(self, actions: list[Action]) -> None:
        for action in actions:
            match action:
                case Speak(reply_id=rid, text=text):
                    self._voice_turns[self._voice.say(text)] = rid
                case StartReply(reply_id=rid):
                    if self._final_at is not None:
                        self.trace.stamp(rid, "final", self._final_at)
                    self.trace.stamp(rid, "endpoint", self._wall_ms())
                    self._start_reply(rid)
                case CancelReply(reply_id=rid):
                    task = self._replies.pop(rid, None)
                    if task is not None:
                        task.cancel()
                    self._voice.cancel()
                case SendMark(name=name):
                    self._push("mark", self._wire.mark(name))
                case SendClear():
                    self._out = deque(item for item in self._out if item[0] not in ("media", "mark"))
                    self._push("clear", self._wire.clear())
                    for timestamp, audio in self._playout.clear(self.now):
                        self._host.play(timestamp, audio)
                case TurnUpdate():
                    self._turn_update(action)
                case EndCall(reason=reason):
                    self._hang_up(f"agent ended the call ({reason})")
                case Transfer(reason=reason):
                    self._spawn(self._transfer(reason), "agent-transfer")

    def _turn_update(self, update: TurnUpdate) -> None:
        rid = update.reply_id
        if update.status == "started":
            if update.latency_ms is not None:
                self.turns.latencies_ms.append(update.latency_ms)
        else:
            start = self.turns.first_audio_ms.pop(rid, self.now)
            if update.heard:
                self._host.agent_said(update.heard, start, max(start, self.now))
            if update.status == "interrupted":
                self.turns.interrupted += 1
            else:
                self.turns.finished += 1
        self._host.publish(AgentTurnUpdate(rid, update.status, update.heard, update.latency_ms, self.now))

    def _hang_up(self, reason: str) -> None:
        if self.end_reason is None:
            self.end_reason = reason
        self._spawn(self._close_after_flush(), "agent-hangup")

    async def _close_after_flush(self) -> None:
        while self._out:
            self._room.clear()
            await self._room.wait()
        self._host.stop(self.end_reason or "agent ended the call")
        await self._wire.close()
        self._done.set()

    # -- tasks ----------------------------------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None] | None:
        """A task of this call, owned by :meth:`run`'s group and cancelled when the call ends."""
        if self._group is None or self._done.is_set():
            work.close()  # never started: the call is over
            return None
        task = self._group.create_task(work, name=f"{name}:{self._host.call_sid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _start_reply(self, rid: int) -> None:
        task = self._spawn(self._reply(rid), f"agent-reply-{rid}")
        if task is not None:
            self._replies[rid] = task
            task.add_done_callback(lambda _: self._replies.pop(rid, None))

    async def _reply(self, rid: int) -> None:
        self.trace.stamp(rid, "request", self._wall_ms())
        assembler = ReplyAssembler(rid, self.memory)
        outputs = self._dialog.reply(self.memory.context(self.core.transcript()))
        pushed = False
        try:
            async for output in outputs:
                if isinstance(output, Say):
                    self.trace.stamp(rid, "first_token", self._wall_ms())
                fed = assembler.feed(output)
                if fed.alert is not None:
                    self._spawn(self._alert(fed.alert), "agent-alert")
                for event in fed.events:
                    if self.core.current_reply != rid:
                        return
                    self._voice_turns[self._voice.turn] = rid
                    self._voice.push_text(event.text)
                    self.trace.stamp(rid, "first_text", self._wall_ms())
                    pushed = True
                    self._apply(self.core.handle(event, self.now))
        finally:
            await outputs.aclose()
        if self.core.current_reply != rid:
            return
        if pushed:
            self._voice_turns[self._voice.flush()] = rid
            self.trace.stamp(rid, "flush", self._wall_ms())
            self._apply(self.core.handle(assembler.finish(), self.now))
        else:  # only decisions (a transfer with no words): nothing to voice
            self._apply(self.core.handle(assembler.finish(), self.now) + self.core.handle(AudioDone(rid), self.now))

    async def _voice_loop(self) -> None:
        try:
            await self._read_voice()
        except VoiceError as exc:  # every voice failed (FallbackVoice tried them all): nothing left to say it with
            log.error("call %s: no voice left: %s", self._host.call_sid, exc)
            self._hang_up(f"no voice left: {exc}")

    async def _read_voice(self) -> None:
        async for event in self._voice:
            rid = self._voice_turns.get(event.turn)
            if rid is None or rid != self.core.current_reply:
                continue  # a cancelled turn's leftovers
            if isinstance(event, AudioChunk):
                self.trace.stamp(rid, "first_audio", self._wall_ms())
                await self._audio(rid, event)
            elif isinstance(event, TurnEnd):
                self._voice_turns.pop(event.turn, None)
                self._apply(self.core.handle(AudioDone(rid), self.now))

    async def _audio(self, rid: int, chunk: AudioChunk) -> None:
        while len(self._out) >= MAX_OUTGOING:
            self._room.clear()
            await self._room.wait()
        if rid != self.core.current_reply:
            return
        first = rid not in self.turns.first_audio_ms
        self._push("media", self._wire.media(chunk.audio), rid if first else None)
        start = self._playout.queue(chunk.audio, self.now)
        self.turns.first_audio_ms.setdefault(rid, start)
        self._apply(self.core.handle(AudioQueued(rid, chunk.chars_end, chunk.duration_ms, chunk.level_db), self.now))

    def _push(self, kind: str, frame: str, first_of: int | None = None) -> None:
        self._out.append((kind, frame, first_of))
        self._wake.set()

    def _wall_ms(self) -> float:
        return self._wall() * 1000

    async def _send_loop(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._out:
                    _, frame, first_of = self._out.popleft()
                    if first_of is not None:
                        self.trace.stamp(first_of, "first_sent", self._wall_ms())
                    await self._wire.send(frame)
                    self._room.set()
                self._room.set()
        except StreamGone as exc:
            log.info("call %s: the stream is gone (%s); the agent stops", self._host.call_sid, exc)
            self._out.clear()
            self._room.set()
            self.stop("stream closed")

    async def _alert(self, alert: RaiseAlert) -> None:
        if self._alerter is None or not self.profile.alert_recipients:
            log.warning("call %s: emergency alert wanted but no SMS sender or recipient is configured",
                        self._host.call_sid)
            return
        facts = self.memory.facts or gather(self.core.transcript())
        facts = facts.model_copy(update={"summary": alert.summary or facts.summary})
        for to in self.profile.alert_recipients:
            try:
                self.alerts_sent.append(await self._alerter.send_emergency(self._host.call_sid, to, facts,
                                                                           self._call_url))
            except SmsError as exc:  # the post-call sms job retries (it finds what was sent)
                log.error("call %s: emergency SMS during the call failed: %s", self._host.call_sid, exc)

    async def _transfer(self, reason: str) -> None:
        number = self.profile.transfer_numbers[0] if self.profile.transfer_numbers else None
        if self._calls is None or number is None:
            log.error("call %s: transfer wanted (%s) but no operator number is configured", self._host.call_sid,
                      reason)
            self._hang_up("transfer impossible: no operator number")
            return
        try:
            fork = None if self._fork is None else self._fork()
            await self._calls.redirect(self._host.call_sid, transfer_twiml(number, caller_id=self._caller_id,
                                                                           fork=fork))
        except CallApiError as exc:
            log.error("call %s: transfer failed: %s", self._host.call_sid, exc)
            self._hang_up(f"transfer failed: {exc}")
            return
        self.end_reason = self.end_reason or f"transferred to the operator ({reason})"
        # Twilio now runs the <Dial>: our stream stops (Twilio sends stop), the call goes on with the operator.

    # -- usage ----------------------------------------------------------------------------------------------------

    def usage_from_voice(self) -> None:
        for provider, chars in self._voice.characters().items():
            self.usage.tts_chars[provider] = chars
        for model_usage in self.stats.usage:
            self.usage.add_model(model_usage)
        self.stats.usage.clear()

    def summary(self) -> dict[str, Any]:
        """For the call's stored stats."""
        lat = sorted(self.turns.latencies_ms)
        return {"turns": {"finished": self.turns.finished, "interrupted": self.turns.interrupted,
                          "latencies_ms": self.turns.latencies_ms,
                          "p50_ms": lat[len(lat) // 2] if lat else None, "stages_ms": self.trace.rows()},
                "dialog": {"model_replies": self.stats.model_replies, "offline_replies": self.stats.offline_replies,
                           "fallbacks": self.stats.fallbacks, "rejected_tools": self.stats.rejected_tools},
                "voice": {"switches": [{"from": provider, "reason": reason} for provider, reason in
                                       (self._voice.switches if isinstance(self._voice, FallbackStream) else ())]},
                "alerts_sent": len(self.alerts_sent), "facts": None if self.memory.facts is None
                else self.memory.facts.model_dump(mode="json"), "end_reason": self.end_reason}


__all__ = ["AgentCall", "AgentHost", "StreamGone", "Wire"]
