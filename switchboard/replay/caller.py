"""``switchboard replay --dialog``: act as Twilio *and* the person calling, on a bidirectional (agent) stream.

The voice webhook answers ``<Connect><Stream>``; this opens it like Twilio (signed handshake, ``connected``,
``start`` with only the inbound track) and then, every 20 ms of media time (``speed`` × faster on the wall clock),
plays back what the server sent as Twilio does (:class:`~switchboard.replay.playback.TwilioPlayback`: real time,
marks echoed when played, ``clear`` honoured), lets the :class:`~switchboard.replay.script.ScriptedCaller` decide
what the caller does, and sends the caller's frame (with the agent's own voice leaking back at ``echo_db`` when
asked: a speaker-phone). The call ends when the server closes the stream (the agent hung up), when the script
hangs up (``stop``, as Twilio sends), or when ``redirected`` is set (a transfer moved the call off the stream).

Latencies are measured on the wall clock (``time.monotonic``, frames stamped as they arrive, not when a tick gets
to them) and given in media ms (× ``speed``): greeting (``start`` sent → first agent audio), voice-to-voice (the
end of the speech in each caller line, i.e. its last voiced sample, → the agent's first audio after it),
barge-in (start of a barge-in line → ``clear``). ``turns_wall`` keeps each voice-to-voice pair's monotonic
seconds, so a benchmark can set the server's own stage stamps (same host, same clock) against them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import orjson
import pybase64
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from audio import mulaw
from switchboard.replay.playback import TwilioPlayback
from switchboard.replay.script import Dialog, ScriptedCaller, Tick
from switchboard.replay.send_gaps import SendGaps
from switchboard.replay.twilio_fake import ReplayError, Target, _listen, _ws_base, new_sid, parse_stream, post_signed
from switchboard.twilio.signature import sign_websocket


@dataclass
class DialogResult:
    name: str
    call_sid: str
    stream_sid: str = field(default_factory=lambda: new_sid("MZ"))
    greeting_ms: float | None = None
    voice_to_voice_ms: list[float] = field(default_factory=list)
    barge_in_ms: list[float] = field(default_factory=list)
    clears: int = 0
    ended_by: str = ""
    """``agent`` (the server closed the stream), ``caller`` (the script hung up), ``redirect`` or ``timeout``."""
    lines: list[tuple[float, str, str]] = field(default_factory=list)
    """(media s, speaker, text) as the caller side saw it: their own lines as scripted."""
    events: list[dict[str, Any]] = field(default_factory=list)
    stored: dict[str, Any] | None = None
    heard_ms: int = 0
    turns_wall: list[tuple[float, float]] = field(default_factory=list)
    """(caller speech end, first agent audio received) per voice-to-voice figure, ``time.monotonic`` seconds."""
    gaps: SendGaps = field(default_factory=SendGaps)
    """Per agent reply: the longest wall gap between its media messages and the longest silence heard in it."""

    @property
    def voice_to_voice_wall_ms(self) -> list[float]:
        """As ``voice_to_voice_ms`` but on the wall clock (provider timeouts run on it, whatever the speed)."""
        return [(arrived - ended) * 1000 for ended, arrived in self.turns_wall]

    def agent_turns(self, status: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e.get("type") == "agent.turn" and e.get("status") == status]


@dataclass
class _Clock:
    speed: float
    t0: float = field(default_factory=time.monotonic)

    def media_ms(self, at: float | None = None) -> float:
        return ((time.monotonic() if at is None else at) - self.t0) * 1000 * self.speed


async def call_agent(target: Target, dialog: Dialog, *, client: httpx.AsyncClient, speed: float = 1.0,
                     echo_db: float | None = None, redirected: asyncio.Event | None = None,
                     timeout_s: float = 300.0, from_number: str = "+447700900123",
                     on_event: Callable[[dict[str, Any]], None] | None = None) -> DialogResult:
    call_sid = new_sid("CA")
    result = DialogResult(dialog.name, call_sid)
    form = {"CallSid": call_sid, "AccountSid": target.account_sid, "From": from_number, "To": "+447700900999",
            "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
    stream_url, params = parse_stream(await post_signed(client, target, "/api/twilio/voice", form))
    if params.get("mode") != "agent":
        raise ReplayError("the server did not answer with the agent (is SWITCHBOARD_ANSWER agent?)")
    live_url = _ws_base(target.base_url) + f"/api/live/{call_sid}"
    headers = {"Authorization": f"Bearer {target.api_token}"}
    async with connect(live_url, additional_headers=headers, max_size=2**22) as live:
        shown = None if on_event is None else (lambda _result, event: on_event(event))
        listener = asyncio.create_task(_listen(live, _Collect(result), shown))  # type: ignore[arg-type]
        try:
            async with asyncio.timeout(timeout_s):
                await _talk(target, stream_url, params, dialog, result, speed, echo_db, redirected)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(60):
                    await asyncio.shield(listener)
        except TimeoutError:
            result.ended_by = result.ended_by or "timeout"
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
    await post_signed(client, target, "/api/twilio/status", {**form, "CallStatus": "completed",
                                                             "SequenceNumber": "3", "CallDuration": "1"})
    response = await client.get(f"{target.base_url}/api/calls/{call_sid}", headers=headers)
    if response.status_code == 200:
        result.stored = response.json()
    return result


class _Collect:
    """Adapts the live listener's result object: only ``events`` and ``ended`` are used."""

    def __init__(self, result: DialogResult) -> None:
        self.events = result.events
        self.stream_sid = result.stream_sid
        self.live_finals: dict[str, list[str]] = {}
        self.ended: dict[str, Any] | None = None


async def _talk(target: Target, stream_url: str, params: dict[str, str], dialog: Dialog, result: DialogResult,
                speed: float, echo_db: float | None, redirected: asyncio.Event | None) -> None:
    path = urlsplit(stream_url).path
    headers = {"X-Twilio-Signature": sign_websocket(target.auth_token, stream_url)}
    async with connect(_ws_base(target.base_url) + path, additional_headers=headers, max_size=2**20,
                       compression=None) as ws:
        seq = 0

        async def send(event: str, body: dict[str, Any]) -> None:
            nonlocal seq
            seq += 1
            await ws.send(orjson.dumps({"event": event, "sequenceNumber": str(seq), "streamSid": stream_sid,
                                        **body}).decode())

        stream_sid = result.stream_sid
        await ws.send(orjson.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}).decode())
        await send("start", {"start": {
            "accountSid": target.account_sid, "streamSid": stream_sid, "callSid": result.call_sid,
            "tracks": ["inbound"], "customParameters": params,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        clock = _Clock(speed)
        inbox: list[tuple[float, dict[str, Any]]] = []
        reader = asyncio.create_task(_read(ws, inbox))
        try:
            await _ticks(send, inbox, reader, dialog, result, clock, echo_db, redirected)
        except ConnectionClosed:
            result.ended_by = "agent"  # the server closed the stream between two of our frames
        finally:
            reader.cancel()
            await asyncio.gather(reader, return_exceptions=True)
        if result.ended_by in ("caller", "redirect"):
            with contextlib.suppress(ConnectionClosed):
                await send("stop", {"stop": {"accountSid": target.account_sid, "callSid": result.call_sid}})
                await ws.close()


async def _read(ws: Any, inbox: list[tuple[float, dict[str, Any]]]) -> None:
    with contextlib.suppress(ConnectionClosed):
        async for raw in ws:
            inbox.append((time.monotonic(), orjson.loads(raw)))


async def _ticks(send: Any, inbox: list[tuple[float, dict[str, Any]]], reader: asyncio.Task[None], dialog: Dialog,
                 result: DialogResult, clock: _Clock, echo_db: float | None,
                 redirected: asyncio.Event | None) -> None:
    playback, caller = TwilioPlayback(), ScriptedCaller(dialog.steps)
    now, chunk = 0, 0
    line_end_at: float | None = None  # monotonic s: the speech in the last line ended (armed at the line's end)
    speech_end: float | None = None
    voiced: tuple[int, int] | None = None  # the line's frame holding its last voiced sample, and ms into it
    line_frame = 0
    barge_at: float | None = None
    echo_gain = None if echo_db is None else 10 ** (echo_db / 20)
    while True:
        if reader.done():
            result.ended_by = "agent"
            return
        if redirected is not None and redirected.is_set():
            result.ended_by = "redirect"
            return
        marks: list[str] = []
        for arrived, frame in inbox:
            kind = frame.get("event")
            if kind == "media":
                if result.greeting_ms is None:
                    result.greeting_ms = clock.media_ms(arrived)
                if line_end_at is not None and arrived >= line_end_at:
                    result.voice_to_voice_ms.append((arrived - line_end_at) * 1000 * clock.speed)
                    result.turns_wall.append((line_end_at, arrived))
                    line_end_at = None
                result.gaps.media(arrived, max(0, now - playback.busy_until))
                playback.media(pybase64.b64decode(frame["media"]["payload"]), now)
            elif kind == "mark":
                result.gaps.mark(frame["mark"]["name"])
                playback.mark(frame["mark"]["name"], now)
            elif kind == "clear":
                result.clears += 1
                if barge_at is not None:
                    result.barge_in_ms.append(clock.media_ms(arrived) - barge_at)
                    barge_at = None
                marks += playback.clear(now).marks
        inbox.clear()
        heard = playback.advance(now)
        marks += heard.marks
        played = b"".join(audio for _, audio in heard.audio)
        result.heard_ms += len(played) // 8
        for name in marks:
            await send("mark", {"mark": {"name": name}})
        tick: Tick = caller.tick(now, playback.speaking, playback.received_ms)
        if tick.hang_up:
            result.ended_by = "caller"
            return
        if tick.line_started is not None:
            result.lines.append((now / 1000, "caller", tick.line_started))
            line_frame, voiced = 0, divmod(caller.line_voiced_ms, 20)
            if playback.speaking:
                barge_at = clock.media_ms()
        if voiced is not None and line_frame == voiced[0]:
            speech_end = time.monotonic() + voiced[1] / 1000 / clock.speed  # this frame goes out now
        line_frame += 1
        if tick.line_ended is not None:
            line_end_at = speech_end if speech_end is not None else time.monotonic()
            speech_end, voiced = None, None
            caller.turn_taken(playback.received_ms)
        if tick.digit is not None:
            await send("dtmf", {"dtmf": {"track": "inbound_track", "digit": tick.digit}})
        chunk += 1
        audio = tick.audio if echo_gain is None or not played else _mix(tick.audio, played, echo_gain)
        await send("media", {"media": {"track": "inbound", "chunk": str(chunk), "timestamp": str(now),
                                       "payload": pybase64.b64encode(audio).decode()}})
        now += 20
        delay = now / clock.speed / 1000 - (time.monotonic() - clock.t0)
        await asyncio.sleep(max(0.0, delay))


def _mix(caller: bytes, agent: bytes, gain: float) -> bytes:
    """The caller's frame with the agent's audio leaking back at ``gain`` (speaker-phone echo)."""
    own = mulaw.decode(caller).astype(np.float64)
    leak = mulaw.decode(agent[: len(caller)].ljust(len(caller), b"\xff")).astype(np.float64) * gain
    return mulaw.encode(np.clip(own + leak, -32768, 32767).astype(np.int16))


def report(result: DialogResult) -> dict[str, Any]:
    """Both sides of the stored transcript and the latency figures, as printed by ``replay --dialog``."""
    stored = result.stored or {}
    return {
        "dialog": result.name, "call_sid": result.call_sid, "ended_by": result.ended_by,
        "end_reason": stored.get("end_reason"),
        "transcript": [(round(s["start_ms"] / 1000, 2), s["speaker"], s["text"]) for s in stored.get("transcript", [])],
        "facts": ((stored.get("stats") or {}).get("agent") or {}).get("facts"),
        "latency_ms": {"greeting": _round(result.greeting_ms), "voice_to_voice": [_round(v) for v in
                                                                                 result.voice_to_voice_ms],
                       "barge_in": [_round(v) for v in result.barge_in_ms],
                       "server_turns": stored.get("turn_latencies_ms")},
        "usage": stored.get("usage"), "clears": result.clears,
        "max_send_gap_ms": _round(result.gaps.max_send_gap_ms),
    }


def _round(value: float | None) -> int | None:
    return None if value is None else round(value)


__all__ = ["DialogResult", "call_agent", "report"]
