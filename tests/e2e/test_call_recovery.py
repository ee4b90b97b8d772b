"""SIGKILL the server mid-call; on restart it finishes the call it was streaming: header, row, post-call jobs.

Nothing in the dying process can mark the call ended, so the restarted instance must find it (by its instance id)
and do what the session would have done.
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from audio.wav import WavReader
from switchboard.recovery import RECOVERED_REASON
from switchboard.replay.twilio_fake import Target
from switchboard.store import PgStore
from switchboard.twilio.signature import sign_websocket
from tests.e2e.conftest import API_TOKEN, AUTH_TOKEN, Endpoint, free_port, fresh_database
from tests.e2e.test_media_errors import Call, tone
from tests.e2e.test_server_crash import start_server

pytestmark = pytest.mark.e2e

FRAMES = 150  # 3 s per track
SECOND = 2 * 8000  # bytes of one second of stereo μ-law


async def poll(http: httpx.AsyncClient, call_sid: str, done: Any, within_s: float = 60) -> dict[str, Any]:
    async with asyncio.timeout(within_s):
        while True:
            body = (await http.get(f"/api/calls/{call_sid}", headers={"Authorization": f"Bearer {API_TOKEN}"})).json()
            if done(body):
                return body
            await asyncio.sleep(0.1)


def received_everything(body: dict[str, Any]) -> bool:
    tracks = body.get("live_stats", {}).get("tracks", {})
    return all(tracks.get(t, {}).get("jitter", {}).get("received") == FRAMES for t in ("inbound", "outbound"))


def settled(body: dict[str, Any]) -> bool:
    jobs = body.get("jobs", [])
    return bool(body.get("ended_at")) and {"extract", "lead", "archive"} <= {j["kind"] for j in jobs} and \
        all(j["status"] == "done" for j in jobs)


async def test_a_call_live_when_the_server_was_killed_is_finished_on_restart(pg_dsn: str, tmp_path: Path) -> None:
    dsn = await fresh_database(pg_dsn, "recovery")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": dsn, "SWITCHBOARD_DATA_DIR": str(tmp_path), "SWITCHBOARD_PORT": str(port),
           "PUBLIC_URL": base, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "SWITCHBOARD_API_TOKEN": API_TOKEN,
           "SWITCHBOARD_TRANSCRIBER": "null", "SWITCHBOARD_LOG_LEVEL": "WARNING"}
    endpoint = Endpoint(base, Target(base, base, AUTH_TOKEN, API_TOKEN))
    server = await start_server(env, base)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            call = Call(endpoint, http)
            url, params = await call.answer()
            ws = await connect(endpoint.ws_base + "/api/twilio/media-stream",
                               additional_headers={"X-Twilio-Signature": sign_websocket(AUTH_TOKEN, url)})
            await ws.send(orjson.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}).decode())
            await ws.send(call.start(params))
            audio = tone(FRAMES * 20)
            for i in range(FRAMES):
                for track in ("inbound", "outbound"):
                    await ws.send(call.media(track, i + 1, i * 20, audio[i * 160:(i + 1) * 160]))
            live = await poll(http, call.call_sid, received_everything)
        recording = tmp_path / live["recording_key"]  # known from the stream's start
        async with asyncio.timeout(30):  # the recorder hands data to the OS about once a second
            while True:
                if await asyncio.to_thread(os.path.getsize, recording) >= 2 * SECOND:
                    break
                await asyncio.sleep(0.1)
    finally:
        server.send_signal(signal.SIGKILL)
        await server.wait()
    await ws.close()  # the server is gone: only our side of the socket is left

    store = await PgStore.connect(dsn)
    try:
        row = await store.get_call(call.call_sid)
    finally:
        await store.close()
    assert row is not None and row.started_at is not None and row.ended_at is None  # nobody ended it
    with WavReader(recording) as cut:
        assert not cut.header_complete  # the writer never closed it
        on_disk = cut.n_frames

    server = await start_server(env, base)
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            body = await poll(http, call.call_sid, settled, within_s=120)
    finally:
        server.send_signal(signal.SIGTERM)
        await server.wait()
    assert body["end_reason"] == RECOVERED_REASON and body["live"] is False
    assert body["stats"]["recovered"] is True
    assert body["recording_key"] == str(recording.relative_to(tmp_path))
    with WavReader(recording) as wav:
        assert wav.header_complete and wav.n_frames == on_disk  # every byte that reached the disk, now closed
    assert body["media_ms"] == on_disk * 1000 // 8000 >= 2000
    assert [j["status"] for j in body["jobs"] if j["kind"] == "archive"] == ["done"]
