"""Hostile media timestamps and fast senders through a real server: closed with a reason or held to the pace rule,
never an order to allocate or write hours of silence (memory and disk stay bounded)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from audio.wav import WavReader
from switchboard.twilio.signature import sign_websocket
from tests.e2e.conftest import Server, fresh_database, running_server
from tests.e2e.test_media_errors import Call, tone

pytestmark = pytest.mark.e2e

SPEED, LEAD_S = 4.0, 1.0


@pytest.fixture(scope="module")
async def paced(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    dsn = await fresh_database(pg_dsn, "bounds")
    async with running_server(dsn, tmp_path_factory.mktemp("bounds-data"), transcriber="null",
                              max_media_speed=SPEED, max_media_lead_s=LEAD_S, max_media_jump_ms=5_000) as srv:
        yield srv


@pytest.fixture
async def client(paced: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=paced.base, timeout=30) as http:
        yield http


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise KeyError("VmRSS")


async def open_call(server: Server, http: httpx.AsyncClient) -> tuple[Call, Any]:
    call = Call(server, http)
    url, params = await call.answer()
    headers = {"X-Twilio-Signature": sign_websocket(server.target.auth_token, url)}
    ws = await connect(server.ws_base + "/api/twilio/media-stream", additional_headers=headers)
    await ws.send(orjson.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}).decode())
    await ws.send(call.start(params))
    return call, ws


async def closed(ws: Any) -> tuple[int | None, str]:
    async with asyncio.timeout(20):
        await ws.wait_closed()
    return ws.close_code, ws.close_reason or ""


@pytest.mark.parametrize(("frames", "bad_ts", "word"), [(50, 10**12, "ahead"), (50, 10**17, "ahead"),
                                                         (300, 0, "back")], ids=["1e12", "1e17", "back"])
async def test_far_timestamp_closes_stream_and_keeps_audio(paced: Server, client: httpx.AsyncClient,
                                                           frames: int, bad_ts: int, word: str) -> None:
    rss_before = rss_kib()
    call, ws = await open_call(paced, client)
    audio = tone(frames * 20)
    for i in range(frames):
        for track in ("inbound", "outbound"):
            await ws.send(call.media(track, i + 1, i * 20, audio[i * 160:(i + 1) * 160]))
    await ws.send(call.media("inbound", frames + 1, bad_ts, audio[:160]))
    code, reason = await closed(ws)
    assert code == 1008 and "jumps" in reason and word in reason, (code, reason)
    stored = await call.stored()
    assert stored["end_reason"].startswith("protocol violation: media timestamp")
    assert stored["media_ms"] == frames * 20
    path = paced.settings.data_dir / stored["recording_key"]
    assert path.stat().st_size < frames * 320 + 1024  # the audio before the jump, no silence after it
    with WavReader(path) as wav:
        data = wav.read(wav.n_frames)
    assert data[0::2] == audio and data[1::2] == audio
    assert rss_kib() - rss_before < 50 * 1024  # 10^12 ms of silence would be ~8 TB


async def test_fast_sender_is_held_to_the_pace_rule(paced: Server, client: httpx.AsyncClient) -> None:
    """10 s of media offered as fast as the socket takes it: the server never lets media time run past
    lead + speed × elapsed, and the whole call is still recorded."""
    seconds = 10
    audio = tone(seconds * 1000)
    call, ws = await open_call(paced, client)
    t0 = time.monotonic()
    observed: list[tuple[float, int]] = []

    async def watch() -> None:
        while True:
            r = await client.get(f"/api/calls/{call.call_sid}", headers=paced.auth())
            stats = r.json().get("live_stats") if r.status_code == 200 else None
            if stats and stats.get("recording"):
                observed.append((time.monotonic() - t0, stats["recording"]["media_ms"]))
            await asyncio.sleep(0.05)

    async with asyncio.TaskGroup() as tg:
        watcher = tg.create_task(watch())
        for i in range(seconds * 50):
            for track in ("inbound", "outbound"):
                await ws.send(call.media(track, i + 1, i * 20, audio[i * 160:(i + 1) * 160]))
        await ws.send(call.msg("stop", stop={"accountSid": "AC" + "0" * 32, "callSid": call.call_sid}))
        await closed(ws)
        watcher.cancel()
    wall = time.monotonic() - t0
    assert wall >= (seconds - LEAD_S) / SPEED * 0.95  # 2.25 s at least: held back, not refused
    assert observed, "live stats never seen"
    for elapsed, media_ms in observed:  # the server's clock starts after ours, so this bound is safe
        assert media_ms <= LEAD_S * 1000 + SPEED * 1000 * elapsed + 100, (elapsed, media_ms)
    stored = await call.stored()
    assert stored["end_reason"] == "stop" and stored["media_ms"] == seconds * 1000
