"""No credential reaches the logs: a real ``switchboard serve`` at DEBUG, driven with every kind of token, and its
whole output (uvicorn's access and error logs included) searched for each secret."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from switchboard.replay.fixture import build_schedule
from switchboard.replay.twilio_fake import Target, new_sid, parse_stream, post_signed, replay_call, sign_webhook
from switchboard.twilio.signature import sign_websocket
from tests.e2e.conftest import free_port, fresh_database

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "fixtures" / "real_beckett_short.wav"
AUTH = "twilio-auth-4f1c9e2a7b"
API = "api-token-8d3b6a51e0"
DB_PASSWORD = "db-password-7c2e"


async def serve(env: dict[str, str], base: str, log: Path) -> asyncio.subprocess.Process:
    out = await asyncio.to_thread(log.open, "wb")
    with out:
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard.cli", "serve", env=env,
                                                    cwd=ROOT, stdout=out, stderr=out)
    async with httpx.AsyncClient() as client, asyncio.timeout(90):
        while True:
            try:
                if (await client.get(base + "/readyz")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            if proc.returncode is not None:
                tail = (await asyncio.to_thread(log.read_text))[-2000:]
                raise RuntimeError(f"server exited with {proc.returncode}: {tail}")
            await asyncio.sleep(0.2)


async def test_no_secret_in_any_log_line(pg_dsn: str, tmp_path: Path) -> None:
    dsn = await fresh_database(pg_dsn, "logs")
    port = free_port()
    base, ws_base = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    env = {**os.environ, "DATABASE_URL": dsn, "SWITCHBOARD_DATA_DIR": str(tmp_path / "data"),
           "SWITCHBOARD_PORT": str(port), "PUBLIC_URL": base, "TWILIO_AUTH_TOKEN": AUTH,
           "SWITCHBOARD_API_TOKEN": API, "SWITCHBOARD_TRANSCRIBER": "null", "SWITCHBOARD_LOG_LEVEL": "DEBUG",
           "OPENAI_API_KEY": "sk-never-logged-3a9f", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    proc = await serve(env, base, log)
    secrets = {AUTH, API, "sk-never-logged-3a9f"}
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            assert (await http.get(f"/api/calls?token={API}")).status_code == 401  # REST takes the header only
            assert (await http.get("/api/calls", headers={"Authorization": f"Bearer {API}"})).status_code == 200
            assert (await http.get("/api/calls", headers={"Authorization": "Bearer wrong-token-1"})).status_code == 401
            target = Target(base, base, AUTH, API)
            result = await replay_call(target, build_schedule(FIXTURE), speed=0, client=http)
            call_sid = result.call_sid
            # a second call by hand, to know its webhook signature and its stream token (which it then uses)
            form = {"CallSid": new_sid("CA"), "From": "+447700900001", "CallStatus": "ringing"}
            secrets.add(sign_webhook(AUTH, base + "/api/twilio/voice", form))
            stream_url, params = parse_stream(await post_signed(http, target, "/api/twilio/voice", form))
            secrets.add(params["token"])
            signature = sign_websocket(AUTH, stream_url)
            async with connect(stream_url, additional_headers={"X-Twilio-Signature": signature}) as ws:
                stream_sid = new_sid("MZ")
                await ws.send(orjson.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid,
                                            "start": {"accountSid": "AC" + "0" * 32, "streamSid": stream_sid,
                                                      "callSid": form["CallSid"], "tracks": ["inbound"],
                                                      "customParameters": params,
                                                      "mediaFormat": {"encoding": "audio/x-mulaw",
                                                                      "sampleRate": 8000, "channels": 1}}}).decode())
                await ws.send(orjson.dumps({"event": "stop", "sequenceNumber": "2", "streamSid": stream_sid,
                                            "stop": {"accountSid": "AC" + "0" * 32,
                                                     "callSid": form["CallSid"]}}).decode())
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)
            assert ws.close_code == 1000  # the token was accepted: it really is this call's
            async with connect(f"{ws_base}/api/live/{call_sid}?token={API}") as live:  # the browser's way
                await asyncio.wait_for(live.recv(), 10)
            with pytest.raises(InvalidStatus):  # a forged handshake signature
                async with connect(f"{ws_base}/api/twilio/media-stream",
                                   additional_headers={"X-Twilio-Signature": "forged-sig-5e8a=="}):
                    pass
            secrets.add("forged-sig-5e8a==")
            other = new_sid("CA")
            signature = sign_websocket(AUTH, f"{ws_base}/api/twilio/media-stream")
            secrets.add(signature)
            async with connect(f"{ws_base}/api/twilio/media-stream",
                               additional_headers={"X-Twilio-Signature": signature}) as ws:  # a wrong stream token
                await ws.send(orjson.dumps({"event": "start", "sequenceNumber": "1", "streamSid": new_sid("MZ"),
                                            "start": {"accountSid": "AC" + "0" * 32, "streamSid": new_sid("MZ"),
                                                      "callSid": other, "tracks": ["inbound"],
                                                      "customParameters": {"token": "stolen-token-2b7d"},
                                                      "mediaFormat": {"encoding": "audio/x-mulaw",
                                                                      "sampleRate": 8000, "channels": 1}}}).decode())
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 10)
            secrets.add("stolen-token-2b7d")
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 120)
    text = await asyncio.to_thread(log.read_text, errors="replace")
    assert f"GET /api/live/{call_sid}?token=[redacted] HTTP/1.1" in text  # the access log was captured, scrubbed
    assert "GET /api/calls?token=[redacted] HTTP/1.1\" 401" in text
    leaked = sorted(secret for secret in secrets if secret in text)
    assert not leaked, f"secrets in the log: {leaked}"
