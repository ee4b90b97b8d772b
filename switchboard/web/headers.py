"""Security headers for every dashboard response.

The Content-Security-Policy allows scripts, styles, media and connections from this origin only: no inline
script or style, no eval, no plugins, no framing, forms posting only here. Whatever text a caller's words put
in the page therefore cannot run even if it were ever rendered as markup (the scripts render it as text).
https://www.w3.org/TR/CSP3/ ; ``connect-src`` names the websocket origin explicitly for browsers that do not
match ``ws:`` against ``'self'``.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def content_security_policy(conn: HTTPConnection) -> str:
    host = conn.headers.get("host", "")
    ws = ("wss" if conn.url.scheme == "https" else "ws") + f"://{host}" if host else ""
    return ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; media-src 'self'; "
            f"connect-src 'self' {ws}; form-action 'self'; frame-ancestors 'none'; base-uri 'none'").replace(
                "  ", " ")


def security_headers(conn: HTTPConnection) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(conn),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",  # "no-referrer" would also make POSTs send "Origin: null"
        "X-Frame-Options": "DENY",
        "Cache-Control": "no-store",
    }


class WithSecurityHeaders:
    """Wraps one ASGI app (the static files) so its responses carry :func:`security_headers` too."""

    def __init__(self, app: ASGIApp, *, cache_s: int = 300) -> None:
        self._app = app
        self._cache = f"private, max-age={cache_s}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        extra = security_headers(HTTPConnection(scope))
        extra["Cache-Control"] = self._cache

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(k, v) for k, v in message.get("headers", []) if k.decode().lower() not in
                           {name.lower() for name in extra}]
                headers += [(k.lower().encode(), v.encode()) for k, v in extra.items()]
                message = {**message, "headers": headers}
            await send(message)

        await self._app(scope, receive, send_with_headers)
