"""Per-call stream tokens: proof that a media stream belongs to a call whose webhook we answered, minutes ago.

Twilio strips query strings from ``<Stream url>``, so the token travels as a ``<Parameter>`` and comes back in
``start.customParameters`` (https://www.twilio.com/docs/voice/twiml/stream#custom-parameters). It is
``v1.{expires}.{nonce}.{mac}``: an HMAC under a server key over the CallSid, the expiry (Unix seconds) and a random
nonce. Any instance behind a load balancer can check it without shared state, it cannot be forged for a call the
signed webhook never announced, and it is dead after ``SWITCHBOARD_STREAM_TOKEN_TTL_S``.

Single use: the first stream to present a token consumes it, recorded in PostgreSQL (``stream_tokens``, keyed by the
nonce), so a replayed handshake is refused on every instance sharing the database and after a restart. While the
database is unreachable the consumption is kept in this instance's memory instead (until the token expires): a
call must not lose its recording to a database blip, and the short expiry bounds what that window allows.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from pybase64 import urlsafe_b64encode

from switchboard.store.errors import StoreError

log = logging.getLogger(__name__)

_VERSION = "v1"
_MAX_TOKEN_CHARS = 200


class TokenLedger(Protocol):
    """Where consumed tokens are recorded (:class:`~switchboard.store.pg.PgStore`)."""

    async def consume_stream_token(self, nonce: str, call_sid: str, expires_at: datetime) -> bool:
        """Record ``nonce`` as used; False if it already was."""
        ...


INVALID = "invalid stream token for this call"


def _mac(key: str, call_sid: str, expires: int, nonce: str) -> str:
    message = f"stream-token:{_VERSION}:{call_sid}:{expires}:{nonce}".encode()
    return urlsafe_b64encode(hmac.new(key.encode(), message, hashlib.sha256).digest()[:18]).decode()


def stream_token(key: str, call_sid: str, *, now: float, ttl_s: float) -> str:
    """A fresh token for ``call_sid`` that expires ``ttl_s`` after ``now`` (Unix seconds)."""
    expires = int(now + ttl_s)
    nonce = secrets.token_urlsafe(12)
    return f"{_VERSION}.{expires}.{nonce}.{_mac(key, call_sid, expires, nonce)}"


@dataclass(frozen=True, slots=True)
class TokenClaim:
    """A token that checked out: its nonce (the single-use identity) and its expiry."""

    nonce: str
    expires: int


def check_stream_token(key: str, call_sid: str, token: str | None, *, now: float) -> TokenClaim | str:
    """The claim if ``token`` is this call's and unexpired, else why not (a reason fit for a close frame)."""
    if not token:
        return "missing stream token"
    if len(token) > _MAX_TOKEN_CHARS or not token.isascii():
        return INVALID
    parts = token.split(".")
    if len(parts) != 4 or parts[0] != _VERSION or not parts[1].isdigit():
        return INVALID
    expires, nonce, mac = int(parts[1]), parts[2], parts[3]
    if not hmac.compare_digest(_mac(key, call_sid, expires, nonce), mac):
        return INVALID
    if now >= expires:
        return "stream token expired"
    return TokenClaim(nonce, expires)


@dataclass
class StreamTokens:
    """Checks and consumes stream tokens: valid for this call, unexpired, first use only."""

    key: str
    ttl_s: float
    ledger: TokenLedger
    previous_keys: tuple[str, ...] = ()
    """Keys of an auth-token rotation in progress: tokens another instance minted with them still validate."""
    _local: dict[str, int] = field(default_factory=dict)
    """Tokens consumed while the ledger was unreachable: nonce → expiry."""

    def mint(self, call_sid: str, now: float) -> str:
        return stream_token(self.key, call_sid, now=now, ttl_s=self.ttl_s)

    async def consume(self, call_sid: str, token: str | None, now: float) -> str | None:
        """None if this stream may go ahead (the token is now used up), else the reason to refuse it."""
        claim = check_stream_token(self.key, call_sid, token, now=now)
        for key in self.previous_keys:
            if claim != INVALID:  # only a MAC made with another key is worth another try
                break
            claim = check_stream_token(key, call_sid, token, now=now)
        if isinstance(claim, str):
            return claim
        self._local = {n: e for n, e in self._local.items() if e > now}  # bounded by the tokens still alive
        if claim.nonce in self._local:
            return "stream token already used"
        try:
            fresh = await self.ledger.consume_stream_token(claim.nonce, call_sid,
                                                           datetime.fromtimestamp(claim.expires, UTC))
        except StoreError as exc:
            log.warning("call %s: stream token recorded in memory only, the database is unavailable: %s",
                        call_sid, exc)
            fresh = True
            self._local[claim.nonce] = claim.expires
        return None if fresh else "stream token already used"
