"""TwilioCalls through the real ``twilio`` client against the loopback Twilio REST emulator: placing a call with
answering-machine detection and a status callback, redirecting a live call, and errors."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from switchboard.twilio.calls import STATUS_EVENTS, CallApiError, TwilioCalls
from tests.emulators.twilio_rest import Fault, TwilioRestEmulator

VOICE = "https://sb.example.com/api/twilio/voice?lead=7"
STATUS = "https://sb.example.com/api/twilio/status"


@pytest.fixture
async def emu() -> AsyncIterator[TwilioRestEmulator]:
    async with TwilioRestEmulator() as emulator:
        yield emulator


@pytest.fixture
async def calls(emu: TwilioRestEmulator) -> AsyncIterator[TwilioCalls]:
    client = TwilioCalls(emu.account_sid, emu.auth_token, base_url=emu.base_url, timeout_s=30)
    yield client
    await client.aclose()


async def test_place_sends_our_urls_and_machine_detection(emu: TwilioRestEmulator, calls: TwilioCalls) -> None:
    emu.answered_by = "machine_end_beep"
    sid = await calls.place(to="+447700900123", from_="+447700900000", url=VOICE, status_callback=STATUS)
    assert sid.startswith("CA") and len(sid) == 34
    (call,) = emu.calls
    assert call["sid"] == sid and call["answered_by_result"] == "machine_end_beep"
    form = call["request"]
    assert (form["To"], form["From"], form["Url"], form["StatusCallback"]) == (
        "+447700900123", "+447700900000", VOICE, STATUS)
    assert form["MachineDetection"] == "DetectMessageEnd" and form["Method"] == "POST"
    sent = next(r for r in emu.requests if r.path.endswith("/Calls.json"))
    assert sent.form["StatusCallbackEvent"] in STATUS_EVENTS  # repeated key; the emulator keeps one


async def test_redirect_updates_the_live_call(emu: TwilioRestEmulator, calls: TwilioCalls) -> None:
    sid = "CA" + "1" * 32
    await calls.redirect(sid, "<Response><Dial>+447700900999</Dial></Response>")
    assert emu.updates == [{"sid": sid, "Twiml": "<Response><Dial>+447700900999</Dial></Response>"}]


@pytest.mark.parametrize(("status", "code", "retryable"), [(401, 20003, False), (400, 21211, False),
                                                           (429, 20429, True), (500, 20500, True)])
async def test_errors_say_whether_to_retry(emu: TwilioRestEmulator, calls: TwilioCalls, status: int, code: int,
                                           retryable: bool) -> None:
    emu.inject(Fault.error(status, code), times=None)
    with pytest.raises(CallApiError) as err:
        await calls.place(to="+447700900123", from_="+447700900000", url=VOICE, status_callback=STATUS)
    assert err.value.retryable is retryable and err.value.status == status and err.value.code == code
    with pytest.raises(CallApiError):
        await calls.redirect("CA" + "2" * 32, "<Response/>")
    assert not emu.calls and not emu.updates
