"""A fake Twilio that replays a fixture as one call: signed webhook → TwiML → media stream → status callback.

It is the operators' replay command, the end-to-end test driver and the load generator. Everything Twilio would do
in the order Twilio does it: the voice webhook is signed against the public URL, the ``<Stream>`` URL and its
``<Parameter>``s come from the TwiML answer, media frames carry per-track chunk counters, media timestamps and one
shared sequence number, and ``stop`` precedes a normal close.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import pybase64
from websockets.asyncio.client import ClientConnection, connect

from switchboard.replay.fixture import Schedule
from switchboard.twilio.signature import sign_webhook, sign_websocket


class ReplayError(Exception):
    """The server did not behave as Twilio expects (bad status, bad TwiML, refused stream)."""


@dataclass(frozen=True, slots=True)
class Target:
    base_url: str
    """Where to connect (http://host:port)."""
    public_url: str
    """What the server believes its public URL is: webhooks are signed against it."""
    auth_token: str
    api_token: str
    account_sid: str = "AC" + "0" * 32


@dataclass(slots=True)
class CallResult:
    call_sid: str
    stream_sid: str
    frames_sent: dict[str, int]
    frames_lost: dict[str, int]
    live_finals: dict[str, list[str]] = field(default_factory=lambda: {"inbound": [], "outbound": []})
    events: list[dict[str, Any]] = field(default_factory=list)
    ended: dict[str, Any] | None = None
    stored: dict[str, Any] | None = None
    close_code: int | None = None

    def transcript(self) -> dict[str, str]:
        """The stored final transcript per track (falls back to what arrived live)."""
        if self.stored is not None:
            out: dict[str, list[str]] = {"inbound": [], "outbound": []}
            for seg in self.stored.get("transcript", []):
                out.setdefault(seg["track"], []).append(seg["text"])
            return {k: " ".join(v) for k, v in out.items()}
        return {k: " ".join(v) for k, v in self.live_finals.items()}


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


OnEvent = Callable[[CallResult, dict[str, Any]], None]
OnProgress = Callable[[CallResult, float], None]


async def replay_call(target: Target, schedule: Schedule, *, speed: float, client: httpx.AsyncClient,
                      on_event: OnEvent | None = None, on_progress: OnProgress | None = None,
                      end_timeout_s: float = 180.0, call_sid: str | None = None,
                      media_gate: asyncio.Event | None = None) -> CallResult:
    """Play one call as Twilio would: voice webhook, status callbacks, the media stream, a live subscription.

    ``media_gate``: media is held after the stream's ``start`` until the event is set, so several calls can be
    lined up (every stream open) before any of them sends audio.
    """
    call_sid, stream_sid = call_sid or new_sid("CA"), new_sid("MZ")
    result = CallResult(call_sid, stream_sid, dict(schedule.sent), {k: len(v) for k, v in schedule.lost.items()})
    form = {"CallSid": call_sid, "AccountSid": target.account_sid, "From": "+447700900123", "To": "+447700900999",
            "CallStatus": "ringing", "Direction": "inbound", "ApiVersion": "2010-04-01"}
    twiml = await post_signed(client, target, "/api/twilio/voice", form)
    stream_url, params = parse_stream(twiml)
    live_url = _ws_base(target.base_url) + f"/api/live/{call_sid}"
    auth = {"Authorization": f"Bearer {target.api_token}"}  # not ?token=: URLs end up in logs
    async with connect(live_url, additional_headers=auth, max_size=2**22) as live:
        for seq, status in enumerate(("initiated", "ringing", "in-progress")):
            await post_signed(client, target, "/api/twilio/status", {**form, "CallStatus": status,
                                                                       "SequenceNumber": str(seq)})
        listener = asyncio.create_task(_listen(live, result, on_event))
        try:
            result.close_code = await _stream(target, stream_url, params, schedule, result, speed, on_progress,
                                              media_gate)
            async with asyncio.timeout(end_timeout_s):
                await asyncio.shield(listener)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
    await post_signed(client, target, "/api/twilio/status", {
        **form, "CallStatus": "completed", "SequenceNumber": "3",
        "CallDuration": str(max(1, round(schedule.duration_ms / 1000)))})
    response = await client.get(f"{target.base_url}/api/calls/{call_sid}",
                                headers={"Authorization": f"Bearer {target.api_token}"})
    if response.status_code == 200:
        result.stored = response.json()
    return result


async def follow_stream(target: Target, twiml: str, call_sid: str, schedule: Schedule, *, speed: float,
                        client: httpx.AsyncClient, end_timeout_s: float = 180.0) -> CallResult:
    """Run the ``<Stream>`` of TwiML a live call was given (a transfer's ``calls(sid).update``) as Twilio would: a
    new media stream of the same call, ``schedule`` as its audio, until its own ``call.ended``."""
    stream_url, params = parse_stream(twiml)
    result = CallResult(call_sid, new_sid("MZ"), dict(schedule.sent), {k: len(v) for k, v in schedule.lost.items()})
    live_url = _ws_base(target.base_url) + f"/api/live/{call_sid}"
    async with connect(live_url, additional_headers={"Authorization": f"Bearer {target.api_token}"},
                       max_size=2**22) as live:
        listener = asyncio.create_task(_listen(live, result, None))
        try:
            result.close_code = await _stream(target, stream_url, params, schedule, result, speed, None)
            async with asyncio.timeout(end_timeout_s):
                await asyncio.shield(listener)
        finally:
            listener.cancel()
            await asyncio.gather(listener, return_exceptions=True)
    response = await client.get(f"{target.base_url}/api/calls/{call_sid}",
                                headers={"Authorization": f"Bearer {target.api_token}"})
    if response.status_code == 200:
        result.stored = response.json()
    return result


async def post_signed(client: httpx.AsyncClient, target: Target, path: str, form: dict[str, str]) -> str:
    signature = sign_webhook(target.auth_token, target.public_url.rstrip("/") + path, form)
    response = await client.post(target.base_url.rstrip("/") + path, data=form,
                                 headers={"X-Twilio-Signature": signature})
    if response.status_code >= 300:
        raise ReplayError(f"POST {path} answered {response.status_code}: {response.text[:200]}")
    return response.text


def parse_stream(twiml: str) -> tuple[str, dict[str, str]]:
    """The ``<Stream url>`` and its ``<Parameter>``s from a TwiML answer."""
    try:
        root = ET.fromstring(twiml)
    except ET.ParseError as exc:
        raise ReplayError(f"TwiML is not XML: {exc}") from exc
    stream = root.find(".//Stream")
    if stream is None or not stream.get("url"):
        raise ReplayError("TwiML has no <Stream url=…>")
    params = {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}
    return stream.get("url", ""), params


def _ws_base(base_url: str) -> str:
    parts = urlsplit(base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}"


async def _listen(live: ClientConnection, result: CallResult, on_event: OnEvent | None) -> None:
    async for raw in live:
        event = orjson.loads(raw)
        result.events.append(event)
        if on_event is not None:
            on_event(result, event)
        if event.get("type") == "transcript" and event.get("is_final"):
            result.live_finals.setdefault(event["track"], []).append(event["text"])
        elif event.get("type") == "call.ended" and event.get("stream_sid") in (None, "", result.stream_sid):
            result.ended = event  # this stream's end (a call's earlier streams end too: a transfer, a replay)
            return


async def _stream(target: Target, stream_url: str, params: dict[str, str], schedule: Schedule,
                  result: CallResult, speed: float, on_progress: OnProgress | None,
                  media_gate: asyncio.Event | None = None) -> int | None:
    """Send the schedule over the media websocket at ``speed`` × real time (0 = as fast as possible)."""
    path = urlsplit(stream_url).path
    headers = {"X-Twilio-Signature": sign_websocket(target.auth_token, stream_url)}
    # Twilio does not negotiate permessage-deflate; neither do we, so the server does the same work as in production.
    # Nor does it ping (https://www.twilio.com/docs/voice/media-streams/websocket-messages lists every message it
    # sends): a ping of ours would wait behind the media the server has not read yet, and at speed 0 a busy server
    # reads more than websockets' 20 s ping timeout behind, so the replay would close a healthy call with 1011.
    async with connect(_ws_base(target.base_url) + path, additional_headers=headers, max_size=2**20,
                       compression=None, ping_interval=None) as ws:
        seq = 0

        def message(event: str, body: dict[str, Any]) -> bytes:
            nonlocal seq
            seq += 1
            return orjson.dumps({"event": event, "sequenceNumber": str(seq), "streamSid": result.stream_sid,
                                 **body})

        await ws.send(orjson.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}).decode())
        start = {"accountSid": target.account_sid, "streamSid": result.stream_sid, "callSid": result.call_sid,
                 "tracks": ["inbound", "outbound"], "customParameters": params,
                 "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}
        await ws.send(message("start", {"start": start}).decode())
        if media_gate is not None:
            await media_gate.wait()
        t0 = time.monotonic()
        last_progress = 0.0
        for i, frame in enumerate(schedule.frames):
            if speed > 0:
                delay = t0 + frame.send_at_ms / 1000 / speed - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            elif i % 50 == 0:
                await asyncio.sleep(0)
            media = {"track": frame.track, "chunk": str(frame.chunk), "timestamp": str(frame.timestamp_ms),
                     "payload": pybase64.b64encode(frame.payload).decode()}
            await ws.send(message("media", {"media": media}).decode())
            if on_progress is not None and frame.send_at_ms - last_progress >= 1000:
                last_progress = frame.send_at_ms
                on_progress(result, frame.send_at_ms / max(1, schedule.duration_ms))
        await ws.send(message("stop", {"stop": {"accountSid": target.account_sid,
                                                "callSid": result.call_sid}}).decode())
        if on_progress is not None:
            on_progress(result, 1.0)
        await ws.wait_closed()
        return ws.close_code
