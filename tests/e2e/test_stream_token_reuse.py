"""Single-use, expiring stream tokens, and recordings never opened for writing from scratch twice, on each path
that reaches the recorder again for one call: a replayed handshake, a restart between the end and a replay, a lost
row, a second stream with a second webhook's token."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from audio.wav import WavReader
from switchboard.twilio.signature import sign_websocket
from tests.e2e.conftest import Server, fresh_database, running_server
from tests.e2e.test_media_errors import Call, tone

pytestmark = pytest.mark.e2e


async def stream(server: Server, call: Call, params: dict[str, str], seconds: float = 0.5,
                 freq: float = 440.0) -> tuple[int | None, str]:
    """One media stream for ``call``: connected, start with ``params``, ``seconds`` of both tracks, stop."""
    call.seq = 0
    url = server.ws_base + "/api/twilio/media-stream"
    headers = {"X-Twilio-Signature": sign_websocket(server.target.auth_token, url)}
    audio = tone(int(seconds * 1000), freq)
    async with connect(url, additional_headers=headers) as ws:
        await ws.send(orjson.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}).decode())
        await ws.send(call.start(params))
        try:
            for i in range(len(audio) // 160):
                for track in ("inbound", "outbound"):
                    await ws.send(call.media(track, i + 1, i * 20, audio[i * 160:(i + 1) * 160]))
            await ws.send(call.msg("stop", stop={"accountSid": "AC" + "0" * 32, "callSid": call.call_sid}))
        except ConnectionClosed:
            pass  # a refused stream is closed under our feet; its close is the answer
        async with asyncio.timeout(20):
            await ws.wait_closed()
    return ws.close_code, ws.close_reason or ""


def recordings(server: Server, call: Call) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in (server.settings.data_dir / "recordings").rglob(f"{call.call_sid}*.wav")}


async def first_call(server: Server, http: httpx.AsyncClient) -> tuple[Call, dict[str, str], dict[str, bytes]]:
    call = Call(server, http)
    _, params = await call.answer()
    assert await stream(server, call, params) == (1000, "")
    await call.stored()
    return call, params, recordings(server, call)


async def second_end(call: Call) -> dict[str, Any]:
    """The row once the second stream's end is written (the first stream's end is already there)."""
    async with asyncio.timeout(30):
        while True:
            stored = await call.stored()
            if stored["recording_key"].endswith(f"{call.call_sid}-2.wav"):
                return stored
            await asyncio.sleep(0.1)


@pytest.fixture
async def dsn(pg_dsn: str) -> str:
    return await fresh_database(pg_dsn, "tokens")


async def test_replayed_handshake_is_refused_and_the_recording_kept(dsn: str, tmp_path: Path) -> None:
    async with running_server(dsn, tmp_path, transcriber="null") as server, \
            httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        call, params, before = await first_call(server, http)
        assert await stream(server, call, params, freq=880) == (1008, "stream token already used")
        assert recordings(server, call) == before


async def test_restart_between_the_end_and_a_replay(dsn: str, tmp_path: Path) -> None:
    async with running_server(dsn, tmp_path, transcriber="null") as server, \
            httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        call, params, before = await first_call(server, http)
    async with running_server(dsn, tmp_path, transcriber="null") as again:  # same database, same disk
        call.server = again
        assert await stream(again, call, params, freq=880) == (1008, "stream token already used")
        assert recordings(again, call) == before


async def test_lost_rows_never_cost_the_recording(dsn: str, tmp_path: Path) -> None:
    async with running_server(dsn, tmp_path, transcriber="null") as server, \
            httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        call, params, before = await first_call(server, http)
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute("DELETE FROM calls WHERE call_sid = $1", call.call_sid)  # the call row is lost:
            assert await stream(server, call, params, freq=880) == (1008, "stream token already used")
            await conn.execute("DELETE FROM stream_tokens WHERE call_sid = $1", call.call_sid)  # and the token's
        finally:
            await conn.close()
        # with nothing in the database the unexpired token is taken again, but the recording is not reopened:
        # the stream records beside it
        assert await stream(server, call, params, freq=880) == (1000, "")
        await second_end(call)
        after = recordings(server, call)
        first = next(iter(before))
        assert after[first] == before[first]
        assert len(after) == 2


async def test_second_stream_with_a_second_webhook_token_records_beside_the_first(dsn: str, tmp_path: Path) -> None:
    async with running_server(dsn, tmp_path, transcriber="null") as server, \
            httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        call, _, before = await first_call(server, http)
        _, second = await call.answer()  # Twilio retried the webhook: a second valid token for the same call
        assert await stream(server, call, second, seconds=1.0, freq=880) == (1000, "")
        after = recordings(server, call)
        first = next(iter(before))
        assert after[first] == before[first] and len(after) == 2
        stored = await second_end(call)
        with WavReader(server.settings.data_dir / stored["recording_key"]) as wav:
            assert wav.n_frames == 8000  # the second stream's own second of audio
        archived = {job["payload"]["recording_key"] for job in stored["jobs"] if job["kind"] == "archive"}
        assert {Path(key).name for key in archived} == set(after)  # each recording is archived


async def test_expired_token_is_refused(dsn: str, tmp_path: Path) -> None:
    async with running_server(dsn, tmp_path, transcriber="null", stream_token_ttl_s=1.0) as server, \
            httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        call = Call(server, http)
        _, params = await call.answer()
        expires = int(params["token"].split(".")[1])
        await asyncio.sleep(max(0.0, expires - time.time()) + 0.05)  # the expiry is in the token itself
        assert await stream(server, call, params) == (1008, "stream token expired")
        assert recordings(server, call) == {}
