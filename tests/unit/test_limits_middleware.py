"""The Limits middleware on its own (no uvicorn limits behind it): the app's own defences."""

from __future__ import annotations

import asyncio
from typing import Any

from switchboard.admission import Admission
from switchboard.limits import Limits

Message = dict[str, Any]


class Peer:
    """Drives an ASGI app as a server would: scripted incoming messages, recorded outgoing ones."""

    def __init__(self, incoming: list[Message]) -> None:
        self.incoming, self.sent = list(incoming), list[Message]()
        self.received = 0

    async def receive(self) -> Message:
        self.received += 1
        if not self.incoming:
            await asyncio.Event().wait()  # a client that never sends more
        return self.incoming.pop(0)

    async def send(self, message: Message) -> None:
        self.sent.append(message)


async def echo_body(scope: Any, receive: Any, send: Any) -> None:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def limits(app: Any, admission: Admission | None = None) -> Limits:
    return Limits(app, max_body_bytes=1024, ws_max_bytes=1024, admission=admission or Admission(10, 2))


async def test_a_streamed_body_is_refused_at_the_chunk_that_passes_the_limit() -> None:
    chunks = [{"type": "http.request", "body": b"a" * 400, "more_body": True} for _ in range(10)]
    peer = Peer(chunks)
    await limits(echo_body)({"type": "http", "headers": []}, peer.receive, peer.send)
    assert peer.sent[0]["status"] == 413 and peer.received == 3  # 1200 bytes read, 2800 never were


async def test_a_declared_length_over_the_limit_is_refused_unread() -> None:
    peer = Peer([{"type": "http.request", "body": b"a", "more_body": True}])
    await limits(echo_body)({"type": "http", "headers": [(b"content-length", b"99999")]}, peer.receive, peer.send)
    assert peer.sent[0]["status"] == 413 and peer.received == 0


async def test_a_body_within_the_limit_passes() -> None:
    peer = Peer([{"type": "http.request", "body": b"a" * 1024}])
    await limits(echo_body)({"type": "http", "headers": []}, peer.receive, peer.send)
    assert peer.sent[0]["status"] == 200 and peer.sent[1]["body"] == b"a" * 1024


async def ws_app(scope: Any, receive: Any, send: Any) -> None:
    assert (await receive())["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while (await receive())["type"] != "websocket.disconnect":
        await send({"type": "websocket.send", "text": "ok"})
    await send({"type": "websocket.close", "code": 1000})  # the route's own close after a disconnect: dropped


async def test_an_oversized_websocket_message_closes_1009_and_the_route_sees_a_disconnect() -> None:
    peer = Peer([{"type": "websocket.connect"}, {"type": "websocket.receive", "text": "small"},
                 {"type": "websocket.receive", "text": "é" * 600}])  # 600 characters, 1200 bytes
    admission = Admission(10, 2)
    await limits(ws_app, admission)({"type": "websocket"}, peer.receive, peer.send)
    assert [m["type"] for m in peer.sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    assert peer.sent[-1]["code"] == 1009 and "1024 bytes" in peer.sent[-1]["reason"]
    assert admission.stats().connections == 0


async def test_websockets_over_the_cap_are_closed_with_a_reason() -> None:
    admission = Admission(10, 1)
    assert admission.open_connection()
    peer = Peer([{"type": "websocket.connect"}])
    await limits(ws_app, admission)({"type": "websocket"}, peer.receive, peer.send)
    assert peer.sent == [{"type": "websocket.accept"},
                         {"type": "websocket.close", "code": 1013, "reason": "too many connections (1)"}]
