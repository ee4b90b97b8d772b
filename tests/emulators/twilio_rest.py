"""A Twilio REST API emulator on loopback, for the official ``twilio`` client as client.

A small HTTP/1.1 server on plain asyncio streams (so a fault can cut a connection, which an ASGI app cannot):
``POST /2010-04-01/Accounts/{AC}/Messages.json`` and ``…/Calls.json`` (form bodies, Basic auth, Twilio's JSON
resource and error shapes), ``POST …/Calls/{CallSid}.json`` (update a live call with new ``Twiml``/``Url`` or a
``Status``), and ``GET …/Messages.json`` (a filtered page, newest first). A placed call is answered by
:attr:`TwilioRestEmulator.answered_by` (answering-machine detection's ``AnsweredBy``: ``human``,
``machine_end_beep``…), which the test, acting as Twilio's call leg, passes to the voice webhook. Faults are
injected for the next N requests (``times=None``: until :meth:`TwilioRestEmulator.clear`). Every request is logged in
:attr:`TwilioRestEmulator.requests`; accepted messages and calls in :attr:`messages` / :attr:`calls`.

Point the client at it with ``client.api.base_url = emu.base_url`` (the twilio client's own ``base_url``,
https://github.com/twilio/twilio-python).
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.emulators.http_loopback import LoopbackHttpServer, Response

_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<account>AC[0-9a-f]{32})/(?P<resource>Messages|Calls)"
                   r"(?:/(?P<sid>CA[0-9a-f]{32}))?\.json$")
_E164 = re.compile(r"^\+[1-9]\d{7,14}$")
_REASONS = {
    200: "OK",
    201: "Created",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    429: "Too Many Requests",
    500: "Internal Server Error",
}
_MESSAGES = {
    20003: "Authenticate",
    20404: "The requested resource was not found",
    20429: "Too Many Requests",
    20500: "Internal Server Error",
    21211: "The 'To' number is not a valid phone number.",
}


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour; build with the class methods."""

    kind: str  # "status", "slow", "reset" or "malformed"
    status: int = 200
    code: int | None = None
    delay_s: float = 0.0

    @classmethod
    def error(cls, status: int, code: int) -> Fault:
        """An error reply, e.g. ``(401, 20003)``, ``(400, 21211)``, ``(429, 20429)``, ``(500, 20500)``."""
        return cls("status", status, code)

    @classmethod
    def slow(cls, delay_s: float) -> Fault:
        """Answer normally after ``delay_s`` (beyond the client's timeout to test timeouts)."""
        return cls("slow", delay_s=delay_s)

    @classmethod
    def reset(cls) -> Fault:
        """Close the connection with a TCP RST instead of answering."""
        return cls("reset")

    @classmethod
    def malformed(cls) -> Fault:
        """A 201 whose body is not JSON (the request was accepted: the message is logged as sent)."""
        return cls("malformed", 201)


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    form: dict[str, str]
    headers: dict[str, str]
    fault: str | None = None
    status: int | None = None


_Response = Response


class TwilioRestEmulator(LoopbackHttpServer[Fault, RecordedRequest]):
    """``async with TwilioRestEmulator() as emu:`` then a ``twilio.rest.Client(emu.account_sid, emu.auth_token)``
    with ``api.base_url = emu.base_url``."""

    reasons = _REASONS

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, account_sid: str | None = None,
                 auth_token: str = "emulator-token") -> None:  # fmt: skip
        super().__init__(host, port)
        self.account_sid = account_sid or f"AC{uuid.uuid4().hex}"
        self.auth_token = auth_token
        self.messages: list[dict[str, Any]] = []
        self.calls: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        """Every accepted call update: ``{"sid": …, **form}``."""
        self.answered_by = "human"
        self.on_update: Callable[[dict[str, Any]], None] | None = None
        """Called with each accepted call update (a test acting as Twilio ends the call's stream on it)."""

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _record(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> RecordedRequest:
        url = urlsplit(target)
        return RecordedRequest(method, url.path, dict(parse_qsl(url.query, keep_blank_values=True)),
                               dict(parse_qsl(raw.decode(), keep_blank_values=True)), headers)  # fmt: skip

    def _headers(self, response: _Response) -> list[str]:
        return ["content-type: application/json; charset=utf-8", f"content-length: {len(response.body)}",
                f"twilio-request-id: RQ{next(self._ids):032x}"]

    def _respond(self, request: RecordedRequest, fault: Fault | None) -> _Response:
        match = _PATH.match(request.path)
        if match is None:
            return _error(404, 20404, f"The requested resource {request.path} was not found")
        if not self._authorised(request.headers.get("authorization", ""), match["account"]):
            return _error(401, 20003, "Authenticate")
        if fault is not None and fault.kind == "status":
            code = fault.code or fault.status * 100
            return _error(fault.status, code, _MESSAGES.get(code, "Error"))
        if request.method == "GET" and match["resource"] == "Messages":
            return self._list_messages(request)
        if request.method != "POST":
            return _error(405, 20004, "Method not allowed")
        if match["sid"] is not None:
            if match["resource"] != "Calls":
                return _error(404, 20404, f"The requested resource {request.path} was not found")
            return self._update_call(match["account"], match["sid"], request.form)
        create = self._create_message if match["resource"] == "Messages" else self._create_call
        response = create(match["account"], request.form)
        if fault is not None and fault.kind == "malformed" and response.status == 201:
            return _Response(201, response.body[: len(response.body) // 2])
        return response

    def _authorised(self, header: str, account: str) -> bool:
        scheme, _, value = header.partition(" ")
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except ValueError:
            return False
        return scheme.lower() == "basic" and user == self.account_sid == account and password == self.auth_token

    def _create_message(self, account: str, form: dict[str, str]) -> _Response:
        to, sender, body = form.get("To"), form.get("From"), form.get("Body")
        if not to:
            return _error(400, 21604, "A 'To' phone number is required.")
        if not sender:
            return _error(400, 21603, "A 'From' phone number is required.")
        if not body:
            return _error(400, 21602, "Message body is required.")
        if len(body) > 1600:
            return _error(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if not _E164.match(to):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        sid = f"SM{uuid.uuid4().hex}"
        message = {**self._resource(account, "Messages", sid), "body": body, "from": sender, "to": to,
                   "status": "queued", "direction": "outbound-api", "num_segments": str(-(-len(body) // 153)),
                   "num_media": "0", "date_sent": None, "error_code": None, "error_message": None,
                   "messaging_service_sid": None, "price": None, "price_unit": "USD"}  # fmt: skip
        self.messages.append(message)
        return _Response(201, json.dumps(message).encode())

    def _create_call(self, account: str, form: dict[str, str]) -> _Response:
        to, sender = form.get("To"), form.get("From")
        if not to:
            return _error(400, 21201, "No 'To' number is specified")
        if not sender:
            return _error(400, 21213, "No 'From' number is specified")
        if not (form.get("Url") or form.get("Twiml") or form.get("ApplicationSid")):
            return _error(400, 21205, "Url parameter is required.")
        if not _E164.match(to):
            return _error(400, 21211, f"Invalid 'To' Phone Number: {to}")
        sid = f"CA{uuid.uuid4().hex}"
        call = {**self._resource(account, "Calls", sid), "to": to, "from": sender, "status": "queued",
                "direction": "outbound-api", "parent_call_sid": None, "duration": None, "price": None,
                "start_time": None, "end_time": None, "answered_by": None, "caller_name": None}  # fmt: skip
        if form.get("MachineDetection") not in (None, "Enable", "DetectMessageEnd"):
            return _error(400, 21626, f"Invalid MachineDetection: {form.get('MachineDetection')}")
        answered = self.answered_by if form.get("MachineDetection") else None
        self.calls.append({**call, "request": dict(form), "answered_by_result": answered})
        return _Response(201, json.dumps(call).encode())

    def _update_call(self, account: str, sid: str, form: dict[str, str]) -> _Response:
        call = next((c for c in self.calls if c["sid"] == sid), None)
        if call is None:
            # Inbound calls were never created here; Twilio knows them, so accept any well-formed SID.
            call = {**self._resource(account, "Calls", sid), "to": None, "from": None, "status": "in-progress",
                    "direction": "inbound", "parent_call_sid": None, "duration": None, "price": None,
                    "start_time": None, "end_time": None, "answered_by": None, "caller_name": None}
        if not (form.get("Twiml") or form.get("Url") or form.get("Status")):
            return _error(400, 21205, "Url parameter is required.")
        if form.get("Status") not in (None, "canceled", "completed"):
            return _error(400, 21218, f"Invalid Status: {form.get('Status')}")
        self.updates.append({"sid": sid, **form})
        if self.on_update is not None:
            self.on_update({"sid": sid, **form})
        body = {k: v for k, v in call.items() if k not in ("request", "answered_by_result")}
        return _Response(200, json.dumps(body).encode())

    def _list_messages(self, request: RecordedRequest) -> _Response:
        query = request.query
        size = int(query.get("PageSize", "50"))
        found = [
            m
            for m in reversed(self.messages)
            if query.get("To", m["to"]) == m["to"] and query.get("From", m["from"]) == m["from"]
        ][:size]
        uri = request.path
        page = {"messages": found, "end": max(len(found) - 1, 0), "first_page_uri": f"{uri}?PageSize={size}&Page=0",
                "next_page_uri": None, "page": 0, "page_size": size, "previous_page_uri": None, "start": 0,
                "uri": f"{uri}?PageSize={size}&Page=0"}  # fmt: skip
        return _Response(200, json.dumps(page).encode())

    def _resource(self, account: str, kind: str, sid: str) -> dict[str, Any]:
        now = formatdate(usegmt=True)
        return {"sid": sid, "account_sid": account, "api_version": "2010-04-01", "date_created": now,
                "date_updated": now, "uri": f"/2010-04-01/Accounts/{account}/{kind}/{sid}.json",
                "subresource_uris": {}}  # fmt: skip


def _error(status: int, code: int, message: str) -> _Response:
    body = {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
    return _Response(status, json.dumps(body).encode())


__all__ = ["Fault", "RecordedRequest", "TwilioRestEmulator"]
