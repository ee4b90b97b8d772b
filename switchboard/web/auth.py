"""Who is calling: a script with the bearer token, or a signed-in browser with its session cookie.

A browser sends its cookie on its own, so everything a cookie authorises that changes state must prove it comes
from our page: mutating requests echo the session's CSRF token in ``X-CSRF-Token`` and, like websocket upgrades,
must come from our own origin (a cross-site websocket would otherwise ride on the cookie: browsers do not apply
CORS to websockets). Bearer callers are not ambient and need neither.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection

from switchboard.routes.auth import authorized
from switchboard.services import Services
from switchboard.web.sessions import WebSession

COOKIE = "sb_session"
CSRF_HEADER = "x-csrf-token"


@dataclass(frozen=True, slots=True)
class Caller:
    via: Literal["bearer", "session"]
    session: WebSession | None = None


async def identify(conn: HTTPConnection, services: Services) -> Caller | None:
    """The bearer token (header, or ``?token=`` for scripts' websockets) or a live session cookie; else None."""
    if authorized(conn, services.settings.api_token):
        return Caller("bearer")
    cookie = conn.cookies.get(COOKIE)
    if cookie and services.sessions is not None:
        session = await services.sessions.find(cookie)
        if session is not None:
            return Caller("session", session)
    return None


def same_origin(conn: HTTPConnection, public_url: str) -> bool:
    """The ``Origin`` header names this server: its public URL, or the host the request was sent to."""
    origin = conn.headers.get("origin")
    if origin is None:
        return False
    parts = urlsplit(public_url)
    ours = {f"{parts.scheme}://{parts.netloc}"}
    host = conn.headers.get("host")
    if host:
        secure = conn.url.scheme in ("https", "wss")
        ours.add(f"{'https' if secure else 'http'}://{host}")
    return origin in ours


def may_change(conn: HTTPConnection, caller: Caller, public_url: str) -> bool:
    """A state-changing request: any bearer caller; a session only with its CSRF token from our own origin."""
    if caller.via == "bearer":
        return True
    assert caller.session is not None
    presented = conn.headers.get(CSRF_HEADER, "")
    return same_origin(conn, public_url) and hmac.compare_digest(presented.encode(), caller.session.csrf.encode())


def may_subscribe(conn: HTTPConnection, caller: Caller, public_url: str) -> bool:
    """A websocket upgrade: bearer callers anywhere; a session cookie only from our own pages."""
    return caller.via == "bearer" or same_origin(conn, public_url)
