"""SmsAlerter through the real ``twilio`` client against the loopback Twilio REST emulator: success and each fault."""

from __future__ import annotations

import base64
import socket
from collections.abc import AsyncIterator

import pytest

from switchboard.alerts import (
    MAX_BODY,
    SmsAlerter,
    SmsAuthError,
    SmsError,
    SmsRateLimited,
    SmsRejected,
    SmsUnavailable,
    emergency_body,
)
from switchboard.extract import CallFacts
from tests.emulators.twilio_rest import Fault, TwilioRestEmulator

ONCALL = "+447700900999"
FROM = "+441134960000"
CALL = "CA" + "1" * 32
URL = f"https://switchboard.example/calls/{CALL}"
FACTS = CallFacts(
    caller_name="Ann Lee",
    callback_number="+447700900123",
    address="12 Hyde Park Road, Leeds",
    postcode="LS6 2AB",
    urgency="emergency",
    issue_category="gas",
    summary="Strong smell of gas in the kitchen; engineer dispatched.",
    lead_segment="tenant",
)


@pytest.fixture
async def emu() -> AsyncIterator[TwilioRestEmulator]:
    async with TwilioRestEmulator() as emulator:
        yield emulator


@pytest.fixture
async def alerter(emu: TwilioRestEmulator) -> AsyncIterator[SmsAlerter]:
    """A patient client: the emulator shares the test's event loop, which a loaded machine can stall for a while."""
    async with SmsAlerter(emu.account_sid, emu.auth_token, FROM, base_url=emu.base_url, timeout_s=10) as sms:
        yield sms


async def test_emergency_alert_is_sent(emu: TwilioRestEmulator, alerter: SmsAlerter) -> None:
    sid = await alerter.send_emergency(CALL, ONCALL, FACTS, URL)
    assert sid.startswith("SM") and len(sid) == 34
    [message] = emu.messages
    assert (message["sid"], message["to"], message["from"], message["status"]) == (sid, ONCALL, FROM, "queued")
    body = message["body"]
    for part in (
        "EMERGENCY",
        "gas",
        "Ann Lee",
        "12 Hyde Park Road, Leeds, LS6 2AB",
        "+447700900123",
        "Strong smell of gas",
        URL,
        f"ref {CALL}",
    ):
        assert part in body
    [request] = emu.requests
    assert request.path == f"/2010-04-01/Accounts/{emu.account_sid}/Messages.json"
    user, _, token = base64.b64decode(request.headers["authorization"].split()[1]).decode().partition(":")
    assert (user, token) == (emu.account_sid, emu.auth_token)


def test_body_fits_twilio_limit_and_keeps_the_link() -> None:
    huge = FACTS.model_copy(update={"summary": "water everywhere " * 200, "address": "Flat 9 " * 100})
    body = emergency_body(CALL, huge, URL)
    assert len(body) == MAX_BODY
    assert body.endswith(f"\n{URL}\nref {CALL}") and "…" in body
    sparse = FACTS.model_copy(update={"caller_name": None, "address": None, "postcode": None, "callback_number": None})
    text = emergency_body(CALL, sparse, URL)
    assert "Name: unknown" in text and "Address: unknown" in text and "Callback" not in text


@pytest.mark.parametrize(
    ("fault", "error", "status", "code", "retryable"),
    [
        (Fault.error(401, 20003), SmsAuthError, 401, 20003, False),
        (Fault.error(400, 21211), SmsRejected, 400, 21211, False),
        (Fault.error(429, 20429), SmsRateLimited, 429, 20429, True),
        (Fault.error(500, 20500), SmsUnavailable, 500, 20500, True),
        (Fault.reset(), SmsUnavailable, None, None, True),
        (Fault.malformed(), SmsUnavailable, None, None, True),
    ],
)
async def test_faults_are_translated(
    emu: TwilioRestEmulator,
    alerter: SmsAlerter,
    fault: Fault,
    error: type[SmsError],
    status: int | None,
    code: int | None,
    retryable: bool,
) -> None:
    emu.inject(fault)
    with pytest.raises(error) as caught:
        await alerter.send_emergency(CALL, ONCALL, FACTS, URL)
    assert type(caught.value) is error
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (status, code, retryable)
    assert caught.value.__cause__ is not None
    sid = await alerter.send_emergency(CALL, ONCALL, FACTS, URL)  # the fault was for one request only
    assert sid == emu.messages[-1]["sid"]


async def test_timeout_is_retryable(emu: TwilioRestEmulator, alerter: SmsAlerter) -> None:
    emu.inject(Fault.slow(600), times=None)  # held far beyond the short timeout (released when the emulator closes)
    async with SmsAlerter(emu.account_sid, emu.auth_token, FROM, base_url=emu.base_url, timeout_s=0.5) as hasty:
        with pytest.raises(SmsUnavailable) as caught:
            await hasty.send_emergency(CALL, ONCALL, FACTS, URL)
    assert type(caught.value) is SmsUnavailable
    assert (caught.value.status, caught.value.code, caught.value.retryable) == (None, None, True)
    assert isinstance(caught.value.__cause__, TimeoutError)
    emu.clear()
    sid = await alerter.send_emergency(CALL, ONCALL, FACTS, URL)  # an answer in time: sent
    assert sid == emu.messages[-1]["sid"]


async def test_wrong_credentials_and_bad_numbers(emu: TwilioRestEmulator) -> None:
    async with SmsAlerter(emu.account_sid, "wrong", FROM, base_url=emu.base_url) as bad:
        with pytest.raises(SmsAuthError, match="20003"):
            await bad.send(ONCALL, "hello")
    async with SmsAlerter(emu.account_sid, emu.auth_token, FROM, base_url=emu.base_url) as sms:
        with pytest.raises(SmsRejected) as caught:
            await sms.send("07700 900999", "hello")  # not E.164
        assert caught.value.code == 21211
        with pytest.raises(SmsRejected, match="1600"):
            await sms.send(ONCALL, "x" * (MAX_BODY + 1))
    assert len(emu.requests) == 2 and emu.messages == []  # the long body never left


async def test_unreachable_api_is_retryable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with SmsAlerter("AC" + "0" * 32, "t", FROM, base_url=f"http://127.0.0.1:{port}") as sms:
        with pytest.raises(SmsUnavailable) as caught:
            await sms.send(ONCALL, "hello")
    assert caught.value.retryable and caught.value.status is None


async def test_find_sent_recognises_an_accepted_but_unrecorded_alert(
    emu: TwilioRestEmulator, alerter: SmsAlerter
) -> None:
    assert await alerter.find_sent(CALL, ONCALL) is None
    emu.inject(Fault.malformed())  # Twilio took the message, the reply was lost
    with pytest.raises(SmsUnavailable):
        await alerter.send_emergency(CALL, ONCALL, FACTS, URL)
    assert await alerter.find_sent(CALL, ONCALL) == emu.messages[0]["sid"]
    assert await alerter.find_sent("CA" + "2" * 32, ONCALL) is None
    assert await alerter.find_sent(CALL, "+447700900111") is None
    list_request = emu.requests[-1]
    assert (list_request.method, list_request.query["To"], list_request.query["From"]) == ("GET", "+447700900111", FROM)


async def test_edge_and_region_environment_is_ignored(emu: TwilioRestEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TWILIO_EDGE", "sydney")
    monkeypatch.setenv("TWILIO_REGION", "au1")
    async with SmsAlerter(emu.account_sid, emu.auth_token, FROM, base_url=emu.base_url) as sms:
        assert (await sms.send(ONCALL, "hello")).startswith("SM")
