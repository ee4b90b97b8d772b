"""One error tree for the Twilio protocol code.

::

    TwilioError                      anything raised by switchboard.twilio
    ├── ProtocolViolation            a peer broke the Media Streams protocol: close the socket with
    │                                  .close_code (RFC 6455 §7.4.1) and .close_reason
    ├── MediaStreamStateError        *we* misused the parser (e.g. sent media before start): a bug here
    ├── TwimlError (ValueError)      TwiML could not be built from these arguments (bad stream URL, ...)
    └── PublicUrlError (ValueError)  the configured public base URL cannot produce the URL Twilio signs

Foreign errors (orjson, binascii) are translated once, where they happen, with ``raise ... from exc``.
"""

from __future__ import annotations

# A WebSocket close reason must fit in a control frame: 125 bytes minus the 2-byte code (RFC 6455 §5.5).
MAX_CLOSE_REASON_BYTES = 123



class TwilioError(Exception):
    """Base of every error raised by :mod:`switchboard.twilio`."""


class ProtocolViolation(TwilioError):
    """The peer sent something no Twilio stream may send; the stream must be closed.

    ``reason`` names the problem (and, for illegal moves, the state and the event) so logs and the
    call record say *why* a stream ended; ``close_code`` is what to close the WebSocket with.
    """

    def __init__(self, reason: str, close_code: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.close_code = close_code

    @property
    def close_reason(self) -> str:
        """``reason`` cut to what fits in a WebSocket close frame, on a UTF-8 character boundary."""
        raw = self.reason.encode("utf-8")
        if len(raw) <= MAX_CLOSE_REASON_BYTES:
            return self.reason
        return raw[:MAX_CLOSE_REASON_BYTES].decode("utf-8", errors="ignore")

    def __repr__(self) -> str:
        return f"ProtocolViolation({self.reason!r}, close_code={self.close_code})"


class MediaStreamStateError(TwilioError):
    """A local call that the stream's state does not allow (h11's LocalProtocolError, in spirit)."""


class TwimlError(TwilioError, ValueError):
    """TwiML cannot be built from these arguments; Twilio would reject or misread it."""


class PublicUrlError(TwilioError, ValueError):
    """The public base URL is unusable for signing (no scheme or host, or carries a query)."""
