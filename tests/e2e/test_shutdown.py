"""Server shutdown drains live calls: the recording is closed and the call row ended with the cause."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from audio.wav import WavReader
from switchboard.store import PgStore
from switchboard.twilio.signature import sign_websocket
from tests.e2e.conftest import Server, fresh_database, running_server
from tests.e2e.test_media_errors import Call, tone

pytestmark = pytest.mark.e2e


async def received_all(http: httpx.AsyncClient, server: Server, call_sid: str, frames: int) -> None:
    """Until the live call's jitter buffers have taken ``frames`` frames on each track."""
    async with asyncio.timeout(60):
        while True:
            body = (await http.get(f"/api/calls/{call_sid}", headers=server.auth())).json()
            tracks = body.get("live_stats", {}).get("tracks", {})
            if body.get("live") and all(tracks.get(t, {}).get("jitter", {}).get("received") == frames
                                        for t in ("inbound", "outbound")):
                return
            await asyncio.sleep(0.05)


async def test_shutdown_mid_call_finalises_the_call(pg_dsn: str, tmp_path: Path) -> None:
    dsn = await fresh_database(pg_dsn, "shutdown")
    frames = 100
    audio = tone(frames * 20)
    async with running_server(dsn, tmp_path, transcriber="null") as server:
        async with httpx.AsyncClient(base_url=server.base) as http:
            call = Call(server, http)
            url, params = await call.answer()
            ws = await connect(server.ws_base + "/api/twilio/media-stream",
                               additional_headers={"X-Twilio-Signature": sign_websocket(server.target.auth_token,
                                                                                        url)})
            await ws.send(orjson.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}).decode())
            await ws.send(call.start(params))
            for i in range(frames):
                for track in ("inbound", "outbound"):
                    await ws.send(call.media(track, i + 1, i * 20, audio[i * 160:(i + 1) * 160]))
            await received_all(http, server, call.call_sid, frames)  # now the server is told to stop mid-call
    # leaving running_server waited for the lifespan: live calls drained before the database closed
    await ws.close()
    store = await PgStore.connect(dsn)
    try:
        row = await store.get_call(call.call_sid)
    finally:
        await store.close()
    assert row is not None and row.ended_at is not None
    assert "socket closed" in (row.end_reason or "") and row.media_ms == frames * 20
    with WavReader(tmp_path / row.recording_key) as wav:
        assert wav.header_complete and wav.n_frames == frames * 160
