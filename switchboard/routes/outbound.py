"""``POST /api/calls`` (bearer, or the dashboard's session with its CSRF token): the agent calls someone (a lead
back, a visit to confirm).

Body: ``{"to": "+447700900123", "lead_id": 12?, "profile": "default"?}``. The call is placed through the Twilio
REST API (:class:`~switchboard.twilio.calls.TwilioCalls`: our voice URL with the lead and profile in its query,
the status callback, answering-machine detection) and stored at once with ``direction = outbound-api`` and mode
``agent``; from there it is recorded and transcribed like an inbound call. ``switchboard call`` and the
dashboard's "Call back" button post here. A ``call.status`` live event (``queued``) announces the call at once, so
live boards show it while it rings; Twilio's status callbacks carry it on from there.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from switchboard.extract.schema import normalise_phone
from switchboard.live.events import CallStatus
from switchboard.services import Services
from switchboard.store.errors import StoreError
from switchboard.twilio.calls import CallApiError
from switchboard.twilio.signature import public_url
from switchboard.web.auth import identify, may_change

log = logging.getLogger(__name__)

PROFILE_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
MAX_LEAD_ID: Final = 2**63 - 1


def _bad(message: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def parse_request(raw: bytes) -> tuple[str, int | None, str | None] | str:
    """``(to, lead_id, profile)`` from the body, or the reason it is refused."""
    try:
        body: Any = json.loads(raw or b"null")
    except ValueError:
        return "body must be JSON"
    if not isinstance(body, dict):
        return 'body must be a JSON object like {"to": "+447700900123"}'
    unknown = sorted(set(body) - {"to", "lead_id", "profile"})
    if unknown:
        return f"unknown fields {unknown}"
    to = normalise_phone(body["to"]) if isinstance(body.get("to"), str) else None
    if to is None:
        return "to must be a phone number (E.164, or a UK number)"
    lead = body.get("lead_id")
    if lead is not None and (isinstance(lead, bool) or not isinstance(lead, int) or not 0 < lead <= MAX_LEAD_ID):
        return "lead_id must be a positive integer"
    profile = body.get("profile")
    if profile is not None and (not isinstance(profile, str) or not PROFILE_NAME.match(profile)):
        return "profile must be a profile name (lower-case letters, digits, - and _)"
    return to, lead, profile


async def place_call(request: Request) -> Response:
    services: Services = request.state.services
    settings = services.settings
    caller = await identify(request, services)
    if caller is None:
        return JSONResponse({"error": "missing or invalid bearer token or session"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    if not may_change(request, caller, settings.public_url):
        return _bad("missing or wrong CSRF token, or not from this site", 403)
    parsed = parse_request(await request.body())
    if isinstance(parsed, str):
        return _bad(parsed)
    to, lead, profile = parsed
    agent = services.agent
    if agent is None:
        return _bad("the voice agent is not available on this server", 503)
    if settings.twilio_phone_number is None:
        return _bad("outbound calls need TWILIO_PHONE_NUMBER (the caller ID)", 409)
    if profile is not None and profile != "default" and agent.profile_path(profile) is None:
        return _bad(f"no agent profile named {profile!r}", 404)
    query = urlencode({k: v for k, v in (("lead", lead), ("profile", profile)) if v is not None})
    voice_url = public_url(settings.public_base, "/api/twilio/voice", query)
    try:
        call_sid = await agent.calls.place(
            to=to, from_=settings.twilio_phone_number, url=voice_url,
            status_callback=public_url(settings.public_base, "/api/twilio/status", ""))
    except CallApiError as exc:
        log.warning("outbound call to a number refused: %s", exc)
        return _bad(f"Twilio did not place the call: {exc}", 503 if exc.retryable else 502)
    try:
        await services.store.create_call(call_sid, account_sid=settings.twilio_account_sid,
                                         from_number=settings.twilio_phone_number, to_number=to,
                                         direction="outbound-api", mode="agent", status="queued",
                                         at=datetime.now(UTC))
    except StoreError as exc:  # the voice webhook stores it again when Twilio connects it
        log.error("call %s: could not store the outbound call: %s", call_sid, exc)
    services.hub.publish(call_sid, CallStatus("queued"))
    return JSONResponse({"call_sid": call_sid, "to": to, "lead_id": lead, "profile": profile or "default",
                         "direction": "outbound-api"}, status_code=201)
