"""An ElevenLabs text-to-speech server on loopback: ``stream-input`` (websocket) and ``/stream`` (HTTP), strict
validation, real speech, injectable faults.

Speaks https://elevenlabs.io/docs/api-reference/text-to-speech/v-1-text-to-speech-voice-id-stream-input.
The websocket checks the key (``xi-api-key`` header or in the first
message), requires ``{"text": " "}`` first and ``output_format=ulaw_8000``, buffers text by the
``chunk_length_schedule`` of the first message (cut at a word boundary), generates on ``flush`` and at end of input
(``{"text": ""}`` → the rest, ``isFinal``, close 1000), and closes a socket that gets no text for
``inactivity_timeout`` seconds (query parameter, default 20, at most 180; ``inactivity_s`` overrides it for tests).
Audio is espeak-ng speech (the project's offline voice) as μ-law 8 kHz, sent in messages of 1000–3000 bytes (odd
sizes included) with ``alignment`` and ``normalizedAlignment`` placing each character in its message.

Faults (:class:`Fault`) apply to the next N connections (``inject(fault, connections=None)``: all).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import parse_qs, parse_qsl, urlsplit

import orjson
import pybase64
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from switchboard.tts.espeak import EspeakEngine
from switchboard.tts.offline import synthesize_ulaw
from tests.emulators.http_loopback import LoopbackHttpServer
from tests.emulators.http_loopback import Response as HttpResponse

WS_PATH = "/v1/text-to-speech/{voice}/stream-input"
DEFAULT_SCHEDULE = (120, 160, 250, 290)


class FaultKind(enum.Enum):
    REFUSE_HTTP = "refuse_http"  # 401 at the websocket handshake
    REFUSE_MESSAGE = "refuse_message"  # accept, then an "invalid API key" error message and close 1008
    DROP = "drop"  # TCP abort (no close frame) after `after_messages` audio messages
    CLOSE = "close"  # close with `code` after `after_messages` audio messages
    STALL = "stall"  # after `after_messages` audio messages, nothing for `delay_s` (0: until the client leaves)
    GARBAGE = "garbage"  # a non-JSON text frame after `after_messages` audio messages
    ERROR_MESSAGE = "error_message"  # an error JSON message (and close 1011) after `after_messages` audio messages
    SLOW_FIRST_BYTE = "slow_first_byte"  # the connection's first audio `delay_s` late
    NO_ALIGNMENT = "no_alignment"  # audio with both alignments null (allowed by the API schema)
    INACTIVITY = "inactivity"  # this connection's inactivity timeout is `delay_s` (closes 1008 when idle that long)


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    after_messages: int = 0
    delay_s: float = 0.0
    code: int = 1011


@dataclass
class Session:
    """What one websocket connection did."""

    path: str
    query: dict[str, str]
    faults: tuple[Fault, ...]
    messages: list[dict[str, Any]] = field(default_factory=list)
    generations: list[str] = field(default_factory=list)
    timings: list[tuple[float, float]] = field(default_factory=list)
    """Per generation: (asked for, its first audio message sent), ``time.monotonic`` seconds."""
    audio_messages: int = 0
    keepalives: int = 0
    close_reason: str | None = None

    def has(self, kind: FaultKind) -> Fault | None:
        return next((f for f in self.faults if f.kind is kind), None)


class _Reject(Exception):
    def __init__(self, reason: str, code: int = 1008) -> None:
        super().__init__(reason)
        self.code = code


class ElevenLabsEmulator:
    """``async with ElevenLabsEmulator() as el:`` then ``ws_url`` / ``base_url`` for the client and the SDK."""

    def __init__(self, api_key: str = "el-test-key", *, first_audio_delay_s: float = 0.0,
                 inactivity_s: float | None = None, seed: int = 7) -> None:  # fmt: skip
        self.api_key = api_key
        self.first_audio_delay_s = first_audio_delay_s
        self.inactivity_s = inactivity_s
        self.sessions: list[Session] = []
        self.engine = EspeakEngine()
        self.http = _HttpEmulator(self)
        self._faults: list[list[Any]] = []
        self._random = random.Random(seed)
        self._server: Server | None = None
        self._pending: dict[int, Session] = {}
        self.port = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return self.http.base_url

    async def __aenter__(self) -> ElevenLabsEmulator:
        self._server = await serve(self._handle, "127.0.0.1", 0, process_request=self._process_request)
        self.port = self._server.sockets[0].getsockname()[1]
        await self.http.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.__aexit__()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def inject(self, fault: Fault, connections: int | None = 1) -> None:
        self._faults.append([fault, connections])

    def clear_faults(self) -> None:
        self._faults.clear()

    def speech(self, text: str) -> bytes:
        """The μ-law audio this emulator speaks for ``text`` (blocking, ~20 ms)."""
        return synthesize_ulaw(self.engine, text)

    # -- websocket ---------------------------------------------------------------------------------------------

    def _take_faults(self) -> tuple[Fault, ...]:
        taken = [entry[0] for entry in self._faults]
        for entry in self._faults:
            entry[1] = None if entry[1] is None else entry[1] - 1
        self._faults = [e for e in self._faults if e[1] is None or e[1] > 0]
        return tuple(taken)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        session = Session(url.path, {k: v[0] for k, v in parse_qs(url.query).items()}, self._take_faults())
        self.sessions.append(session)
        parts = url.path.split("/")
        if len(parts) != 5 or parts[:3] != ["", "v1", "text-to-speech"] or parts[4] != "stream-input":
            return connection.respond(404, "Not Found\n")
        key = request.headers.get("xi-api-key")
        if session.has(FaultKind.REFUSE_HTTP) or (key is not None and key != self.api_key):
            return connection.respond(401, '{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}')
        self._pending[id(connection)] = session
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        session = self._pending.pop(id(ws))
        try:
            await self._session(ws, session, header_key=ws.request is not None
                                and ws.request.headers.get("xi-api-key") == self.api_key)
        except* _Reject as group:
            exc = group.exceptions[0]
            assert isinstance(exc, _Reject)
            session.close_reason = str(exc)
            with contextlib.suppress(ConnectionClosed):
                await ws.send(orjson.dumps({"message": str(exc), "error": str(exc)}).decode())
                await ws.close(exc.code, str(exc)[:120])
        except* ConnectionClosed:
            pass  # the client left, or a fault dropped the connection

    async def _session(self, ws: ServerConnection, session: Session, header_key: bool) -> None:
        if session.query.get("output_format") != "ulaw_8000":
            raise _Reject(f"unsupported output_format {session.query.get('output_format')!r} in this emulator")
        idle = session.has(FaultKind.INACTIVITY)
        timeout = (idle.delay_s if idle is not None else self.inactivity_s
                   or min(180.0, float(session.query.get("inactivity_timeout", "20"))))
        first = await self._receive(ws, session, timeout)
        if first.get("text") != " ":
            raise _Reject('the first message must have "text": " "')
        if session.has(FaultKind.REFUSE_MESSAGE) or not (header_key or first.get("xi-api-key") == self.api_key):
            raise _Reject("Invalid API key")
        schedule = tuple(first.get("generation_config", {}).get("chunk_length_schedule", DEFAULT_SCHEDULE))
        work: asyncio.Queue[str | None] = asyncio.Queue()
        async with asyncio.TaskGroup() as group:
            speaker = group.create_task(self._speak(ws, session, work))
            buffer, generated = "", 0
            while True:
                try:
                    message = await self._receive(ws, session, timeout)
                except TimeoutError:
                    session.close_reason = "inactivity"
                    speaker.cancel()
                    await ws.close(1008, f"Have not received a new text input within the timeout of {timeout} s")
                    return
                text = message.get("text")
                if not isinstance(text, str):
                    raise _Reject('"text" must be a string')
                if text == "":
                    work.put_nowait(buffer)
                    work.put_nowait(None)
                    break
                if text == " " and not message.get("flush"):
                    session.keepalives += 1
                buffer += text
                threshold = schedule[min(generated, len(schedule) - 1)]
                if message.get("flush") or len(buffer) >= threshold:
                    cut = len(buffer) if message.get("flush") else buffer.rfind(" ") + 1
                    if buffer[:cut].strip():
                        work.put_nowait(buffer[:cut])
                        generated += 1
                    buffer = buffer[cut:]
            await speaker

    async def _receive(self, ws: ServerConnection, session: Session, timeout_s: float) -> dict[str, Any]:
        async with asyncio.timeout(timeout_s):
            frame = await ws.recv()
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            raise _Reject("message is not JSON") from exc
        if not isinstance(message, dict):
            raise _Reject("message is not a JSON object")
        session.messages.append(message)
        return message

    async def _speak(self, ws: ServerConnection, session: Session, work: asyncio.Queue[str | None]) -> None:
        while (text := await work.get()) is not None:
            session.generations.append(text)
            asked = time.monotonic()
            audio = await asyncio.to_thread(self.speech, text) if text.strip() else b""
            # First audio first_audio_delay_s after the generation was asked for, synthesis included.
            await asyncio.sleep(max(0.0, self.first_audio_delay_s - (time.monotonic() - asked)))
            for i, message in enumerate(self._messages(text, audio, session.has(FaultKind.NO_ALIGNMENT) is None)):
                await self._before_audio(ws, session)
                await ws.send(message)
                session.audio_messages += 1
                if i == 0:
                    session.timings.append((asked, time.monotonic()))
        await ws.send(orjson.dumps({"isFinal": True}).decode())
        await ws.close(1000)

    def _messages(self, text: str, audio: bytes, aligned: bool) -> list[str]:
        """Cut ``audio`` into messages; each character goes with the message its (evenly spread) start is in."""
        out, at, step = [], 0, (len(audio) / len(text)) if text else 0.0
        starts = [int(i * step) for i in range(len(text))]
        while at < len(audio):
            size = min(len(audio) - at, self._random.randint(1000, 3000))
            idx = [i for i, s in enumerate(starts) if at <= s < at + size or (at + size == len(audio) and s >= at)]
            alignment = {"chars": [text[i] for i in idx], "charStartTimesMs": [(starts[i] - at) // 8 for i in idx],
                         "charDurationsMs": [max(1, int(step) // 8) for _ in idx]}
            body: dict[str, Any] = {"audio": pybase64.b64encode(audio[at:at + size]).decode(),
                                    "alignment": alignment if aligned else None,
                                    "normalizedAlignment": alignment if aligned else None}
            out.append(orjson.dumps(body).decode())
            at += size
        return out

    async def _before_audio(self, ws: ServerConnection, session: Session) -> None:
        n = session.audio_messages
        slow = session.has(FaultKind.SLOW_FIRST_BYTE)
        if slow is not None and n == 0:
            await asyncio.sleep(slow.delay_s)
        for fault in session.faults:
            if fault.after_messages != n:
                continue
            if fault.kind is FaultKind.DROP:
                ws.transport.abort()
                raise ConnectionClosed(None, None)
            if fault.kind is FaultKind.CLOSE:
                await ws.close(fault.code, "emulated failure")
                raise ConnectionClosed(None, None)
            if fault.kind is FaultKind.STALL:
                await (asyncio.sleep(fault.delay_s) if fault.delay_s else ws.wait_closed())
            if fault.kind is FaultKind.GARBAGE:
                await ws.send("<html>502 Bad Gateway</html>")
            if fault.kind is FaultKind.ERROR_MESSAGE:
                await ws.send(orjson.dumps({"message": "Internal server error", "error": "internal"}).decode())
                await ws.close(1011, "internal error")
                raise ConnectionClosed(None, None)


@dataclass
class HttpRecord:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]
    fault: str | None = None
    status: int | None = None


@dataclass(frozen=True)
class HttpFault:
    kind: str  # "status", "slow" or "reset"
    status: int = 500
    delay_s: float = 0.0


class _HttpEmulator(LoopbackHttpServer[HttpFault, HttpRecord]):
    """``POST /v1/text-to-speech/{voice}/stream?output_format=ulaw_8000``: the whole audio in one response."""

    reasons: ClassVar[Mapping[int, str]] = {200: "OK", 401: "Unauthorized", 404: "Not Found",
                                            422: "Unprocessable Entity", 429: "Too Many Requests",
                                            500: "Internal Server Error"}

    def __init__(self, owner: ElevenLabsEmulator) -> None:
        super().__init__("127.0.0.1", 0)
        self.owner = owner

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _record(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> HttpRecord:
        url = urlsplit(target)
        try:
            body = orjson.loads(raw) if raw else {}
        except orjson.JSONDecodeError:
            body = {"_invalid": raw[:100].decode("latin-1")}
        return HttpRecord(url.path, dict(parse_qsl(url.query)), headers, body if isinstance(body, dict) else {})

    def _headers(self, response: HttpResponse) -> list[str]:
        kind = "audio/basic" if response.status == 200 else "application/json"
        return [f"content-type: {kind}", f"content-length: {len(response.body)}", f"request-id: {next(self._ids)}"]

    def _respond(self, request: HttpRecord, fault: HttpFault | None) -> HttpResponse:
        parts = request.path.split("/")
        if len(parts) != 5 or parts[:3] != ["", "v1", "text-to-speech"] or parts[4] != "stream":
            return HttpResponse(404, b'{"detail":"Not Found"}')
        if request.headers.get("xi-api-key") != self.owner.api_key:
            return HttpResponse(401, b'{"detail":{"status":"invalid_api_key","message":"Invalid API key"}}')
        if fault is not None and fault.kind == "status":
            return HttpResponse(fault.status, b'{"detail":{"status":"system_busy","message":"emulated"}}')
        text = request.body.get("text")
        if not isinstance(text, str) or not text.strip():
            return HttpResponse(422, b'{"detail":[{"loc":["body","text"],"msg":"field required","type":"missing"}]}')
        if request.query.get("output_format") != "ulaw_8000":
            return HttpResponse(422, b'{"detail":[{"loc":["query","output_format"],"msg":"unsupported here"}]}')
        return HttpResponse(200, self.owner.speech(text))


__all__ = ["ElevenLabsEmulator", "Fault", "FaultKind", "HttpFault", "Session"]
