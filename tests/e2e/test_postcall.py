"""During and after the call, end to end: live extraction, stored extraction and lead, S3 archive, one SMS.

Real server, real PostgreSQL, real SeaweedFS, the OpenAI and Twilio REST emulators driven by the real SDKs.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.config import Secret
from switchboard.replay.fixture import build_schedule
from switchboard.replay.twilio_fake import CallResult, replay_call
from tests.e2e.conftest import AUTH_TOKEN, fresh_database, running_server
from tests.emulators.openai_server import Fault as OpenAIFault
from tests.emulators.openai_server import OpenAIEmulator
from tests.emulators.twilio_rest import TwilioRestEmulator

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
EMERGENCY = FIXTURES / "tts_gas_emergency_glasgow.wav"
ACCOUNT = "AC" + "1" * 32
ONCALL = "+447700900777"


@pytest.fixture(scope="module")
async def rig(pg_dsn: str, seaweedfs: Any, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[dict[str, Any]]:
    bucket = seaweedfs.create_bucket("recordings-e2e")
    async with OpenAIEmulator(api_key="sk-test") as openai, \
            TwilioRestEmulator(account_sid=ACCOUNT, auth_token=AUTH_TOKEN) as twilio:
        dsn = await fresh_database(pg_dsn, "postcall")
        overrides = dict(
            transcriber="local", twilio_account_sid=ACCOUNT, twilio_phone_number="+447700900000",
            oncall_number=ONCALL, twilio_api_url=twilio.base_url,
            openai_api_key=Secret("sk-test"), openai_base_url=openai.base_url,
            aws_s3_bucket=bucket, aws_endpoint_url=seaweedfs.endpoint_url, aws_region="us-east-1",
            aws_access_key_id=seaweedfs.access_key, aws_secret_access_key=Secret(seaweedfs.secret_key),
        )
        async with running_server(dsn, tmp_path_factory.mktemp("postcall"), **overrides) as server:
            yield {"server": server, "openai": openai, "twilio": twilio, "s3": seaweedfs, "bucket": bucket}


async def replay(server: Any, speed: float = 4.0) -> CallResult:
    async with httpx.AsyncClient(timeout=60) as client:
        return await replay_call(server.target, build_schedule(EMERGENCY), speed=speed, client=client,
                                 end_timeout_s=600)


async def settled(server: Any, call_sid: str, within_s: float = 120,
                  kinds: frozenset[str] = frozenset({"extract", "lead", "archive"})) -> dict[str, Any]:
    """The call once every post-call job of these kinds (and any other it has) has finished."""
    async with httpx.AsyncClient(base_url=server.base, headers=server.auth(), timeout=30) as http:
        async with asyncio.timeout(within_s):
            while True:
                call = (await http.get(f"/api/calls/{call_sid}")).json()
                jobs = call.get("jobs", [])
                if jobs and all(j["status"] in ("done", "failed") for j in jobs) and \
                        kinds <= {j["kind"] for j in jobs}:
                    return call
                await asyncio.sleep(0.25)


def s3_keys(rig: dict[str, Any], call: dict[str, Any]) -> tuple[str, str]:
    key = call["recording_key"]
    return key, key.removesuffix(".wav") + ".json"


async def wait_for_object(rig: dict[str, Any], key: str, within_s: float = 120) -> dict[str, Any]:
    client = rig["s3"].client()
    async with asyncio.timeout(within_s):
        while True:
            try:
                return await asyncio.to_thread(client.head_object, Bucket=rig["bucket"], Key=key)
            except client.exceptions.ClientError:
                await asyncio.sleep(0.5)


async def test_emergency_call_end_to_end(rig: dict[str, Any]) -> None:
    server = rig["server"]
    sent_before = len(rig["twilio"].messages)
    result = await replay(server)
    extractions = [e for e in result.events if e["type"] == "extraction"]
    assert extractions, "no live extraction event during the call"
    assert extractions[-1]["facts"]["urgency"] in ("emergency", "urgent", "routine")
    assert isinstance(extractions[-1]["facts"]["needs_confirmation"], list)  # fields the agent should confirm
    call = await settled(server, result.call_sid, kinds=frozenset({"extract", "lead", "archive", "sms"}))
    final = call["extraction"]
    assert final is not None and final["source"] == "openai" and final["data"]["urgency"] == "emergency"
    assert final["data"]["evidence"]["urgency"]["source"] in ("said", "inferred")
    assert isinstance(final["data"]["needs_confirmation"], list)
    assert call["lead"] is not None and call["lead"]["urgency"] == "emergency"
    recording, transcript = s3_keys(rig, call)
    head = await wait_for_object(rig, recording)
    assert head["ContentLength"] == (server.settings.data_dir / recording).stat().st_size
    await wait_for_object(rig, transcript)
    await asyncio.sleep(1.0)  # a duplicate alert would have arrived by now
    alerts = [m for m in rig["twilio"].messages[sent_before:] if m.get("to") == ONCALL]
    assert len(alerts) == 1 and result.call_sid in alerts[0]["body"]
    assert [j["status"] for j in call["jobs"] if j["kind"] == "sms"] == ["done"]
    async with httpx.AsyncClient(base_url=server.base, headers=server.auth()) as http:
        leads = (await http.get("/api/leads")).json()["leads"]
    assert any(lead["id"] == call["lead"]["id"] for lead in leads)


async def test_openai_failing_falls_back_to_offline_extraction(rig: dict[str, Any]) -> None:
    rig["openai"].inject(OpenAIFault.http(500, should_retry=False), times=None)
    try:
        result = await replay(rig["server"], speed=0)
        call = await settled(rig["server"], result.call_sid)
    finally:
        rig["openai"].clear()
    assert call["extraction"]["source"] == "offline"
    assert call["extraction"]["fallback_reason"]
    assert call["lead"] is not None


async def test_s3_outage_is_spooled_and_uploaded_when_it_returns(rig: dict[str, Any]) -> None:
    rig["s3"].stop()
    try:
        result = await replay(rig["server"], speed=0)
        call = await settled(rig["server"], result.call_sid)
        recording, _ = s3_keys(rig, call)
        async with httpx.AsyncClient(base_url=rig["server"].base) as http:
            ready = (await http.get("/readyz")).json()
        assert ready["checks"]["archive"]["pending"] >= 1
    finally:
        await asyncio.to_thread(rig["s3"].start)
    head = await wait_for_object(rig, recording, within_s=400)
    assert head["ContentLength"] > 0
