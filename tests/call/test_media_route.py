"""The media websocket route's pump without a server: a scripted socket, the real parser, a recording session."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import orjson

from switchboard.close_codes import CloseCode
from switchboard.routes.media_ws import _pump, _wait_start
from switchboard.twilio.media_bounds import MediaTimeGuard, MediaTimeLimits
from switchboard.twilio.media_stream import Media, MediaStream

CALL = (Path(__file__).parents[1] / "twilio" / "frames" / "call.jsonl").read_text().splitlines()
START, MEDIA, STOP = CALL[:2], [line for line in CALL if '"media"' in line], CALL[-1]


class ScriptedSocket:
    """Hands out the scripted frames, then a disconnect with ``code``; records how it was closed."""

    def __init__(self, frames: list[str], code: int = 1006) -> None:
        self.inbox: deque[dict[str, Any]] = deque({"type": "websocket.receive", "text": f} for f in frames)
        self.inbox.append({"type": "websocket.disconnect", "code": code})
        self.closed: tuple[int, str] | None = None

    async def receive(self) -> dict[str, Any]:
        return self.inbox.popleft()

    async def close(self, code: int = 1000, reason: str = "") -> None:
        self.closed = (code, reason)


class SessionLog:
    def __init__(self) -> None:
        self.media: list[Media] = []
        self.stops: list[str] = []

    def on_media(self, media: Media) -> None:
        self.media.append(media)

    def stop(self, reason: str) -> None:
        self.stops.append(reason)


async def pump(frames: list[str], code: int = 1006) -> tuple[ScriptedSocket, SessionLog]:
    ws, session, parser = ScriptedSocket([*START, *frames], code), SessionLog(), MediaStream()
    start = await _wait_start(ws, parser)  # type: ignore[arg-type]
    assert start is not None and start.call_sid.startswith("CA")
    await _pump(ws, parser, session, MediaTimeGuard(MediaTimeLimits(), 0.0))  # type: ignore[arg-type]
    return ws, session


async def test_stop_stops_the_session_and_closes_normally() -> None:
    ws, session = await pump([*MEDIA, STOP])
    assert len(session.media) == len(MEDIA) and session.stops == ["stop"] and ws.closed == (1000, "")


async def test_a_hang_up_without_stop_stops_the_session_with_the_close_code() -> None:
    ws, session = await pump(MEDIA, code=1006)
    assert len(session.media) == len(MEDIA) and ws.closed is None
    assert session.stops == ["socket closed without stop (code 1006)"]


async def test_a_protocol_violation_stops_the_session_and_closes_with_its_code() -> None:
    ws, session = await pump([*MEDIA[:2], orjson.dumps({"event": "media", "media": 7}).decode()])
    assert len(session.media) == 2 and session.stops[0].startswith("protocol violation")
    assert ws.closed is not None and ws.closed[0] == CloseCode.INVALID_DATA
