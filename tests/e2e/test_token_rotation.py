"""Rotating TWILIO_AUTH_TOKEN without refusing calls: the previous token stays valid while TWILIO_AUTH_TOKEN_PREVIOUS
names it (webhooks and stream tokens signed by an instance not yet restarted), and nothing else does."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from switchboard.config import Secret
from switchboard.replay.twilio_fake import Target, new_sid, parse_stream, post_signed
from switchboard.tokens import stream_token
from switchboard.twilio.signature import sign_websocket
from tests.e2e.conftest import API_TOKEN, AUTH_TOKEN, fresh_database, running_server
from tests.e2e.test_media_errors import Call

pytestmark = pytest.mark.e2e

OLD = "the-token-being-rotated-out"


async def test_the_previous_token_is_accepted_during_a_rotation(pg_dsn: str, tmp_path: Path) -> None:
    dsn = await fresh_database(pg_dsn, "rotation")
    async with running_server(dsn, tmp_path, transcriber="null",
                              twilio_auth_token_previous=Secret(OLD)) as server, \
            httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        form = {"CallSid": new_sid("CA"), "From": "+447700900001", "CallStatus": "ringing"}
        old = Target(server.base, server.base, OLD, API_TOKEN)
        stream_url, _ = parse_stream(await post_signed(http, old, "/api/twilio/voice", form))  # signed with the old
        forged = Target(server.base, server.base, "never-configured", API_TOKEN)
        with pytest.raises(Exception, match="403"):
            await post_signed(http, forged, "/api/twilio/voice", {**form, "CallSid": new_sid("CA")})
        with pytest.raises(InvalidStatus):
            async with connect(stream_url, additional_headers={"X-Twilio-Signature": sign_websocket("x", stream_url)}):
                pass
        # a stream token minted by an instance still on the old token, handshake signed with the old token
        call = Call(server, http)
        call.call_sid = form["CallSid"]
        token = stream_token(OLD, call.call_sid, now=time.time(), ttl_s=60)
        old_signature = {"X-Twilio-Signature": sign_websocket(OLD, stream_url)}
        async with connect(stream_url, additional_headers=old_signature) as ws:
            await ws.send(call.start({"token": token}))
            await ws.send(call.msg("stop", stop={"accountSid": "AC" + "0" * 32, "callSid": call.call_sid}))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1000
        forged_token = stream_token("never-configured", call.call_sid, now=time.time(), ttl_s=60)
        signature = sign_websocket(AUTH_TOKEN, stream_url)
        async with connect(stream_url, additional_headers={"X-Twilio-Signature": signature}) as ws:
            await ws.send(call.start({"token": forged_token}))
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 10)
        assert ws.close_code == 1008 and "invalid stream token" in (ws.close_reason or "")
        assert orjson.loads((await http.get("/healthz")).content)["status"] == "ok"
