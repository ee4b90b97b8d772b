"""The media websocket route's pump without a server: a scripted socket, the real parser, a recording session."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import orjson
import pytest

from switchboard.close_codes import CloseCode
from switchboard.routes.media_ws import _pump, _wait_start
from switchboard.twilio.media_bounds import MediaTimeGuard, MediaTimeLimits
from switchboard.twilio.media_stream import Media, MediaStream

CALL = (Path(__file__).parents[1] / "twilio" / "frames" / "call.jsonl").read_text().splitlines()
START, MEDIA, STOP = CALL[:2], [line for line in CALL if '"media"' in line], CALL[-1]


class ScriptedSocket:
    """Hands out the scripted frames (text, or bytes as a binary frame), then a disconnect with ``code``; records
    how it was closed."""

    def __init__(self, frames: list[str | bytes], code: int = 1006) -> None:
        self.inbox: deque[dict[str, Any]] = deque(
            {"type": "websocket.receive", "bytes" if isinstance(f, bytes) else "text": f} for f in frames)
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


async def pump(frames: list[str | bytes], code: int = 1006) -> tuple[ScriptedSocket, SessionLog]:
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


SID = orjson.loads(START[1])["streamSid"]


def media(track: str = "inbound", payload: str = "/w==", stream_sid: str = SID) -> str:
    return orjson.dumps({"event": "media", "sequenceNumber": "999", "streamSid": stream_sid,
                         "media": {"track": track, "chunk": "99", "timestamp": "2000", "payload": payload}}).decode()


BAD_INPUTS: list[tuple[str, str | bytes, CloseCode, str]] = [
    ("malformed json", '{"event": "media", ', CloseCode.INVALID_DATA, "json"),
    ("unknown track", media(track="sideways"), CloseCode.INVALID_DATA, "track"),
    ("bad base64", media(payload="%%%not-base64%%%"), CloseCode.INVALID_DATA, "base64"),
    ("wrong streamSid", media(stream_sid="MZ" + "f" * 32), CloseCode.POLICY_VIOLATION, "streamsid"),
    ("oversized frame", media(payload="/" * 80_000), CloseCode.MESSAGE_TOO_BIG, ""),
    ("binary frame", b"\x00\x01", CloseCode.UNSUPPORTED_DATA, "binary"),
    ("duplicate start", START[1], CloseCode.POLICY_VIOLATION, "start"),
]


@pytest.mark.parametrize(("name", "bad", "code", "word"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
async def test_bad_frame_closes_with_its_code_and_reason_and_keeps_the_media_before_it(
        name: str, bad: str | bytes, code: CloseCode, word: str) -> None:
    ws, session = await pump([*MEDIA, bad])
    assert ws.closed is not None and ws.closed[0] == code and word in ws.closed[1].lower(), ws.closed
    assert len(session.media) == len(MEDIA) and session.stops[0].startswith("protocol violation")
