"""Twilio voice webhook and status callback: signed form POSTs in, TwiML (or 204) out.

The signature is checked against the URL Twilio signed: ``PUBLIC_URL`` plus the route's own path (the one we gave
Twilio), never the request's path, which behind a proxy or under a root path is an internal one. A forged or
missing signature gets 403 before anything is stored. The body's size is bounded by the app's middleware while it
streams in (413). A database outage never blocks the TwiML answer: the caller is connected and the call row is
written when the stream ends. An instance at capacity or draining answers with a busy message and hangs up.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from switchboard.agent.answer import AnswerDecision, agent_takes_over, decide_answer
from switchboard.live.events import CallStatus
from switchboard.routes.media_ws import STREAM_PATH
from switchboard.services import Services
from switchboard.store.base import CallMode
from switchboard.store.errors import StoreError
from switchboard.twilio.signature import public_url, validate_webhook, websocket_url
from switchboard.twilio.twiml import agent_twiml, busy_twiml, message_twiml, operator_twiml, voicemail_twiml
from switchboard.twilio_ids import is_call_sid

log = logging.getLogger(__name__)

VOICE_PATH = "/api/twilio/voice"
STATUS_PATH = "/api/twilio/status"
DIAL_PATH = "/api/twilio/dial-status"
MACHINE = ("machine_start", "machine_end_beep", "machine_end_silence", "machine_end_other", "fax")
"""``AnsweredBy`` values of answering-machine detection that are not a person
(https://www.twilio.com/docs/voice/answering-machine-detection#webhook-parameters)."""
VOICEMAIL_MESSAGE = "Thanks for calling. Please tell us your name, address and what the problem is after the tone."
BUSY_MESSAGE = "Sorry, all our lines are busy right now. Please call again in a few minutes."


async def _signed_form(request: Request, path: str) -> FormData | None:
    """The urlencoded body as a multi-dict, or None when the signature (over ``path``) does not match it."""
    services: Services = request.state.services
    body = await request.body()
    # Twilio posts application/x-www-form-urlencoded; keep blank values and repeated keys, in the order they came:
    # all are signed, and the first of a repeated key is the one we use.
    pairs: list[tuple[str, str | UploadFile]] = list(parse_qsl(body.decode("utf-8", errors="replace"),
                                                               keep_blank_values=True))
    form = FormData(pairs)
    url = public_url(services.settings.public_base, path, request.url.query)
    params = {key: form.getlist(key) for key in form.keys()}
    signature = request.headers.get("x-twilio-signature")
    ok = any(validate_webhook(token, url, params, signature)  # type: ignore[arg-type]
             for token in services.settings.twilio_auth_tokens)  # the previous one too, during a rotation
    if not ok:
        log.warning("refused %s: invalid X-Twilio-Signature", path)
        return None
    return form


def _call_sid(form: FormData) -> str | None:
    """The CallSid, or None if it is missing, malformed or given twice with different values (which one?)."""
    values = set(form.getlist("CallSid"))
    sid = values.pop() if len(values) == 1 else None
    return sid if is_call_sid(sid) else None  # type: ignore[return-value]


def _field(form: FormData, key: str) -> str | None:
    """The first value of ``key`` (Starlette's ``form.get`` would give the last)."""
    values = form.getlist(key)
    value = values[0] if values else None
    return value if isinstance(value, str) and value else None


async def voice(request: Request) -> Response:
    services: Services = request.state.services
    form = await _signed_form(request, VOICE_PATH)
    if form is None:
        return PlainTextResponse("invalid signature", status_code=403)
    call_sid = _call_sid(form)
    if call_sid is None:
        return PlainTextResponse("missing, malformed or repeated CallSid", status_code=400)
    refusal = services.admission.answer_call(call_sid, len(services.registry), time.monotonic())
    if refusal is not None:
        log.warning("call %s turned away: %s", call_sid, refusal)
        return Response(busy_twiml(BUSY_MESSAGE), media_type="text/xml")
    settings = services.settings
    outbound = (_field(form, "Direction") or "").startswith("outbound")
    decision = AnswerDecision("agent", "outbound call") if outbound else decide_answer(
        settings.answer, operator_configured=bool(settings.operator_number), hours=settings.business_hours,
        now=datetime.now(UTC), operator_timeout_s=settings.operator_timeout_s)
    mode: CallMode = "agent" if decision.who == "agent" else "operator" if settings.operator_number else "voicemail"
    if mode == "agent" and services.agent is None:
        log.error("call %s: the agent should answer but is not available", call_sid)
        mode = "operator" if settings.operator_number else "voicemail"
    try:
        await services.store.create_call(
            call_sid, account_sid=_field(form, "AccountSid"), from_number=_field(form, "From"),
            to_number=_field(form, "To"), direction=_field(form, "Direction"), mode=mode,
            status=_field(form, "CallStatus"), at=datetime.now(UTC))
    except StoreError as exc:
        log.error("call %s: could not store the call at webhook time: %s", call_sid, exc)
    if outbound and services.agent is not None and (_field(form, "AnsweredBy") or "") in MACHINE:
        profile = services.agent.profile(request.query_params.get("profile"))
        return _twiml(message_twiml(profile.line("machine_message")))
    stream_url = websocket_url(settings.public_base, STREAM_PATH)
    params = {"token": services.stream_tokens().mint(call_sid, time.time())}
    if mode == "agent":
        extra = {k: v for k in ("lead", "profile") if (v := request.query_params.get(k))}
        return _twiml(agent_twiml(stream_url, {**params, "mode": "agent", **extra}))
    if settings.operator_number:
        action = public_url(settings.public_base, DIAL_PATH, "") if decision.agent_after_s is not None else None
        return _twiml(operator_twiml(stream_url, params, settings.operator_number,
                                     caller_id=settings.twilio_phone_number,
                                     dial_timeout_s=decision.agent_after_s or 30, dial_action=action))
    return _twiml(voicemail_twiml(stream_url, params, VOICEMAIL_MESSAGE))


async def dial_status(request: Request) -> Response:
    """The operator's ``<Dial>`` ended (auto mode): if nobody picked up, the agent takes the call; else hang up."""
    services: Services = request.state.services
    form = await _signed_form(request, DIAL_PATH)
    if form is None:
        return PlainTextResponse("invalid signature", status_code=403)
    call_sid = _call_sid(form)
    if call_sid is None:
        return PlainTextResponse("missing, malformed or repeated CallSid", status_code=400)
    settings = services.settings
    missed = AnswerDecision("operator", "business hours", agent_after_s=settings.operator_timeout_s)
    if services.agent is None or not agent_takes_over(missed, _field(form, "DialCallStatus") or ""):
        return _twiml(busy_twiml_hangup())
    log.info("call %s: the operator did not answer (%s); the agent takes it", call_sid,
             _field(form, "DialCallStatus"))
    try:
        await services.store.create_call(call_sid, account_sid=_field(form, "AccountSid"), from_number=None,
                                         to_number=None, direction=None, mode="agent", status=None,
                                         at=datetime.now(UTC))
    except StoreError as exc:
        log.error("call %s: could not record the agent taking over: %s", call_sid, exc)
    stream_url = websocket_url(settings.public_base, STREAM_PATH)
    params = {"token": services.stream_tokens().mint(call_sid, time.time()), "mode": "agent"}
    return _twiml(agent_twiml(stream_url, params, stop_fork=True))


def busy_twiml_hangup() -> str:
    """The operator answered (or the caller hung up): the call is over when the ``<Dial>`` ends."""
    return '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'


def _twiml(body: str) -> Response:
    return Response(body, media_type="text/xml")


async def status(request: Request) -> Response:
    services: Services = request.state.services
    form = await _signed_form(request, STATUS_PATH)
    if form is None:
        return PlainTextResponse("invalid signature", status_code=403)
    call_sid = _call_sid(form)
    status_value = _field(form, "CallStatus")
    if call_sid is None or status_value is None:
        return PlainTextResponse("missing CallSid or CallStatus", status_code=400)
    try:
        await services.store.apply_status(
            call_sid, status=status_value, sequence=_int(form, "SequenceNumber"),
            duration_s=_int(form, "CallDuration"), at=datetime.now(UTC), account_sid=_field(form, "AccountSid"),
            from_number=_field(form, "From"), to_number=_field(form, "To"), direction=_field(form, "Direction"))
    except StoreError as exc:
        # Say so rather than pretend: Twilio logs the failure and can retry per its callback policy.
        log.error("call %s: could not apply status %s: %s", call_sid, status_value, exc)
        return PlainTextResponse("store unavailable", status_code=503)
    services.hub.publish(call_sid, CallStatus(status_value))
    return Response(status_code=204)


def _int(form: FormData, key: str) -> int | None:
    value = _field(form, key)
    return int(value) if value is not None and value.isascii() and value.isdigit() and len(value) <= 18 else None
