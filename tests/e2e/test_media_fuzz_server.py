"""Mutated Twilio media streams through a real server (null transcriber, real PostgreSQL): no crash, no hang, every
stream the local model says is bad is closed with that close code and a reason, and memory stays flat."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from switchboard.twilio.signature import sign_websocket
from tests.e2e.conftest import Server, fresh_database, running_server
from tests.e2e.test_media_errors import Call
from tests.twilio.media_fuzz import Frame, Fuzzer, run_stream

pytestmark = pytest.mark.e2e

STREAMS = 150


@pytest.fixture(scope="module")
async def fuzz_server(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    dsn = await fresh_database(pg_dsn, "fuzz")
    async with running_server(dsn, tmp_path_factory.mktemp("fuzz-data"), transcriber="null") as srv:
        yield srv


def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise KeyError("VmRSS")


def utf8(frame: Frame) -> bool:
    try:
        frame.encode() if isinstance(frame, str) else None
    except UnicodeEncodeError:
        return False
    return True


async def send(ws: object, frame: Frame) -> None:
    if isinstance(frame, str):
        # a lone surrogate cannot be UTF-8: send the bytes as a text frame, as a broken peer would
        await ws.send(frame.encode("utf-8", "surrogatepass"), text=True)  # type: ignore[attr-defined]
    else:
        await ws.send(frame)  # type: ignore[attr-defined]


async def test_mutated_streams_through_a_real_server(fuzz_server: Server) -> None:
    fuzzer = Fuzzer(seed=99)
    endings: Counter[int | None] = Counter()
    messages = 0
    rss_warm = 0
    started: list[Call] = []
    async with httpx.AsyncClient(base_url=fuzz_server.base, timeout=30) as http:
        for n in range(STREAMS):
            call = Call(fuzz_server, http)
            url, params = await call.answer()
            stream = fuzzer.stream(call_sid=call.call_sid, token=params["token"])
            expected = run_stream(stream.frames, token=params["token"])
            headers = {"X-Twilio-Signature": sign_websocket(fuzz_server.target.auth_token, url)}
            async with asyncio.timeout(30), connect(fuzz_server.ws_base + "/api/twilio/media-stream",
                                                    additional_headers=headers, max_size=2**20) as ws:
                for frame in stream.frames:
                    try:
                        await send(ws, frame)
                    except ConnectionClosed:
                        break
                    messages += 1
                if expected.code is None:
                    await ws.close()  # nothing closes a stream that never started (or never stopped) but its peer
                else:
                    await ws.wait_closed()
                    # Invalid UTF-8 in a text frame is refused by the websocket layer itself as it reads (RFC 6455
                    # §8.1: 1007, uvicorn sends no reason), possibly before the app reached an earlier bad frame.
                    by_transport = ws.close_code == 1007 and not ws.close_reason and not all(map(utf8, stream.frames))
                    if not by_transport:
                        assert ws.close_code == expected.code, (n, ws.close_code, ws.close_reason, expected)
                        assert expected.code == 1000 or ws.close_reason, (n, ws.close_code)
            endings[expected.code] += 1
            if expected.started:
                started.append(call)
            if n == STREAMS // 5:
                rss_warm = rss_kib()
        r = await http.get("/healthz")
        assert r.status_code == 200
        for call in started:  # every call that got as far as a session was finalised and stored
            stored = await call.stored(within_s=30)
            assert stored["ended_at"] and stored["end_reason"], stored
    assert messages >= 3000, messages
    assert {1000, 1003, 1007, 1008} <= set(endings), endings
    assert rss_kib() - rss_warm < 40 * 1024, (rss_warm, rss_kib())
