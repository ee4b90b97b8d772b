"""``WS /api/live`` and ``WS /api/live/{call_sid}``: snapshot, then live events; ``?after=N`` resumes.

Scripts authenticate with the bearer token; the dashboard with its session cookie, from its own origin only.
Each event goes out with ``sent_at`` (ms since the epoch when this server wrote it to this socket). One task sends
events, one watches for the client going away, both owned by a TaskGroup: a subscriber that never
receives an event still gets cleaned up when it disconnects. Overflow closes with 1013 (try again later) and a reason
naming the ``after`` value to resume from.
"""

from __future__ import annotations

import asyncio
import time

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect

from switchboard.close_codes import CloseCode
from switchboard.live import Overflow, Subscription
from switchboard.services import Services
from switchboard.web.auth import identify, may_subscribe


async def live(ws: WebSocket) -> None:
    services: Services = ws.state.services
    caller = await identify(ws, services)
    if caller is None or not may_subscribe(ws, caller, services.settings.public_url):
        await ws.close(CloseCode.POLICY_VIOLATION, "missing or invalid token or session")
        return
    after_raw = ws.query_params.get("after", "0")
    if not (after_raw.isascii() and after_raw.isdigit() and len(after_raw) <= 18):  # '²'.isdigit(), int('²') fails
        await ws.close(CloseCode.POLICY_VIOLATION, "after must be a non-negative decimal integer")
        return
    await ws.accept()
    call_sid = ws.path_params.get("call_sid")
    sub = services.hub.subscribe(call_sid, int(after_raw))
    try:
        async with asyncio.TaskGroup() as group:
            sender = group.create_task(_send(ws, sub))
            group.create_task(_watch(ws, sender))
    except* WebSocketDisconnect:
        pass
    finally:
        services.hub.unsubscribe(sub)


async def _send(ws: WebSocket, sub: Subscription) -> None:
    try:
        async for event in sub:
            # sent_at: when this copy left the server (ms since the epoch), so a client can time the way to it (the
            # dashboard's benchmark does). Per subscriber: the hub's event is shared, so it is copied, not changed.
            await ws.send_text(orjson.dumps({**event, "sent_at": time.time_ns() // 1_000_000}).decode())
    except Overflow as exc:
        await ws.close(CloseCode.TRY_AGAIN_LATER, f"overflow; resume with after={exc.resume_after}")
        return
    await ws.close(CloseCode.GOING_AWAY, "server going away")


async def _watch(ws: WebSocket, sender: asyncio.Task[None]) -> None:
    """Clients send nothing we need; a disconnect (or the sender finishing) ends the subscription."""
    while not sender.done():
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            sender.cancel()
            return
