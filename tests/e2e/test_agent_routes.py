"""The agent's routes through the real server: who answers (agent mode, auto with the operator's missed <Dial>),
outbound calls (``POST /api/calls`` placing the call through the Twilio REST emulator, the answering machine's
message), with the direction stored."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator

import httpx
import pytest

from switchboard.agent.answer import AnswerMode, parse_business_hours
from switchboard.replay.twilio_fake import new_sid, post_signed
from switchboard.tts.factory import VoiceConfig
from tests.e2e.conftest import AUTH_TOKEN, Server, fresh_database, running_server
from tests.emulators.twilio_rest import Fault, TwilioRestEmulator

OPERATOR = "+447700900555"
OURS = "+447700900000"


@pytest.fixture(scope="module")
async def emu() -> AsyncIterator[TwilioRestEmulator]:
    async with TwilioRestEmulator(auth_token=AUTH_TOKEN) as emulator:
        yield emulator


@pytest.fixture(scope="module")
async def auto_server(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory,
                      emu: TwilioRestEmulator) -> AsyncIterator[Server]:
    """Auto mode with an operator, open all the time: the operator is rung first."""
    dsn = await fresh_database(pg_dsn, "agent_routes")
    async with running_server(dsn, tmp_path_factory.mktemp("agent-routes"), transcriber="null",
                              voices=VoiceConfig(None, ("espeak",)), answer=AnswerMode.AUTO,
                              business_hours=parse_business_hours("always"), operator_number=OPERATOR,
                              operator_timeout_s=12, twilio_phone_number=OURS, twilio_api_url=emu.base_url,
                              twilio_account_sid=emu.account_sid) as srv:
        yield srv


async def _voice(http: httpx.AsyncClient, srv: Server, path: str = "/api/twilio/voice",
                 **extra: str) -> tuple[str, ET.Element]:
    sid = extra.pop("CallSid", new_sid("CA"))
    form = {"CallSid": sid, "AccountSid": srv.settings.twilio_account_sid, "From": "+447700900123", "To": OURS,
            "CallStatus": "ringing", "Direction": "inbound", **extra}
    return sid, ET.fromstring(await post_signed(http, srv.target, path, form))


async def test_auto_rings_the_operator_then_the_agent_takes_a_missed_call(auto_server: Server) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        sid, twiml = await _voice(http, auto_server)
        assert [c.tag for c in twiml] == ["Start", "Dial"]
        dial = twiml[1]
        assert dial.attrib["timeout"] == "12" and dial.attrib["action"].endswith("/api/twilio/dial-status")
        _, after = await _voice(http, auto_server, "/api/twilio/dial-status", CallSid=sid,
                                DialCallStatus="no-answer")
        assert [c.tag for c in after] == ["Stop", "Connect", "Hangup"]
        params = {p.attrib["name"]: p.attrib["value"] for p in after.find("Connect/Stream") or []}
        assert params["mode"] == "agent" and params["token"]
        _, answered = await _voice(http, auto_server, "/api/twilio/dial-status", DialCallStatus="completed")
        assert [c.tag for c in answered] == ["Hangup"]
        call = (await http.get(f"{auto_server.base}/api/calls/{sid}", headers=auto_server.auth())).json()
        assert call["mode"] == "agent"


async def test_outbound_call_is_placed_stored_and_answered(auto_server: Server, emu: TwilioRestEmulator) -> None:
    async with httpx.AsyncClient(timeout=30) as http:
        refused = await http.post(f"{auto_server.base}/api/calls", json={"to": "+447700900123"})
        assert refused.status_code == 401
        bad = await http.post(f"{auto_server.base}/api/calls", json={"to": "call me"}, headers=auto_server.auth())
        assert bad.status_code == 400 and "to must be" in bad.json()["error"]
        placed = await http.post(f"{auto_server.base}/api/calls", json={"to": "07700 900123", "lead_id": 42},
                                 headers=auto_server.auth())
        assert placed.status_code == 201, placed.text
        sid = placed.json()["call_sid"]
        request = next(c for c in emu.calls if c["sid"] == sid)["request"]
        assert request["To"] == "+447700900123" and request["From"] == OURS
        assert request["Url"] == f"{auto_server.base}/api/twilio/voice?lead=42"
        assert request["MachineDetection"] == "DetectMessageEnd"
        stored = (await http.get(f"{auto_server.base}/api/calls/{sid}", headers=auto_server.auth())).json()
        assert (stored["direction"], stored["mode"], stored["to_number"]) == ("outbound-api", "agent",
                                                                               "+447700900123")
        # Twilio answers: a person gets the agent with the lead, a machine a message after the beep.
        target = auto_server.target
        person = await post_signed(http, target, "/api/twilio/voice?lead=42", {
            "CallSid": sid, "AccountSid": emu.account_sid, "From": OURS, "To": "+447700900123",
            "CallStatus": "in-progress", "Direction": "outbound-api", "AnsweredBy": "human"})
        stream = ET.fromstring(person).find("Connect/Stream")
        assert stream is not None
        assert {p.attrib["name"]: p.attrib["value"] for p in stream}["lead"] == "42"
        machine = ET.fromstring(await post_signed(http, target, "/api/twilio/voice", {
            "CallSid": new_sid("CA"), "AccountSid": emu.account_sid, "From": OURS, "To": "+447700900123",
            "CallStatus": "in-progress", "Direction": "outbound-api", "AnsweredBy": "machine_end_beep"}))
        assert [c.tag for c in machine] == ["Say", "Hangup"] and "call us back" in (machine[0].text or "")


async def test_outbound_call_refused_by_twilio_is_reported(auto_server: Server, emu: TwilioRestEmulator) -> None:
    emu.inject(Fault.error(400, 21211))
    async with httpx.AsyncClient(timeout=30) as http:
        placed = await http.post(f"{auto_server.base}/api/calls", json={"to": "+447700900124"},
                                 headers=auto_server.auth())
    assert placed.status_code == 502 and "21211" in placed.json()["error"]

