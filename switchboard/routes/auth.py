"""Bearer-token checks for the REST and live APIs."""

from __future__ import annotations

import hmac

from starlette.requests import HTTPConnection

from switchboard.config import Secret


def presented_token(conn: HTTPConnection) -> str | None:
    """The token from ``Authorization: Bearer …`` or, for browsers' websockets, the ``token`` query parameter."""
    header = conn.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    return conn.query_params.get("token") or None


def authorized(conn: HTTPConnection, token: Secret) -> bool:
    presented = presented_token(conn)
    return presented is not None and hmac.compare_digest(presented.encode(), token.reveal().encode())
