"""``Limits``: ASGI middleware bounding what a client can make us hold before any route runs.

* HTTP request bodies: a ``Content-Length`` over ``max_body_bytes`` is refused (413) before a byte of the body is
  read; a chunked body is counted as it streams in and refused the moment it passes the limit, not after it has
  all been buffered.
* Websocket messages over ``ws_max_bytes`` close the socket with 1009 (message too big) and the route sees a
  disconnect. uvicorn's ``ws_max_size`` (set from the same setting by :mod:`switchboard.serving`) stops them even
  earlier, in the protocol layer; this check holds for any server the app runs under.
* Concurrent websockets are capped (:meth:`Admission.open_connection`): one over the cap is accepted only to be
  closed at once with 1013 (try again later) and a reason, so the client learns why.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from switchboard.admission import Admission
from switchboard.close_codes import CloseCode

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]



class BodyTooLarge(Exception):
    """Raised from ``receive`` inside the route; turned into a 413 by :class:`Limits`."""


class Limits:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, ws_max_bytes: int, admission: Admission) -> None:
        self.app, self.max_body_bytes, self.ws_max_bytes, self.admission = app, max_body_bytes, ws_max_bytes, admission

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(send)
            return
        received = 0
        started = False

        async def bounded_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_body_bytes:
                    raise BodyTooLarge
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, bounded_receive, watched_send)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large(send)

    async def _too_large(self, send: Send) -> None:
        body = f"request body over {self.max_body_bytes} bytes\n".encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.admission.open_connection():
            await _refuse(receive, send, f"too many connections ({self.admission.max_connections})")
            return
        closed = False

        async def bounded_receive() -> Message:
            nonlocal closed
            message = await receive()
            if message["type"] == "websocket.receive" and _ws_size(message, self.ws_max_bytes) > self.ws_max_bytes:
                closed = True
                await send({"type": "websocket.close", "code": CloseCode.MESSAGE_TOO_BIG,
                            "reason": f"message over {self.ws_max_bytes} bytes"})
                return {"type": "websocket.disconnect", "code": CloseCode.MESSAGE_TOO_BIG}
            return message

        async def guarded_send(message: Message) -> None:
            if not closed:  # after our close, the route's own close or late sends have no socket to go to
                await send(message)

        try:
            await self.app(scope, bounded_receive, guarded_send)
        finally:
            self.admission.close_connection()


async def _refuse(receive: Receive, send: Send, reason: str) -> None:
    """Accept the upgrade only to close it with a reason (a refused handshake cannot carry one)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": CloseCode.TRY_AGAIN_LATER, "reason": reason})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            return int(value) if value.isdigit() and len(value) <= 18 else None
    return None


def _ws_size(message: Message, limit: int) -> int:
    data = message.get("bytes")
    if data is not None:
        return len(data)
    text = message.get("text") or ""
    if len(text) * 4 <= limit:  # UTF-8 needs at most 4 bytes a character: no need to encode to know
        return len(text)
    return len(text.encode("utf-8", errors="surrogatepass"))
