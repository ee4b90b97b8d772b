"""Bearer-token checks for the REST and live APIs (the Authorization header first)."""

from __future__ import annotations

import hmac

from starlette.requests import HTTPConnection

from switchboard.config import Secret


def presented_token(conn: HTTPConnection) -> str | None:
    """The token from ``Authorization: Bearer …``; only on websockets, where a browser cannot set that header, the
    ``token`` query parameter instead. A URL ends up in access logs, proxies and browser history: REST calls must
    use the header (their ``?token=`` is ignored), and the log scrubber hides the websocket's."""
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    if conn.scope["type"] == "websocket":
        return conn.query_params.get("token") or None
    return None


def authorized(conn: HTTPConnection, token: Secret) -> bool:
    presented = presented_token(conn)
    # bytes, not str: compare_digest raises TypeError on a str with non-ASCII characters
    return presented is not None and hmac.compare_digest(presented.encode(), token.reveal().encode())
