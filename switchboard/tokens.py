"""Per-call stream tokens: proof that a media stream belongs to a call whose webhook we answered.

Twilio strips query strings from ``<Stream url>``, so the token travels as a ``<Parameter>`` and comes back in
``start.customParameters``. It is an HMAC of the CallSid under a server key rather than a random value kept in
memory: any instance behind a load balancer can check it without shared state, and it cannot be forged for a call
the signed webhook never announced.
"""

from __future__ import annotations

import hashlib
import hmac

from pybase64 import urlsafe_b64encode


def stream_token(key: str, call_sid: str) -> str:
    digest = hmac.new(key.encode(), b"stream-token:" + call_sid.encode(), hashlib.sha256).digest()
    return urlsafe_b64encode(digest[:18]).decode()


def check_stream_token(key: str, call_sid: str, token: str | None) -> bool:
    # compared as bytes: compare_digest refuses str with non-ASCII characters (TypeError), which a forger can send
    return isinstance(token, str) and hmac.compare_digest(stream_token(key, call_sid).encode(), token.encode())
