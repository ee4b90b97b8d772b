"""Bad input on the media websocket: a clear close reason, and nothing received before it is lost."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import orjson
import pybase64
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from audio.mulaw import encode
from audio.wav import WavReader
from switchboard.replay.twilio_fake import new_sid, parse_stream, post_signed
from switchboard.twilio.signature import sign_websocket

pytestmark = pytest.mark.e2e


def tone(ms: int, freq: float = 440.0) -> bytes:
    t = np.arange(ms * 8) / 8000
    return encode((np.sin(2 * np.pi * freq * t) * 8000).astype(np.int16))


class Call:
    """A hand-driven Twilio call: lets a test send exactly the frames it wants."""

    def __init__(self, server: Any, http: httpx.AsyncClient) -> None:
        self.server, self.http = server, http
        self.call_sid, self.stream_sid = new_sid("CA"), new_sid("MZ")
        self.seq = 0

    async def answer(self) -> tuple[str, dict[str, str]]:
        form = {"CallSid": self.call_sid, "AccountSid": "AC" + "0" * 32, "From": "+447700900001",
                "To": "+447700900002", "CallStatus": "ringing", "Direction": "inbound"}
        twiml = await post_signed(self.http, self.server.target, "/api/twilio/voice", form)
        return parse_stream(twiml)

    def msg(self, event: str, **body: Any) -> str:
        self.seq += 1
        return orjson.dumps({"event": event, "sequenceNumber": str(self.seq), "streamSid": self.stream_sid,
                             **body}).decode()

    def start(self, params: dict[str, str]) -> str:
        return self.msg("start", start={
            "accountSid": "AC" + "0" * 32, "streamSid": self.stream_sid, "callSid": self.call_sid,
            "tracks": ["inbound", "outbound"], "customParameters": params,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}})

    def media(self, track: str, chunk: int, ts: int, payload: bytes) -> str:
        return self.msg("media", media={"track": track, "chunk": str(chunk), "timestamp": str(ts),
                                        "payload": pybase64.b64encode(payload).decode()})

    async def stored(self, within_s: float = 60) -> dict[str, Any]:
        async with asyncio.timeout(within_s):
            while True:
                r = await self.http.get(f"/api/calls/{self.call_sid}", headers=self.server.auth())
                if r.status_code == 200 and r.json().get("ended_at"):
                    return r.json()
                await asyncio.sleep(0.1)


async def stream_then(server: Any, http: httpx.AsyncClient, bad: Any, frames: int = 50
                      ) -> tuple[Call, int | None, str, bytes]:
    """Answer a call, stream `frames` good 20 ms frames per track, then send `bad`; return the close."""
    call = Call(server, http)
    url, params = await call.answer()
    audio = tone(frames * 20)
    headers = {"X-Twilio-Signature": sign_websocket(server.target.auth_token, url)}
    async with connect(server.ws_base + "/api/twilio/media-stream", additional_headers=headers) as ws:
        await ws.send(orjson.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}).decode())
        await ws.send(call.start(params))
        for i in range(frames):
            for track in ("inbound", "outbound"):
                await ws.send(call.media(track, i + 1, i * 20, audio[i * 160:(i + 1) * 160]))
        await bad(ws, call)
        try:
            async with asyncio.timeout(10):
                await ws.wait_closed()
        except TimeoutError:
            pytest.fail("server did not close the stream")
        return call, ws.close_code, ws.close_reason or "", audio


def send(text_of: Any) -> Any:
    async def go(ws: Any, call: Call) -> None:
        await ws.send(text_of(call))
    return go


# One bad frame end to end (close code, stored end reason, the real recording); every kind of bad frame is checked
# without a server, through the same parser, route pump and close codes, in tests/call/test_media_route.py.
BAD_INPUTS = [
    ("malformed json", send(lambda c: '{"event": "media", '), 1007, "json"),
]


@pytest.mark.parametrize(("name", "bad", "code", "word"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
async def test_bad_frame_closes_with_reason_and_keeps_audio(server: Any, http: httpx.AsyncClient, name: str,
                                                            bad: Any, code: int, word: str) -> None:
    call, close_code, reason, audio = await stream_then(server, http, bad)
    assert close_code == code, (close_code, reason)
    assert word in reason.lower()
    stored = await call.stored()
    assert stored["end_reason"].startswith("protocol violation")
    assert stored["media_ms"] == 1000  # the 50 good frames per track before the bad one
    rec = server.settings.data_dir / stored["recording_key"]
    with WavReader(rec) as wav:
        assert wav.channels == 2 and wav.n_frames == 8000
        data = wav.read(wav.n_frames)
    assert data[0::2] == audio and data[1::2] == audio


async def test_media_before_start_is_refused(server: Any, http: httpx.AsyncClient) -> None:
    call = Call(server, http)
    url, _ = await call.answer()
    headers = {"X-Twilio-Signature": sign_websocket(server.target.auth_token, url)}
    async with connect(server.ws_base + "/api/twilio/media-stream", additional_headers=headers) as ws:
        await ws.send(orjson.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}).decode())
        await ws.send(call.media("inbound", 1, 0, b"\xff" * 160))
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(10):
                await ws.recv()
    assert ws.close_code == 1008 and "start" in (ws.close_reason or "").lower()


async def test_wrong_stream_token_is_refused(server: Any, http: httpx.AsyncClient) -> None:
    call = Call(server, http)
    url, _ = await call.answer()
    headers = {"X-Twilio-Signature": sign_websocket(server.target.auth_token, url)}
    async with connect(server.ws_base + "/api/twilio/media-stream", additional_headers=headers) as ws:
        await ws.send(call.start({"token": "forged"}))
        with pytest.raises(ConnectionClosed):
            async with asyncio.timeout(10):
                await ws.recv()
    assert ws.close_code == 1008 and "token" in (ws.close_reason or "")


async def test_forged_handshake_signature_is_refused(server: Any, http: httpx.AsyncClient) -> None:
    headers = {"X-Twilio-Signature": "AAAAforgedAAAA="}
    with pytest.raises(Exception) as info:
        async with connect(server.ws_base + "/api/twilio/media-stream", additional_headers=headers) as ws:
            await ws.recv()
    assert "403" in str(info.value) or "1008" in str(info.value)


async def test_socket_dying_mid_call_keeps_audio_and_records_cause(server: Any, http: httpx.AsyncClient) -> None:
    async def die(ws: Any, call: Call) -> None:
        ws.transport.abort()  # no stop, no close frame: the TCP connection just goes away

    call, _, _, audio = await stream_then(server, http, die)
    stored = await call.stored()
    assert "socket closed without stop" in stored["end_reason"]
    assert stored["media_ms"] == 1000
    with WavReader(server.settings.data_dir / stored["recording_key"]) as wav:
        assert wav.read(wav.n_frames)[0::2] == audio
