"""Emergency SMS to the on-call number through the Twilio REST API (the official ``twilio`` client, async).

Errors, translated once here from ``TwilioRestException`` / aiohttp / timeouts::

    SmsError               base; ``retryable``, ``status`` (HTTP, None without a reply), ``code`` (Twilio error code)
    ├── SmsUnavailable     no answer, connection refused or reset, timeout, 5xx, unreadable reply (retryable)
    │   └── SmsRateLimited 429 / 20429 (retryable, later)
    ├── SmsAuthError       401/403, e.g. 20003: wrong account SID or auth token (not retryable: configuration)
    └── SmsRejected        any other 4xx, e.g. 21211 invalid 'To' number, 21617 body too long (not retryable)

At most once per call: the ``sms:{CallSid}`` job dedupe key makes one job per call, and the job stores the message
SID when it succeeds. The Messages API has no idempotency key (twilio 9.x sends ``Idempotency-Key`` only for
Voice v3 transcriptions), so a retry after an *unrecorded* success (a crash or timeout after Twilio accepted the
message) would send again; :meth:`SmsAlerter.find_sent` closes most of that window by looking for the call's
reference in the recent messages to the same number before a retry sends.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Final

import aiohttp
from twilio.base.exceptions import TwilioRestException, TwilioServiceException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client

from switchboard.extract.schema import CallFacts

MAX_BODY: Final = 1600
"""Twilio's limit for a message body (characters)."""
_UNDELIVERED: Final = frozenset({"failed", "undelivered", "canceled"})
_FOREIGN: Final = (
    TwilioRestException,  # non-2xx reply with Twilio's error JSON
    TwilioServiceException,  # the same as RFC 9457 problem details
    aiohttp.ClientError,  # refused, reset, disconnected, bad HTTP
    TimeoutError,  # AsyncTwilioHttpClient's timeout
    OSError,
    json.JSONDecodeError,  # a 2xx reply that is not JSON
)


class SmsError(Exception):
    """Base of the alert errors; ``retryable`` says whether sending again later may work."""

    retryable: bool = False

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


class SmsUnavailable(SmsError):
    retryable = True


class SmsRateLimited(SmsUnavailable):
    pass


class SmsAuthError(SmsError):
    pass


class SmsRejected(SmsError):
    pass


def reference(call_sid: str) -> str:
    """The marker that ties a message to its call (and lets :meth:`SmsAlerter.find_sent` recognise it)."""
    return f"ref {call_sid}"


def emergency_body(call_sid: str, facts: CallFacts, call_url: str) -> str:
    """The alert text: what, who, where, how to call back, the summary, the link; never over :data:`MAX_BODY`.

    The link and the reference are kept whole; a very long address is cut to 200 characters, the summary takes
    what is left."""
    where = ", ".join(part for part in (facts.address, facts.postcode) if part) or "unknown"
    lines = [
        f"EMERGENCY call ({facts.issue_category.replace('_', ' ')})",
        f"Name: {_clip(facts.caller_name or 'unknown', 100)}",
        f"Address: {_clip(where, 200)}",
        *([f"Callback: {facts.callback_number}"] if facts.callback_number else []),
    ]
    tail = [call_url, reference(call_sid)]
    room = MAX_BODY - sum(len(line) + 1 for line in lines + tail)
    return "\n".join([*lines, _clip(facts.summary, room), *tail])


def _clip(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + "…" if limit > 1 else ""


class _AsyncHttpClient(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Two fixes to the stock async client (twilio 9.13): it never applies its own ``timeout`` (aiohttp then waits
    forever), and it builds ``aiohttp.BasicAuth``, deprecated since aiohttp 3.14 (a DeprecationWarning per request,
    removed in 4.0). Here the timeout applies and Basic auth goes as a header: the same bytes on the wire."""

    async def request(
        self,
        method: str,
        url: str,
        *args: Any,
        auth: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 (the library's signature)
        **kwargs: Any,
    ) -> Any:
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
            headers = {**(headers or {}), "Authorization": f"Basic {token}"}
        timeout = self.timeout if timeout is None else timeout
        return await super().request(method, url, *args, headers=headers, auth=None, timeout=timeout, **kwargs)


class SmsAlerter:
    """Sends alerts from ``from_number``. Build it inside the running event loop (the app's lifespan): the async
    HTTP client opens an aiohttp session. ``base_url`` points the client at an emulator (``TWILIO_API_URL``)."""

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        from_number: str,
        *,
        base_url: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        self.from_number = from_number
        self._http = _AsyncHttpClient(timeout=timeout_s)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        # Settings are the only configuration: TWILIO_EDGE / TWILIO_REGION in the environment would rewrite hosts.
        self._client.edge = None
        self._client.region = None
        if base_url is not None:
            self._client.api.base_url = base_url.rstrip("/")

    async def send(self, to: str, body: str) -> str:
        """Send one message; its SID (``SM…``). Raises an :class:`SmsError`."""
        if len(body) > MAX_BODY:
            raise SmsRejected(f"body is {len(body)} characters, Twilio takes at most {MAX_BODY}", code=21617)
        try:
            message = await self._client.messages.create_async(to=to, from_=self.from_number, body=body)
        except _FOREIGN as exc:
            raise _translate(exc, "send SMS") from exc
        return str(message.sid)

    async def send_emergency(self, call_sid: str, to: str, facts: CallFacts, call_url: str) -> str:
        """Alert ``to`` about an emergency call; the message SID."""
        return await self.send(to, emergency_body(call_sid, facts, call_url))

    async def find_sent(self, call_sid: str, to: str, *, recent: int = 20) -> str | None:
        """The SID of a not-failed alert for ``call_sid`` among the last ``recent`` messages to ``to``, if any."""
        try:
            messages = await self._client.messages.list_async(to=to, from_=self.from_number, limit=recent)
        except _FOREIGN as exc:
            raise _translate(exc, "list messages") from exc
        marker = reference(call_sid)
        for message in messages:
            if marker in (message.body or "") and message.status not in _UNDELIVERED:
                return str(message.sid)
        return None

    async def close(self) -> None:
        """Close the HTTP session (an unclosed aiohttp session warns at exit)."""
        await self._http.close()

    async def __aenter__(self) -> SmsAlerter:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _translate(exc: Exception, action: str) -> SmsError:
    if isinstance(exc, TwilioRestException | TwilioServiceException):
        status, code = int(exc.status), _code(exc.code)
        detail = f"{action}: HTTP {status}, Twilio error {code}: {getattr(exc, 'msg', None) or exc}"
        if status == 429:
            return SmsRateLimited(detail, status=status, code=code)
        if status in (401, 403):
            return SmsAuthError(detail, status=status, code=code)
        if 400 <= status < 500:
            return SmsRejected(detail, status=status, code=code)
        return SmsUnavailable(detail, status=status, code=code)
    if isinstance(exc, json.JSONDecodeError):
        return SmsUnavailable(f"{action}: unreadable reply from Twilio: {exc}")
    return SmsUnavailable(f"{action}: Twilio unreachable: {exc!r}")


def _code(value: object) -> int | None:
    return value if isinstance(value, int) else None
