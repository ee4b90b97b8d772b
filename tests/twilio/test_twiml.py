"""TwiML replies, read back with an XML parser: structure, attributes, escaping and refusals."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from switchboard.twilio.errors import TwilioError, TwimlError
from switchboard.twilio.twiml import operator_twiml, voicemail_twiml

STREAM = "wss://switchboard.example.com/api/twilio/media-stream"
PARAMS = {"token": "tok-123", "callSid": "CA" + "0" * 32}


def parse(twiml: str) -> ET.Element:
    assert twiml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    return ET.fromstring(twiml)


def children(element: ET.Element) -> list[str]:
    return [child.tag for child in element]


def check_stream(start: ET.Element, params: dict[str, str]) -> ET.Element:
    assert children(start) == ["Stream"]
    stream = start[0]
    assert stream.attrib["url"] == STREAM
    assert stream.attrib["track"] == "both_tracks" and stream.attrib["name"] == "switchboard"
    assert children(stream) == ["Parameter"] * len(params)
    assert [(p.attrib["name"], p.attrib["value"]) for p in stream] == list(params.items())
    return stream


def test_operator_twiml_forks_both_tracks_then_dials() -> None:
    root = parse(operator_twiml(STREAM, PARAMS, "+15551234567"))
    assert root.tag == "Response" and children(root) == ["Start", "Dial"]
    stream = check_stream(root[0], PARAMS)
    assert "statusCallback" not in stream.attrib
    dial = root[1]
    assert dial.attrib == {"timeout": "30"}
    assert children(dial) == ["Number"] and dial[0].text == "+15551234567"


def test_operator_twiml_options() -> None:
    callback = "https://switchboard.example.com/api/twilio/stream-status?a=1&b=2"
    twiml = operator_twiml(
        STREAM, {}, "+15551234567", caller_id="+15550001111", stream_status_callback=callback, dial_timeout_s=12
    )
    root = parse(twiml)
    assert check_stream(root[0], {}).attrib["statusCallback"] == callback
    assert root[1].attrib == {"timeout": "12", "callerId": "+15550001111"}


def test_parameter_values_are_escaped() -> None:
    tricky = {
        "a&b": 'say "hi" & <bye>',
        "quote's": "it's\ttab\nnewline",
        "unicode": "Zoë ☎ 𝄞",
        "empty": "",
    }
    twiml = operator_twiml(STREAM, tricky, "+15551234567")
    assert "&amp;" in twiml and "&quot;" in twiml and "&lt;" in twiml
    check_stream(parse(twiml)[0], tricky)


def test_voicemail_twiml_forks_speaks_then_holds_the_line() -> None:
    message = "Thanks for calling & sorry <we're> out"
    root = parse(voicemail_twiml(STREAM, PARAMS, message, max_seconds=90))
    assert children(root) == ["Start", "Say", "Pause", "Hangup"]
    check_stream(root[0], PARAMS)
    assert root[1].text == message
    assert root[2].attrib == {"length": "90"}


def test_voicemail_stream_status_callback() -> None:
    root = parse(voicemail_twiml(STREAM, {}, "Hi", stream_status_callback="https://e.com/s"))
    assert root[0][0].attrib["statusCallback"] == "https://e.com/s"


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://switchboard.example.com/media", "ws(s)://"),
        ("http://switchboard.example.com/media", "ws(s)://"),
        ("/api/twilio/media-stream", "ws(s)://"),
        ("wss:///media", "ws(s)://"),
        ("wss://switchboard.example.com/media?token=abc", "query"),
        ("wss://switchboard.example.com/media#frag", "query"),
        ("wss://switchboard.example.com/me\x00dia", "character"),
    ],
)
def test_unusable_stream_url_is_refused(url: str, problem: str) -> None:
    pattern = re.escape(problem)
    with pytest.raises(TwimlError, match=pattern):
        operator_twiml(url, {}, "+1555")
    with pytest.raises(TwimlError, match=pattern):
        voicemail_twiml(url, {}, "Hi")


def test_plain_ws_is_allowed_for_local_testing() -> None:
    assert parse(operator_twiml("ws://127.0.0.1:8000/m", {}, "+1555"))[0][0].attrib["url"] == "ws://127.0.0.1:8000/m"


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"params": {"": "x"}}, "names must not be empty"),
        ({"params": {"token": "a\x01b"}}, "parameter 'token'"),
        ({"params": {"to\x0bken": "x"}}, "parameter name"),
        ({"params": {"token": "\ud800"}}, "character XML cannot carry"),
        ({"operator_number": ""}, "operator number"),
        ({"operator_number": "+1\x1b555"}, "operator number"),
        ({"caller_id": "\x00"}, "caller id"),
        ({"stream_status_callback": "https://e.com/\x08"}, "status callback"),
        ({"dial_timeout_s": 4}, "dial timeout"),
        ({"dial_timeout_s": 601}, "dial timeout"),
    ],
)
def test_operator_twiml_refusals(kwargs: dict[str, object], problem: str) -> None:
    args: dict[str, object] = {"stream_url": STREAM, "params": {}, "operator_number": "+1555"} | kwargs
    with pytest.raises(TwimlError, match=problem) as info:
        operator_twiml(**args)  # type: ignore[arg-type]
    assert isinstance(info.value, TwilioError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("message", "max_seconds", "problem"),
    [("", 120, "message"), ("   ", 120, "message"), ("hi\x07", 120, "message"), ("hi", 0, "length"),
     ("hi", 4 * 3600 + 1, "length")],
)  # fmt: skip
def test_voicemail_refusals(message: str, max_seconds: int, problem: str) -> None:
    with pytest.raises(TwimlError, match=problem):
        voicemail_twiml(STREAM, {}, message, max_seconds=max_seconds)


def test_limits_are_inclusive() -> None:
    assert parse(operator_twiml(STREAM, {}, "+1", dial_timeout_s=5))[1].attrib["timeout"] == "5"
    assert parse(operator_twiml(STREAM, {}, "+1", dial_timeout_s=600))[1].attrib["timeout"] == "600"
    assert parse(voicemail_twiml(STREAM, {}, "hi", max_seconds=1))[2].attrib["length"] == "1"


def test_agent_twiml_connects_a_bidirectional_stream_then_hangs_up() -> None:
    from switchboard.twilio.twiml import agent_twiml

    root = parse(agent_twiml(STREAM, {**PARAMS, "mode": "agent"}))
    assert children(root) == ["Connect", "Hangup"]
    stream = root[0][0]
    assert stream.tag == "Stream" and stream.attrib == {"url": STREAM, "name": "switchboard"}  # no track: inbound
    assert {p.attrib["name"]: p.attrib["value"] for p in stream} == {**PARAMS, "mode": "agent"}
    after_dial = parse(agent_twiml(STREAM, PARAMS, stop_fork=True))
    assert children(after_dial) == ["Stop", "Connect", "Hangup"]
    assert after_dial[0][0].attrib == {"name": "switchboard"}
    with pytest.raises(TwimlError):
        agent_twiml("https://example.com/stream", PARAMS)


def test_operator_dial_action_and_transfer_and_machine_message() -> None:
    from switchboard.twilio.twiml import message_twiml, transfer_twiml

    action = "https://switchboard.example.com/api/twilio/dial-status"
    root = parse(operator_twiml(STREAM, PARAMS, "+15551234567", dial_timeout_s=20, dial_action=action))
    assert root[1].attrib == {"timeout": "20", "action": action}
    transfer = parse(transfer_twiml("+447700900999", caller_id="+447700900000"))
    assert children(transfer) == ["Dial"] and transfer[0][0].text == "+447700900999"
    assert transfer[0].attrib["callerId"] == "+447700900000"
    message = parse(message_twiml("Please call us back."))
    assert children(message) == ["Say", "Hangup"] and message[0].text == "Please call us back."
    with pytest.raises(TwimlError):
        message_twiml("  ")
