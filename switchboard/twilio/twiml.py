"""TwiML replies to the voice webhook, built with twilio's ``VoiceResponse``.

Operator and voicemail modes fork the call's audio with ``<Start><Stream track="both_tracks">``: Twilio opens our
WebSocket and runs the next verb at once, so a verb must follow or the call ends
(https://www.twilio.com/docs/voice/twiml/stream). Agent mode uses ``<Connect><Stream>``, the bidirectional stream:
TwiML waits there until our server closes the socket, then ``<Hangup>`` ends the call; only the caller's track is
delivered, the agent's is what we send (https://www.twilio.com/docs/voice/media-streams/websocket-messages).
Twilio strips a query string from the stream URL (error 31920), so per-call values such as the one-time
token travel as ``<Parameter>`` elements and come back in ``start.customParameters``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from twilio.twiml.voice_response import VoiceResponse

from switchboard.twilio.errors import TwimlError

STREAM_NAME = "switchboard"  # <Stop><Stream name=…> and the REST Stream resource address it by name
STREAM_TRACK = "both_tracks"  # inbound = caller, outbound = operator or our own audio
DIAL_TIMEOUT_RANGE_S = (5, 600)  # Twilio's documented bounds for <Dial timeout>
MAX_CALL_SECONDS = 4 * 3600  # Twilio ends any call after four hours

# Characters XML 1.0 cannot carry even escaped (§2.2); ElementTree would write them and Twilio would
# reject the whole document, so refuse them here with a clear error instead.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(label: str, value: str) -> str:
    if _XML_ILLEGAL.search(value):
        raise TwimlError(f"{label} contains a character XML cannot carry: {value!r}")
    return value


def _stream_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("wss", "ws") or not parts.netloc:
        raise TwimlError(f"stream URL must be ws(s)://host/path, got {url!r}")
    if parts.query or parts.fragment:
        raise TwimlError(f"stream URL must not carry a query (Twilio strips it; use parameters): {url!r}")
    return _text("stream URL", url)


def _start_stream(
    response: VoiceResponse, stream_url: str, params: Mapping[str, str], status_callback: str | None
) -> None:
    """Append ``<Start><Stream …><Parameter …/>…</Stream></Start>`` to ``response``."""
    url = _stream_url(stream_url)
    callback = None if status_callback is None else _text("stream status callback", status_callback)
    stream = response.start().stream(url=url, track=STREAM_TRACK, name=STREAM_NAME, status_callback=callback)
    for name, value in params.items():
        if not name:
            raise TwimlError("stream parameter names must not be empty")
        stream.parameter(name=_text("parameter name", name), value=_text(f"parameter {name!r}", value))


def operator_twiml(
    stream_url: str,
    params: Mapping[str, str],
    operator_number: str,
    *,
    caller_id: str | None = None,
    stream_status_callback: str | None = None,
    dial_timeout_s: int = 30,
    dial_action: str | None = None,
) -> str:
    """Fork both tracks to ``stream_url``, then ring the operator; the stream lives as long as the call.

    ``dial_action``: Twilio posts the ``<Dial>``'s outcome (``DialCallStatus``) there and runs the TwiML it
    answers (https://www.twilio.com/docs/voice/twiml/dial#action): how the agent takes a call the operator missed."""
    if not operator_number:
        raise TwimlError("operator number must not be empty")
    low, high = DIAL_TIMEOUT_RANGE_S
    if not low <= dial_timeout_s <= high:
        raise TwimlError(f"dial timeout must be {low}..{high} s, got {dial_timeout_s}")
    response = VoiceResponse()
    _start_stream(response, stream_url, params, stream_status_callback)
    caller = None if caller_id is None else _text("caller id", caller_id)
    action = None if dial_action is None else _text("dial action", dial_action)
    dial = response.dial(timeout=dial_timeout_s, caller_id=caller, action=action)
    dial.number(_text("operator number", operator_number))
    return str(response)


def agent_twiml(stream_url: str, params: Mapping[str, str], *, stop_fork: bool = False) -> str:
    """Connect the call to the agent: ``<Connect><Stream>`` (bidirectional), then ``<Hangup>`` once we close it.

    ``stop_fork``: first ``<Stop>`` the one-way fork an earlier answer started (the operator's ``<Dial>`` that
    nobody picked up), since a call has one stream of ours at a time."""
    url = _stream_url(stream_url)
    response = VoiceResponse()
    if stop_fork:
        response.stop().stream(name=STREAM_NAME)
    stream = response.connect().stream(url=url, name=STREAM_NAME)
    for name, value in params.items():
        if not name:
            raise TwimlError("stream parameter names must not be empty")
        stream.parameter(name=_text("parameter name", name), value=_text(f"parameter {name!r}", value))
    response.hangup()
    return str(response)


def transfer_twiml(operator_number: str, *, caller_id: str | None = None, dial_timeout_s: int = 30,
                   fork: tuple[str, Mapping[str, str]] | None = None) -> str:
    """The call's new instructions when the agent hands it to a person (``calls(sid).update(twiml=…)``).

    ``fork``: a stream URL and its parameters (a fresh token): the operator leg is forked to us with
    ``<Start><Stream track="both_tracks">`` before the ``<Dial>``, so the call's recording and transcript go on
    (a new stream of the same call, placed after the agent's)."""
    if not operator_number:
        raise TwimlError("operator number must not be empty")
    response = VoiceResponse()
    if fork is not None:
        _start_stream(response, fork[0], fork[1], None)
    dial = response.dial(timeout=dial_timeout_s, caller_id=None if caller_id is None else _text("caller id", caller_id))
    dial.number(_text("operator number", operator_number))
    return str(response)


def message_twiml(message: str) -> str:
    """Say ``message`` and hang up: what an answering machine gets on an outbound call, after the beep."""
    if not message.strip():
        raise TwimlError("message must not be empty")
    response = VoiceResponse()
    response.say(_text("message", message))
    response.hangup()
    return str(response)


def voicemail_twiml(
    stream_url: str,
    params: Mapping[str, str],
    message: str,
    *,
    max_seconds: int = 120,
    stream_status_callback: str | None = None,
) -> str:
    """Fork both tracks, speak ``message``, then hold the line ``max_seconds`` to capture the caller.

    ``<Pause>`` is what keeps the call (and so the stream) open after ``<Say>``; ``<Hangup>`` ends it.
    """
    if not message.strip():
        raise TwimlError("voicemail message must not be empty")
    if not 1 <= max_seconds <= MAX_CALL_SECONDS:
        raise TwimlError(f"voicemail length must be 1..{MAX_CALL_SECONDS} s, got {max_seconds}")
    response = VoiceResponse()
    _start_stream(response, stream_url, params, stream_status_callback)
    response.say(_text("voicemail message", message))
    response.pause(length=max_seconds)
    response.hangup()
    return str(response)


def busy_twiml(message: str) -> str:
    """Speak ``message`` and hang up: the answer when this instance takes no more calls (at capacity, draining).

    No ``<Stream>``: nothing of the call reaches us, so there is nothing to record or lose."""
    if not message.strip():
        raise TwimlError("busy message must not be empty")
    response = VoiceResponse()
    response.say(_text("busy message", message))
    response.hangup()
    return str(response)
