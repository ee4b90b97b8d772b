"""Pre-auth resource limits on a real server: bodies, websocket messages, the start deadline, caps, signatures."""

from __future__ import annotations

import asyncio
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from switchboard.replay.twilio_fake import post_signed
from switchboard.tokens import stream_token
from switchboard.twilio.signature import sign_websocket
from tests.e2e.conftest import AUTH_TOKEN, Server, fresh_database, running_server
from tests.e2e.test_media_errors import Call, tone

pytestmark = pytest.mark.e2e

CONNECTED = orjson.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}).decode()


@pytest.fixture
async def server(pg_dsn: str, tmp_path: Path) -> AsyncIterator[Server]:
    dsn = await fresh_database(pg_dsn, "limits")
    async with running_server(dsn, tmp_path, transcriber="null", ws_start_timeout_s=1.0, max_calls=1,
                              max_connections=3, max_body_bytes=4096, ws_max_bytes=4096) as srv:
        yield srv


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        yield client


def stream_url(server: Server) -> str:
    return server.ws_base + "/api/twilio/media-stream"


def signed(server: Server) -> dict[str, str]:
    return {"X-Twilio-Signature": sign_websocket(AUTH_TOKEN, stream_url(server))}


async def closed(ws: ClientConnection, within_s: float = 10) -> tuple[int | None, str]:
    with pytest.raises(ConnectionClosed):
        async with asyncio.timeout(within_s):
            while True:
                await ws.recv()
    return ws.close_code, ws.close_reason or ""


async def raw_exchange(server: Server, head: bytes, chunks: list[bytes]) -> bytes:
    """Send a request head and body chunks, never finishing the body; return what the server answers."""
    host, port = server.base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head)
        for chunk in chunks:
            writer.write(chunk)
            await writer.drain()
        async with asyncio.timeout(10):
            return await reader.read(4096)
    finally:
        writer.close()


async def test_chunked_body_over_the_limit_is_refused_while_it_streams(server: Server) -> None:
    head = (b"POST /api/twilio/voice HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
    chunk = b"%x\r\n%s\r\n" % (1024, b"a" * 1024)
    answer = await raw_exchange(server, head, [chunk] * 6)  # 6 KiB sent, the terminating chunk never is
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"4096 bytes" in answer


async def test_declared_length_over_the_limit_is_refused_before_reading(server: Server) -> None:
    head = (b"POST /api/twilio/status HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000000\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
    answer = await raw_exchange(server, head, [b"CallSid=CA"])
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


async def test_websocket_message_over_the_limit_closes_1009(server: Server) -> None:
    async with connect(server.ws_base + "/api/live", additional_headers=server.auth()) as ws:
        await ws.send("x" * 5000)
        code, _ = await closed(ws)
    assert code == 1009


async def test_stream_without_start_is_closed_after_the_deadline(server: Server) -> None:
    async with connect(stream_url(server), additional_headers=signed(server)) as ws:
        await ws.send(CONNECTED)
        code, reason = await closed(ws)
    assert code == 1008 and "no valid start within 1 s" in reason


async def test_unsigned_stream_is_refused_when_a_real_auth_token_is_configured(server: Server) -> None:
    with pytest.raises(InvalidStatus) as info:
        async with connect(stream_url(server)):
            pass
    assert info.value.response.status_code == 403


async def test_unsigned_stream_is_accepted_only_with_the_explicit_override(pg_dsn: str, tmp_path: Path) -> None:
    dsn = await fresh_database(pg_dsn, "limits")
    async with running_server(dsn, tmp_path, transcriber="null", require_ws_signature=False,
                              ws_start_timeout_s=1.0) as srv, connect(stream_url(srv)) as ws:
        code, reason = await closed(ws)  # accepted, then closed for want of a start
    assert code == 1008 and "start" in reason


def busy(twiml: str) -> bool:
    root = ET.fromstring(twiml)
    return [child.tag for child in root] == ["Say", "Hangup"] and root.find(".//Stream") is None


async def test_over_the_call_cap_the_webhook_answers_busy_and_the_stream_is_refused(
        server: Server, http: httpx.AsyncClient) -> None:
    first = Call(server, http)
    _, params = await first.answer()  # takes the only slot
    second = Call(server, http)
    form = {"CallSid": second.call_sid, "AccountSid": "AC" + "0" * 32, "From": "+447700900003",
            "To": "+447700900002", "CallStatus": "ringing", "Direction": "inbound"}
    assert busy(await post_signed(http, server.target, "/api/twilio/voice", form))
    assert "switchboard_calls_refused 1" in (await http.get("/metrics")).text
    async with connect(stream_url(server), additional_headers=signed(server)) as ws:
        token = stream_token(AUTH_TOKEN, second.call_sid, now=time.time(), ttl_s=60)
        await ws.send(second.start({"token": token}))  # a valid token, no slot
        code, reason = await closed(ws)
    assert code == 1013 and "capacity" in reason
    async with connect(stream_url(server), additional_headers=signed(server)) as ws:  # the first call streams
        await ws.send(first.start(params))
        await ws.send(first.media("inbound", 1, 0, tone(20)))
        await ws.send(first.msg("stop", stop={"accountSid": "AC" + "0" * 32, "callSid": first.call_sid}))
        code, _ = await closed(ws)
    assert code == 1000


async def test_websockets_over_the_connection_cap_are_refused_with_a_reason(server: Server) -> None:
    held = [await connect(server.ws_base + "/api/live", additional_headers=server.auth()) for _ in range(3)]
    try:
        async with connect(server.ws_base + "/api/live", additional_headers=server.auth()) as extra:
            code, reason = await closed(extra)
        assert code == 1013 and "too many connections" in reason
    finally:
        for ws in held:
            await ws.close()
    async with asyncio.timeout(10):  # closed ones are counted out: a new one gets in
        while True:
            async with connect(server.ws_base + "/api/live", additional_headers=server.auth()) as ws:
                try:
                    async with asyncio.timeout(0.3):
                        await ws.recv()
                except TimeoutError:
                    return  # open and quiet: admitted
                except ConnectionClosed:
                    await asyncio.sleep(0.1)
