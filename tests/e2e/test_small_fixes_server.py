"""Small crashes and leaks on a real server (hardening, item 8): each input that used to give a 500, a crash, a
wrong answer or a leak."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from switchboard.replay.twilio_fake import new_sid, parse_stream
from switchboard.twilio.signature import sign_webhook, sign_websocket
from tests.e2e.conftest import AUTH_TOKEN, Server, fresh_database, running_server
from tests.e2e.test_media_errors import Call
from tests.pg_plugin import PgProxy

pytestmark = pytest.mark.e2e


@pytest.fixture
async def server(pg_dsn: str, tmp_path: Path) -> AsyncIterator[Server]:
    dsn = await fresh_database(pg_dsn, "fixes")
    async with running_server(dsn, tmp_path, transcriber="null") as srv:
        yield srv


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base, timeout=30, headers=server.auth()) as client:
        yield client


async def test_before_beyond_int64_is_a_400_not_a_500(http: httpx.AsyncClient) -> None:
    for path in ("/api/calls", "/api/leads"):
        response = await http.get(path, params={"before": str(2**63)})
        assert response.status_code == 400 and "at most" in response.json()["error"]
        assert (await http.get(path, params={"before": "٣"})).status_code == 400  # int() would take it
        assert (await http.get(path, params={"before": str(2**63 - 1)})).status_code == 200


async def test_after_with_a_unicode_digit_is_refused_not_a_500(server: Server) -> None:
    with pytest.raises(InvalidStatus) as info:  # '²'.isdigit() is True and int('²') raised: a 500
        async with connect(server.ws_base + "/api/live?after=²", additional_headers=server.auth()):
            pass
    assert info.value.response.status_code == 403  # refused before the upgrade, as a bad token is


async def test_repeated_callsid_with_different_values_is_refused_and_first_values_win(
        server: Server, http: httpx.AsyncClient) -> None:
    url = server.base + "/api/twilio/voice"
    a, b = new_sid("CA"), new_sid("CA")
    pairs = [("CallSid", a), ("CallSid", b), ("From", "+447700900001")]
    signature = sign_webhook(AUTH_TOKEN, url, {"CallSid": [a, b], "From": "+447700900001"})
    response = await http.post(url, content=httpx.QueryParams(pairs).__str__(),
                               headers={"X-Twilio-Signature": signature,
                                        "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400 and "repeated CallSid" in response.text
    pairs = [("CallSid", a), ("From", "+447700900001"), ("From", "+447700900999")]
    signature = sign_webhook(AUTH_TOKEN, url, {"CallSid": a, "From": ["+447700900001", "+447700900999"]})
    response = await http.post(url, content=str(httpx.QueryParams(pairs)),
                               headers={"X-Twilio-Signature": signature,
                                        "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200
    assert (await http.get(f"/api/calls/{a}")).json()["from_number"] == "+447700900001"


async def test_a_64_kb_callsid_is_refused_and_not_logged_whole(server: Server, http: httpx.AsyncClient,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    call = Call(server, http)
    url, params = await call.answer()
    call.call_sid = "CA" + "f" * 60_000
    caplog.set_level(logging.INFO)
    async with connect(server.ws_base + "/api/twilio/media-stream",
                       additional_headers={"X-Twilio-Signature": sign_websocket(AUTH_TOKEN, url)}) as ws:
        await ws.send(call.start(params))
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 10)
    assert ws.close_code == 1008 and "callSid" in (ws.close_reason or "")
    assert "f" * 100 not in caplog.text and "malformed callSid (60002 chars)" in caplog.text


async def test_signed_urls_use_the_public_path_behind_a_prefix_stripping_proxy(pg_dsn: str, tmp_path: Path) -> None:
    dsn = await fresh_database(pg_dsn, "fixes")
    async with running_server(dsn, tmp_path, transcriber="null", root_path="/sb") as server, \
            httpx.AsyncClient(timeout=30) as http:
        public = server.settings.public_base  # http://127.0.0.1:port/sb: what Twilio was given and signs
        form = {"CallSid": new_sid("CA"), "From": "+447700900001", "CallStatus": "ringing"}
        signature = sign_webhook(AUTH_TOKEN, public + "/api/twilio/voice", form)
        # the proxy stripped /sb; uvicorn's root_path puts it back into the request's path
        response = await http.post(server.base + "/api/twilio/voice", data=form,
                                   headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200, response.text
        stream_url, _ = parse_stream(response.text)
        assert stream_url == public.replace("http://", "ws://") + "/api/twilio/media-stream"


@pytest.fixture
async def down_server(pg_proxy: PgProxy, tmp_path: Path) -> AsyncIterator[Server]:
    async with running_server(pg_proxy.dsn, tmp_path, transcriber="null") as srv:
        await pg_proxy.stop()
        yield srv
        await pg_proxy.start()


async def test_database_outage_is_503_and_readyz_names_no_host_or_call(down_server: Server, pg_proxy: PgProxy) -> None:
    async with httpx.AsyncClient(base_url=down_server.base, timeout=60, headers=down_server.auth()) as http:
        for path in ("/api/calls", "/api/leads", f"/api/calls/{new_sid('CA')}"):
            response = await http.get(path)
            assert response.status_code == 503 and response.headers["retry-after"], (path, response.text)
            assert response.json() == {"error": "database unavailable, retry later"}
        ready = await http.get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["database"] == "unavailable (StoreUnavailable)"
    text = ready.text
    assert f":{pg_proxy.port}" not in text and "127.0.0.1" not in text
    assert not re.search(r"CA[0-9a-f]{32}", text)


async def test_readyz_errors_are_redacted_after_a_spooled_call(pg_proxy: PgProxy, tmp_path: Path) -> None:
    async with running_server(pg_proxy.dsn, tmp_path, transcriber="null") as server, \
            httpx.AsyncClient(base_url=server.base, timeout=60) as http:
        call = Call(server, http)
        url, params = await call.answer()
        await pg_proxy.stop()
        async with connect(server.ws_base + "/api/twilio/media-stream",
                           additional_headers={"X-Twilio-Signature": sign_websocket(AUTH_TOKEN, url)}) as ws:
            await ws.send(call.start(params))
            await ws.send(call.msg("stop", stop={"accountSid": "AC" + "0" * 32, "callSid": call.call_sid}))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 30)
        ready = await http.get("/readyz")
        await pg_proxy.start()
    body = orjson.dumps(ready.json()).decode()
    assert call.call_sid not in body and f":{pg_proxy.port}" not in body and str(tmp_path) not in body
