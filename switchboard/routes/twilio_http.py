"""Twilio voice webhook and status callback: signed form POSTs in, TwiML (or 204) out.

The signature is checked against the URL Twilio signed, rebuilt from ``PUBLIC_URL`` (behind a proxy the request URL
is an internal one). A forged or missing signature gets 403 before anything is stored. A database outage never
blocks the TwiML answer: the caller is connected and the call row is written when the stream ends.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from urllib.parse import parse_qsl

from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from switchboard.live.events import CallStatus
from switchboard.services import Services
from switchboard.store.base import CallMode
from switchboard.store.errors import StoreError
from switchboard.tokens import stream_token
from switchboard.twilio.signature import public_url, validate_webhook, websocket_url
from switchboard.twilio.twiml import operator_twiml, voicemail_twiml
from switchboard.twilio_ids import is_call_sid

log = logging.getLogger(__name__)

STREAM_PATH = "/api/twilio/media-stream"
VOICEMAIL_MESSAGE = "Thanks for calling. Please tell us your name, address and what the problem is after the tone."


MAX_FORM_BYTES = 64 * 1024


async def _signed_form(request: Request) -> FormData | None:
    """The urlencoded body as a multi-dict, or None when the signature does not match it."""
    services: Services = request.state.services
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return None
    # Twilio posts application/x-www-form-urlencoded; keep blank values and repeated keys: both are signed.
    pairs: list[tuple[str, str | UploadFile]] = list(parse_qsl(body.decode("utf-8", errors="replace"),
                                                               keep_blank_values=True))
    form = FormData(pairs)
    url = public_url(services.settings.public_base, request.url.path, request.url.query)
    params = {key: form.getlist(key) for key in form.keys()}
    ok = validate_webhook(services.settings.twilio_auth_token.reveal(), url, params,  # type: ignore[arg-type]
                          request.headers.get("x-twilio-signature"))
    if not ok:
        log.warning("refused %s: invalid X-Twilio-Signature", request.url.path)
        return None
    return form


def _call_sid(form: FormData) -> str | None:
    sid = form.get("CallSid")
    return sid if is_call_sid(sid) else None  # type: ignore[return-value]


def _field(form: FormData, key: str) -> str | None:
    value = form.get(key)
    return value if isinstance(value, str) and value else None


async def voice(request: Request) -> Response:
    services: Services = request.state.services
    form = await _signed_form(request)
    if form is None:
        return PlainTextResponse("invalid signature", status_code=403)
    call_sid = _call_sid(form)
    if call_sid is None:
        return PlainTextResponse("missing or malformed CallSid", status_code=400)
    settings = services.settings
    mode: CallMode = "operator" if settings.operator_number else "voicemail"
    try:
        await services.store.create_call(
            call_sid, account_sid=_field(form, "AccountSid"), from_number=_field(form, "From"),
            to_number=_field(form, "To"), direction=_field(form, "Direction"), mode=mode,
            status=_field(form, "CallStatus"), at=datetime.now(UTC))
    except StoreError as exc:
        log.error("call %s: could not store the call at webhook time: %s", call_sid, exc)
    stream_url = websocket_url(settings.public_base, STREAM_PATH)
    params = {"token": stream_token(settings.twilio_auth_token.reveal(), call_sid)}
    if settings.operator_number:
        twiml = operator_twiml(stream_url, params, settings.operator_number, caller_id=settings.twilio_phone_number)
    else:
        twiml = voicemail_twiml(stream_url, params, VOICEMAIL_MESSAGE)
    return Response(twiml, media_type="text/xml")


async def status(request: Request) -> Response:
    services: Services = request.state.services
    form = await _signed_form(request)
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
    return int(value) if value is not None and value.isdigit() else None
