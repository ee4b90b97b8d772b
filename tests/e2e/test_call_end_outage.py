"""PostgreSQL down at the moment a call ends: the end of the call (row and post-call jobs) is spooled on disk and
applied when the database is back — in the same process, and by the next process after a restart."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
from websockets.asyncio.client import connect

from audio.wav import WavReader
from switchboard.transcribe.moonshine import RecognizerPool
from switchboard.twilio.signature import sign_websocket
from tests.e2e.conftest import Server, running_server
from tests.e2e.test_media_errors import Call
from tests.pg_plugin import PgProxy

pytestmark = pytest.mark.e2e

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "real_librivox_reader.wav"


class Words:
    """A recogniser that answers every utterance with the same words (recognition is not the point here)."""

    def transcribe(self, samples: np.ndarray) -> str:
        return "my boiler is leaking at twelve high street"

    def self_test(self) -> str:
        return "ok"

    def close(self) -> None:
        pass


async def stream_until_stop(server: Server, call: Call, params: dict[str, str], before_stop: Any) -> None:
    """Stream the fixture as fast as the server takes it; run ``before_stop`` (the outage) just before ``stop``."""
    url = server.ws_base + "/api/twilio/media-stream"
    headers = {"X-Twilio-Signature": sign_websocket(server.target.auth_token, url)}
    with WavReader(FIXTURE) as wav:
        stereo = wav.read(wav.n_frames)
    tracks = stereo[0::2], stereo[1::2]
    async with connect(url, additional_headers=headers) as ws:
        await ws.send(orjson.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}).decode())
        await ws.send(call.start(params))
        for i in range(len(tracks[0]) // 160):
            for name, audio in zip(("inbound", "outbound"), tracks, strict=True):
                await ws.send(call.media(name, i + 1, i * 20, audio[i * 160:(i + 1) * 160]))
        await before_stop()
        await ws.send(call.msg("stop", stop={"accountSid": "AC" + "0" * 32, "callSid": call.call_sid}))
        async with asyncio.timeout(120):
            await ws.wait_closed()
    assert ws.close_code == 1000


async def spooled(server: Server) -> list[Path]:
    return sorted((server.settings.spool_dir / "call-ends").glob("CA*.json"))


async def wait_spooled(server: Server) -> None:
    async with asyncio.timeout(120):
        while True:  # polling the disk: nothing to wait on from outside the server
            if await spooled(server):
                return
            await asyncio.sleep(0.1)


async def finished(server: Server, http: httpx.AsyncClient, call_sid: str) -> dict[str, Any]:
    """Poll until the call is ended and every post-call job (extract → lead, archive) is done."""
    async with asyncio.timeout(120):
        while True:
            r = await http.get(f"/api/calls/{call_sid}", headers=server.auth())
            if r.status_code == 200:
                body: dict[str, Any] = r.json()
                kinds = {job["kind"]: job["status"] for job in body["jobs"]}
                if body["ended_at"] and kinds.keys() >= {"extract", "archive", "lead"} and \
                        set(kinds.values()) == {"done"}:
                    return body
            await asyncio.sleep(0.2)


def check(body: dict[str, Any]) -> None:
    assert body["end_reason"] == "stop" and body["media_ms"] > 30_000
    assert body["transcript"], "the transcript spooled by the segment writer is in the database"
    assert body["extraction"] is not None  # the extract job ran over it


async def test_database_down_at_call_end_then_back(pg_proxy: PgProxy, tmp_path: Path) -> None:
    pool = RecognizerPool(1, engine_factory=Words)
    try:
        async with running_server(pg_proxy.dsn, tmp_path, transcriber="local", recognizers=pool) as server, \
                httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            call = Call(server, http)
            _, params = await call.answer()
            await stream_until_stop(server, call, params, pg_proxy.stop)
            await wait_spooled(server)  # the end is on disk while the database is away
            ready = (await http.get("/readyz")).json()
            assert ready["checks"]["call_ends_spooled"] == 1, ready["checks"]
            await pg_proxy.start()
            body = await finished(server, http, call.call_sid)
            check(body)
            assert await spooled(server) == []
            assert (await http.get("/readyz")).json()["checks"]["call_ends_spooled"] == 0
    finally:
        await pool.aclose()


async def test_database_down_at_call_end_then_a_restart(pg_proxy: PgProxy, tmp_path: Path) -> None:
    pool = RecognizerPool(1, engine_factory=Words)
    try:
        async with running_server(pg_proxy.dsn, tmp_path, transcriber="local", recognizers=pool) as server, \
                httpx.AsyncClient(base_url=server.base, timeout=30) as http:
            call = Call(server, http)
            _, params = await call.answer()
            await stream_until_stop(server, call, params, pg_proxy.stop)
            await wait_spooled(server)
        await pg_proxy.start()  # the process is gone; its spool is on disk
        async with running_server(pg_proxy.dsn, tmp_path, transcriber="local", recognizers=pool) as again, \
                httpx.AsyncClient(base_url=again.base, timeout=30) as http:
            body = await finished(again, http, call.call_sid)
            check(body)
            assert await spooled(again) == []
    finally:
        await pool.aclose()
