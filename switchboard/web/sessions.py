"""Dashboard sessions in PostgreSQL: opened by signing in with the API token, ended by expiry, sign-out or a new
API token.

The browser holds a random cookie value (HttpOnly, SameSite=Strict); the table holds its SHA-256, a CSRF token
and the tag of the API token it was opened with, so every instance behind a load balancer recognises it and a
rotated API token ends every session at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

import asyncpg

from switchboard.config import Secret
from switchboard.store.errors import StoreUnavailable

_OPEN: Final = """
INSERT INTO web_sessions (id_hash, csrf, token_tag, expires_at) VALUES ($1, $2, $3, now() + $4::interval)
RETURNING expires_at
"""
_FIND: Final = """
SELECT csrf, expires_at FROM web_sessions
WHERE id_hash = $1 AND token_tag = $2 AND revoked_at IS NULL AND expires_at > now()
"""
_REVOKE: Final = "UPDATE web_sessions SET revoked_at = now() WHERE id_hash = $1 AND revoked_at IS NULL"
_PURGE: Final = "DELETE FROM web_sessions WHERE expires_at < now() - interval '1 day'"


@dataclass(frozen=True, slots=True)
class WebSession:
    """A live session: the CSRF token mutating requests must echo, and when it ends."""

    csrf: str
    expires_at: datetime


_DB_ERRORS: Final = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _digest(cookie: str) -> bytes:
    return hashlib.sha256(cookie.encode()).digest()


class SessionBook:
    """Opens, finds and revokes sessions; owned by the app's lifespan (it shares the store's pool)."""

    def __init__(self, pool: asyncpg.Pool, api_token: Secret, ttl: timedelta) -> None:
        self._pool = pool
        self._tag = hashlib.sha256(b"switchboard-web-session\0" + api_token.reveal().encode()).hexdigest()[:32]
        self.ttl = ttl

    async def open(self) -> tuple[str, WebSession]:
        """A new session: the cookie value to hand the browser (never stored) and the session."""
        cookie, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        try:
            async with self._pool.acquire() as conn:
                await conn.execute(_PURGE)
                expires = await conn.fetchval(_OPEN, _digest(cookie), csrf, self._tag, self.ttl)
        except _DB_ERRORS as exc:
            raise StoreUnavailable(f"web_sessions: {exc}") from exc
        return cookie, WebSession(csrf, expires)

    async def find(self, cookie: str) -> WebSession | None:
        """The session this cookie value opened, unless it expired, was revoked or predates the API token."""
        if not cookie or len(cookie) > 128:
            return None
        try:
            row = await self._pool.fetchrow(_FIND, _digest(cookie), self._tag)
        except _DB_ERRORS as exc:
            raise StoreUnavailable(f"web_sessions: {exc}") from exc
        return None if row is None else WebSession(row["csrf"], row["expires_at"])

    async def revoke(self, cookie: str) -> None:
        try:
            await self._pool.execute(_REVOKE, _digest(cookie))
        except _DB_ERRORS as exc:
            raise StoreUnavailable(f"web_sessions: {exc}") from exc
