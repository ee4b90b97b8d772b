"""WebSocket close codes, one enum for every socket we close (RFC 6455 §7.4.1; 1013 from the IANA registry)."""

from __future__ import annotations

from enum import IntEnum


class CloseCode(IntEnum):
    NORMAL = 1000  # the stream ended as agreed (Twilio's stop)
    GOING_AWAY = 1001  # the server is shutting down
    UNSUPPORTED_DATA = 1003  # binary frame, or a media format we cannot decode
    INVALID_DATA = 1007  # malformed JSON, missing or ill-typed field, bad base64
    POLICY_VIOLATION = 1008  # refused (signature, token, duplicate), or an illegal order of events
    MESSAGE_TOO_BIG = 1009  # message or payload over the configured limit
    TRY_AGAIN_LATER = 1013  # overloaded, a subscriber overflowed, or the database is down


__all__ = ["CloseCode"]
