"""``WS /api/twilio/media-stream``: Twilio Media Streams into a CallSession.

The handler only moves frames: the sans-I/O :class:`MediaStream` parses, the :class:`CallSession` does the work. A
protocol violation closes the socket with its code and reason; whatever audio and transcript arrived before it is
kept, because the session finalises on every way out.

Before any of that: the handshake signature (required whenever a real Twilio auth token is configured), a valid
``start`` within ``SWITCHBOARD_WS_START_TIMEOUT_S``, a well-formed CallSid with its stream token, and a free call slot
(:class:`~switchboard.admission.Admission`); each refusal closes with a reason.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping

from starlette.websockets import WebSocket, WebSocketDisconnect

from audio.errors import TimestampJumpError
from switchboard.call.agent import StreamGone
from switchboard.call.agent_setup import is_agent_stream, seat_agent
from switchboard.call.errors import CallRefused
from switchboard.call.session import CallSession
from switchboard.close_codes import CloseCode
from switchboard.services import Services
from switchboard.twilio.errors import ProtocolViolation
from switchboard.twilio.media_bounds import MediaTimeGuard
from switchboard.twilio.media_stream import Dtmf, Mark, Media, MediaStream, Start, Stop
from switchboard.twilio.signature import validate_websocket, websocket_url
from switchboard.twilio_ids import is_call_sid

log = logging.getLogger(__name__)


STREAM_PATH = "/api/twilio/media-stream"


async def media_stream(ws: WebSocket) -> None:
    services: Services = ws.state.services
    parser = MediaStream()
    try:
        start = await _handshake(ws, services, parser)
        if start is None:  # the peer left before its start
            return
        session = CallSession(start, services.session_deps(), parser_stats=lambda: parser.stats().as_dict(),
                              local=services.registry.next_stream(start.call_sid))
        if is_agent_stream(start) and services.agent is not None:
            session.agent = await seat_agent(
                services.agent, session, start, parser, lambda text: _send(ws, text),
                lambda: ws.close(CloseCode.NORMAL), f"{services.settings.public_base}/api/calls/{start.call_sid}",
                fork=lambda: _fork(services, start.call_sid))
        async with services.registry.hold(start.call_sid, session), session:
            guard = MediaTimeGuard(services.settings.media_time_limits, asyncio.get_running_loop().time())
            await _pump(ws, parser, session, guard)
    except CallRefused as refused:
        log.warning("media stream refused: %s", refused.reason)
        await ws.close(refused.code, refused.reason)


async def _handshake(ws: WebSocket, services: Services, parser: MediaStream) -> Start | None:
    """Signature, ``start`` within the deadline, a well-formed CallSid, a valid unspent token, capacity; any failure
    raises :class:`CallRefused` with the close code and reason."""
    settings = services.settings
    signature = ws.headers.get("x-twilio-signature")
    if signature is not None or settings.ws_signature_required:
        url = websocket_url(settings.public_base, STREAM_PATH)  # the URL we gave Twilio, not the internal one
        if not any(validate_websocket(token, url, signature) for token in settings.twilio_auth_tokens):
            raise CallRefused("invalid X-Twilio-Signature")
    await ws.accept()
    try:
        async with asyncio.timeout(settings.ws_start_timeout_s):
            start = await _wait_start(ws, parser)
    except ProtocolViolation as exc:
        raise CallRefused(exc.close_reason, CloseCode(exc.close_code)) from exc
    except TimeoutError as exc:
        raise CallRefused(f"no valid start within {settings.ws_start_timeout_s:g} s") from exc
    except WebSocketDisconnect:
        return None
    if start is None:
        return None
    if not is_call_sid(start.call_sid):
        log.warning("malformed callSid (%d chars)", len(start.call_sid))
        raise CallRefused("malformed callSid")
    refusal = await services.stream_tokens().consume(start.call_sid, start.custom_parameters.get("token"), time.time())
    if refusal is not None:
        log.warning("media stream for %s: %s", start.call_sid, refusal)
        raise CallRefused(refusal)
    refusal = services.admission.start_stream(start.call_sid, len(services.registry), time.monotonic())
    if refusal is not None:
        log.warning("media stream for %s: %s", start.call_sid, refusal)
        raise CallRefused(refusal, CloseCode.TRY_AGAIN_LATER)
    return start


async def _wait_start(ws: WebSocket, parser: MediaStream) -> Start | None:
    """Read until ``start``: everything before it is ``connected`` (or a violation)."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return None
        for event in parser.receive(_frame(message)):
            if isinstance(event, Start):
                return event


async def _pump(ws: WebSocket, parser: MediaStream, session: CallSession, guard: MediaTimeGuard) -> None:
    loop = asyncio.get_running_loop()
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            session.stop(f"socket closed without stop (code {message.get('code', 1005)})")
            return
        try:
            events = parser.receive(_frame(message))
            for event in events:
                if isinstance(event, Media):
                    wait_s = guard.admit(event.track, event.timestamp_ms, loop.time())
                    if wait_s > 0:  # media ahead of the pace rule: stop reading, TCP pushes back on the sender
                        await asyncio.sleep(wait_s)
                    try:
                        session.on_media(event)
                    except TimestampJumpError as exc:  # the audio layer's own last-resort bound
                        raise ProtocolViolation(str(exc), CloseCode.POLICY_VIOLATION) from exc
                elif isinstance(event, Mark | Dtmf):
                    session.on_control(event)
        except ProtocolViolation as exc:
            session.stop(f"protocol violation: {exc.reason}")
            await ws.close(exc.close_code, exc.close_reason)
            return
        for event in events:
            if isinstance(event, Stop):
                session.stop("stop")
                await ws.close(CloseCode.NORMAL)
                return


def _fork(services: Services, call_sid: str) -> tuple[str, dict[str, str]]:
    """Where a transfer forks the operator leg: this route, with a fresh stream token for the call."""
    url = websocket_url(services.settings.public_base, STREAM_PATH)
    return url, {"token": services.stream_tokens().mint(call_sid, time.time())}


async def _send(ws: WebSocket, text: str) -> None:
    """One frame to Twilio (agent mode); a socket that is gone is :class:`StreamGone` for the agent."""
    try:
        await ws.send_text(text)
    except (WebSocketDisconnect, RuntimeError, OSError) as exc:
        raise StreamGone(repr(exc)) from exc


def _frame(message: Mapping[str, object]) -> str | bytes:
    text = message.get("text")
    if isinstance(text, str):
        return text
    data = message.get("bytes")
    return data if isinstance(data, bytes) else b""
