"""SIGTERM drains a real ``switchboard serve``: new calls are turned away, live calls finish (or, past the drain
time, are closed and finalised), and the process exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from audio.wav import WavReader
from switchboard.replay.fixture import build_schedule
from switchboard.replay.twilio_fake import CallResult, Target, post_signed, replay_call
from switchboard.store import PgStore
from switchboard.twilio.signature import sign_websocket
from tests.e2e.conftest import API_TOKEN, AUTH_TOKEN, Endpoint, free_port, fresh_database
from tests.e2e.test_media_errors import Call, tone

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "fixtures" / "real_beckett_short.wav"  # 12.84 s


async def serve(env: dict[str, str], base: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard.cli", "serve", env=env, cwd=ROOT)
    async with httpx.AsyncClient() as client, asyncio.timeout(90):
        while True:
            try:
                if (await client.get(base + "/readyz")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            if proc.returncode is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            await asyncio.sleep(0.2)


def environment(dsn: str, data: Path, port: int, drain_s: float) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": dsn, "SWITCHBOARD_DATA_DIR": str(data), "SWITCHBOARD_PORT": str(port),
            "PUBLIC_URL": f"http://127.0.0.1:{port}", "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "SWITCHBOARD_API_TOKEN": API_TOKEN, "SWITCHBOARD_TRANSCRIBER": "null",
            "SWITCHBOARD_DRAIN_S": str(drain_s), "SWITCHBOARD_LOG_LEVEL": "WARNING"}


async def live_calls(http: httpx.AsyncClient, sids: list[str]) -> bool:
    bodies = [(await http.get(f"/api/calls/{sid}")).json() for sid in sids]
    return all(body.get("live") for body in bodies)


def is_busy(twiml: str) -> bool:
    root = ET.fromstring(twiml)
    return [child.tag for child in root] == ["Say", "Hangup"]


async def stored_call(dsn: str, call_sid: str) -> tuple[Any, list[Any]]:
    store = await PgStore.connect(dsn)
    try:
        row = await store.get_call(call_sid)
    finally:
        await store.close()
    conn = await asyncpg.connect(dsn)
    try:
        jobs = await conn.fetch("SELECT kind FROM jobs WHERE call_sid = $1", call_sid)
    finally:
        await conn.close()
    return row, jobs


async def test_sigterm_lets_live_calls_finish_turns_new_ones_away_and_exits_0(pg_dsn: str, tmp_path: Path) -> None:
    dsn = await fresh_database(pg_dsn, "drain")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await serve(environment(dsn, tmp_path, port, drain_s=120), base)
    target = Target(base, base, AUTH_TOKEN, API_TOKEN)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60,
                                     headers={"Authorization": f"Bearer {API_TOKEN}"}) as http:
            sids = ["CA" + f"{i:032x}" for i in (1, 2)]
            calls = [asyncio.create_task(replay_call(target, build_schedule(FIXTURE), speed=2, client=http,
                                                     call_sid=sid)) for sid in sids]
            async with asyncio.timeout(60):
                while not await live_calls(http, sids):  # noqa: ASYNC110 -- polling the server
                    await asyncio.sleep(0.1)
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(30):
                while (ready := await http.get("/readyz")).status_code != 503:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
            assert ready.json()["status"] == "draining" and ready.json()["checks"]["admission"]["draining"]
            form = {"CallSid": "CA" + "f" * 32, "AccountSid": "AC" + "0" * 32, "From": "+447700900001",
                    "To": "+447700900002", "CallStatus": "ringing", "Direction": "inbound"}
            assert is_busy(await post_signed(http, target, "/api/twilio/voice", form))
            # the replays end with a status callback and a read of the call: the server may be gone by then
            results = await asyncio.gather(*calls, return_exceptions=True)
        async with asyncio.timeout(120):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert all(isinstance(r, CallResult | httpx.TransportError) for r in results), results
    for sid in sids:
        row, jobs = await stored_call(dsn, sid)  # ended by Twilio's stop, not cut by the shutdown
        assert row.end_reason == "stop" and row.media_ms == build_schedule(FIXTURE).duration_ms
        assert {job["kind"] for job in jobs} >= {"extract", "archive"}
        with WavReader(tmp_path / row.recording_key) as wav:
            assert wav.header_complete and wav.n_frames == row.media_ms * 8


async def test_past_the_drain_time_live_calls_are_closed_and_finalised(pg_dsn: str, tmp_path: Path) -> None:
    dsn = await fresh_database(pg_dsn, "drain")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = await serve(environment(dsn, tmp_path, port, drain_s=1), base)
    endpoint = Endpoint(base, Target(base, base, AUTH_TOKEN, API_TOKEN))
    audio = tone(60_000)
    sent = 0
    try:
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            call = Call(endpoint, http)
            url, params = await call.answer()
            async with connect(endpoint.ws_base + "/api/twilio/media-stream",
                               additional_headers={"X-Twilio-Signature": sign_websocket(AUTH_TOKEN, url)}) as ws:
                await ws.send(orjson.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}).decode())
                await ws.send(call.start(params))
                with pytest.raises(ConnectionClosed):
                    async with asyncio.timeout(60):
                        for i in range(3000):  # a 60 s call at real-time pace, cut by the drain
                            for track in ("inbound", "outbound"):
                                await ws.send(call.media(track, i + 1, i * 20, audio[i * 160:(i + 1) * 160]))
                            sent = i + 1
                            if i == 25:
                                proc.send_signal(signal.SIGTERM)
                            await asyncio.sleep(0.02)
                        await ws.recv()
                assert ws.close_code == 1012  # "service restart": Twilio's side of the call goes on without us
        async with asyncio.timeout(120):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert 50 < sent < 1000  # cut about a second after SIGTERM, not at once and not at the end
    row, jobs = await stored_call(dsn, call.call_sid)
    assert row.ended_at is not None and "1012" in row.end_reason
    assert 0 < row.media_ms <= sent * 20
    assert {job["kind"] for job in jobs} >= {"extract", "archive"}
    with WavReader(tmp_path / row.recording_key) as wav:
        assert wav.header_complete and wav.n_frames == row.media_ms * 8
