"""Placing and redirecting calls through the Twilio REST API (the official ``twilio`` client, async).

- :meth:`TwilioCalls.place`: ``calls.create`` with our voice URL, the status callback and answering-machine
  detection (``MachineDetection=DetectMessageEnd``: the voice webhook then carries ``AnsweredBy``, so a machine gets
  a message after the beep and a person gets the agent;
  https://www.twilio.com/docs/voice/answering-machine-detection).
- :meth:`TwilioCalls.redirect`: ``calls(sid).update(twiml=…)``, how the agent hands a live call to the operator
  (https://www.twilio.com/docs/voice/api/call-resource#update-a-call-resource).

Errors are :class:`CallApiError` with ``retryable`` (no reply, 5xx, 429) and Twilio's ``status``/``code``.
"""

from __future__ import annotations

from typing import Final

from twilio.rest import Client

from switchboard.alerts.sms import _FOREIGN, SmsError, _AsyncHttpClient, _translate

STATUS_EVENTS: Final = ("initiated", "ringing", "answered", "completed")


class CallApiError(Exception):
    """Twilio refused or could not be reached; ``retryable`` says whether trying later may work."""

    def __init__(self, message: str, *, retryable: bool, status: int | None = None, code: int | None = None) -> None:
        super().__init__(message)
        self.retryable, self.status, self.code = retryable, status, code


class TwilioCalls:
    """Build inside the running loop (the async HTTP client opens an aiohttp session); ``aclose`` when done."""

    def __init__(self, account_sid: str, auth_token: str, *, base_url: str | None = None,
                 timeout_s: float = 10.0) -> None:
        self._http = _AsyncHttpClient(timeout=timeout_s)
        self._client = Client(account_sid, auth_token, http_client=self._http)
        self._client.edge = None  # settings are the only configuration (TWILIO_EDGE would rewrite the host)
        self._client.region = None
        if base_url is not None:
            self._client.api.base_url = base_url.rstrip("/")

    async def place(self, *, to: str, from_: str, url: str, status_callback: str,
                    machine_detection: str = "DetectMessageEnd") -> str:
        """Dial ``to``; Twilio fetches ``url`` (our voice webhook) when it answers. Returns the CallSid."""
        try:
            call = await self._client.calls.create_async(
                to=to, from_=from_, url=url, method="POST", status_callback=status_callback,
                status_callback_event=list(STATUS_EVENTS), status_callback_method="POST",
                machine_detection=machine_detection)
        except _FOREIGN as exc:
            raise _error(exc, "place call") from exc
        return str(call.sid)

    async def redirect(self, call_sid: str, twiml: str) -> None:
        """Give a live call new TwiML (its current verb, e.g. our ``<Connect><Stream>``, ends)."""
        try:
            await self._client.calls(call_sid).update_async(twiml=twiml)
        except _FOREIGN as exc:
            raise _error(exc, "redirect call") from exc

    async def aclose(self) -> None:
        await self._http.close()


def _error(exc: Exception, action: str) -> CallApiError:
    translated: SmsError = _translate(exc, action)
    return CallApiError(str(translated), retryable=translated.retryable, status=translated.status,
                        code=translated.code)


__all__ = ["STATUS_EVENTS", "CallApiError", "TwilioCalls"]
