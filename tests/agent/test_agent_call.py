"""AgentCall with its real parts (turn-taking core, offline intake dialog, the espeak-ng voice) against a fake host
and a fake Twilio end (:class:`TwilioPlayback`): frames out, marks back, clear on barge-in, what was heard recorded
at the media time it played, and every task gone when the call ends."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from dataclasses import dataclass, field

import pytest

from switchboard.agent.dialog import DialogStats
from switchboard.agent.fallback_dialog import FallbackDialog
from switchboard.agent.intake import OfflineDialog
from switchboard.agent.profile import load_profile
from switchboard.agent.turns import Phase, TurnTaker
from switchboard.call.agent import AgentCall, Wire
from switchboard.call.turn_trace import STAGES
from switchboard.live.events import AgentTurnUpdate, LiveEvent
from switchboard.replay.playback import TwilioPlayback
from switchboard.transcribe.base import TranscriptEvent
from switchboard.twilio.events import Mark, Media

pytest.importorskip("espeakng_loader")

from switchboard.tts.espeak import EspeakEngine
from switchboard.tts.fallback import FallbackVoice
from switchboard.tts.offline import OfflineVoice

PROFILE = load_profile()
SILENCE = b"\xff" * 160
SID = "CA" + "a" * 32


@dataclass
class Host:
    call_sid: str = SID
    played: list[tuple[int, bytes]] = field(default_factory=list)
    said: list[tuple[str, int, int]] = field(default_factory=list)
    events: list[LiveEvent] = field(default_factory=list)
    stopped: str | None = None

    def play(self, timestamp_ms: int, payload: bytes) -> None:
        self.played.append((timestamp_ms, payload))

    def agent_said(self, text: str, start_ms: int, end_ms: int) -> None:
        self.said.append((text, start_ms, end_ms))

    def publish(self, event: LiveEvent) -> None:
        self.events.append(event)

    def stop(self, reason: str) -> None:
        self.stopped = reason


@dataclass
class Rig:
    host: Host
    agent: AgentCall
    sent: list[dict[str, object]]
    twilio: TwilioPlayback = field(default_factory=TwilioPlayback)
    now: int = 0
    _read: int = 0
    closed: bool = False

    async def step(self, payload: bytes = SILENCE) -> None:
        """20 ms of media: Twilio takes what the server sent, plays, echoes marks; the caller's frame goes in."""
        for frame in self.sent[self._read:]:
            if frame["event"] == "media":
                media = frame["media"]
                assert isinstance(media, dict)
                self.twilio.media(base64.b64decode(media["payload"]), self.now)
            elif frame["event"] == "mark":
                mark = frame["mark"]
                assert isinstance(mark, dict)
                self.twilio.mark(mark["name"], self.now)
            else:
                for name in self.twilio.clear(self.now).marks:
                    self.agent.on_control(Mark(name, 0))
        self._read = len(self.sent)
        for name in self.twilio.advance(self.now).marks:
            self.agent.on_control(Mark(name, 0))
        self.agent.on_caller_audio(Media("inbound", self.now // 20 + 1, self.now, payload, 0))
        self.now += 20
        await asyncio.sleep(0.001)

    async def run_until(self, done: object, limit_ms: int = 60_000) -> None:
        stop = self.now + limit_ms
        while not done() and self.now < stop:  # type: ignore[operator]
            await self.step()
        assert done(), f"not done after {limit_ms} ms of media"  # type: ignore[operator]

    def updates(self, status: str) -> list[AgentTurnUpdate]:
        return [e for e in self.host.events if isinstance(e, AgentTurnUpdate) and e.status == status]


async def rig(wall: itertools.count[float] | None = None) -> Rig:
    host, sent = Host(), []

    async def send(text: str) -> None:
        sent.append(json.loads(text))

    async def close() -> None:
        result.closed = True

    def frame(event: str, body: dict[str, object]) -> str:
        return json.dumps({"event": event, "streamSid": "MZ1", **body})

    wire = Wire(lambda audio: frame("media", {"media": {"payload": base64.b64encode(audio).decode()}}),
                lambda name: frame("mark", {"mark": {"name": name}}), lambda: frame("clear", {}), send, close)
    voice = FallbackVoice([OfflineVoice(EspeakEngine())])
    await voice.warm(PROFILE.line("greeting"))  # as the runtime does at start: the greeting comes from the cache
    stream = await voice.open()
    stats = DialogStats()
    dialog = FallbackDialog(None, OfflineDialog(PROFILE), first_token_timeout_s=1, stats=stats)
    agent = AgentCall(host, wire, stream, dialog, PROFILE, TurnTaker(PROFILE.core_lines()), stats=stats,
                      **({} if wall is None else {"wall": lambda: next(wall)}))
    result = Rig(host, agent, sent)
    return result


async def test_greeting_plays_is_recorded_as_heard_and_answered() -> None:
    r = await rig()
    async with asyncio.TaskGroup() as group:
        run = group.create_task(r.agent.run())
        await r.run_until(lambda: r.updates("finished"))
        text, start, end = r.host.said[0]
        assert text == PROFILE.line("greeting")
        audio_ms = sum(len(a) for _, a in r.host.played) // 8
        assert audio_ms == r.twilio.received_ms > 2000  # the recording's agent channel: all of it, as played
        assert r.host.played[0][0] == start and end >= start + audio_ms - 40
        assert r.updates("started")[0].latency_ms == 0  # cached: queued before the first caller frame is taken
        r.agent.on_transcript(TranscriptEvent("inbound", "My boiler has stopped working.", True, 0, 0, "local"))
        await r.run_until(lambda: len(r.updates("finished")) >= 2)
        assert r.host.said[-1][0] == PROFILE.line("ask_caller_name")
        r.agent.stop("stop")
    assert run.done() and not [t for t in asyncio.all_tasks() if SID in t.get_name()]


async def test_a_reply_is_stamped_at_every_stage_in_order() -> None:
    """Final in → turn ended → dialog asked → first words → to the voice → flushed → first audio → first frame
    written: each stage once, in that order (a wall clock that ticks one second per reading)."""
    r = await rig(wall=itertools.count(1.0))
    async with asyncio.TaskGroup() as group:
        run = group.create_task(r.agent.run())
        await r.run_until(lambda: r.updates("finished"))
        r.agent.on_transcript(TranscriptEvent("inbound", "My boiler has stopped working.", True, 0, 0, "local"))
        await r.run_until(lambda: len(r.updates("finished")) >= 2)
        r.agent.stop("stop")
    await run
    rows = r.agent.summary()["turns"]["stages_ms"]
    greeting, reply = rows
    assert set(greeting) == {"reply", "first_audio", "first_sent"}  # spoken by the core: no dialog stages
    assert [stage for stage in reply if stage != "reply"] == list(STAGES)
    stamps = [reply[stage] for stage in STAGES]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)


async def test_wait_not_thinking_holds_while_a_reply_is_prepared() -> None:
    r = await rig()
    async with asyncio.TaskGroup() as group:
        run = group.create_task(r.agent.run())
        await r.run_until(lambda: r.updates("finished"))
        await asyncio.wait_for(r.agent.wait_not_thinking(), 1)  # listening
        r.agent.on_transcript(TranscriptEvent("inbound", "My boiler has stopped working.", True, 0, 0, "local"))
        await r.run_until(lambda: r.agent.core.phase is Phase.THINKING)  # the turn ended: a reply is prepared
        waiter = asyncio.ensure_future(r.agent.wait_not_thinking())
        await r.run_until(lambda: len(r.updates("started")) >= 2 or waiter.done())
        assert len(r.updates("started")) >= 2  # released by the reply's first audio, not before
        await asyncio.wait_for(waiter, 1)
        r.agent.stop("stop")
    await run


async def test_barge_in_clears_and_keeps_only_what_was_heard() -> None:
    r = await rig()
    async with asyncio.TaskGroup() as group:
        group.create_task(r.agent.run())
        await r.run_until(lambda: r.twilio.received_ms > 0 and r.now > 1500)
        r.agent.on_transcript(TranscriptEvent("inbound", "my boiler is broken", False, 0, 0, "local"))
        clear_at = r.now
        await r.run_until(lambda: any(f["event"] == "clear" for f in r.sent))
        assert r.updates("interrupted")
        heard = r.updates("interrupted")[0].text
        assert heard and PROFILE.line("greeting").startswith(heard) and heard != PROFILE.line("greeting")
        played_until = max(t + len(a) // 8 for t, a in r.host.played)
        assert played_until <= clear_at + 40  # nothing recorded past the clear
        r.agent.stop("stop")


async def test_hang_up_mid_sentence_cancels_every_task() -> None:
    r = await rig()
    async with asyncio.TaskGroup() as group:
        run = group.create_task(r.agent.run())
        await r.run_until(lambda: r.now > 600)
        r.agent.stop("caller hung up")
        async with asyncio.timeout(5):
            await run
    assert r.agent.end_reason == "caller hung up"
    assert not [t for t in asyncio.all_tasks() if SID in t.get_name()]
