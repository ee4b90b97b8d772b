"""A WisprFlow websocket server on loopback: the documented protocol, strict validation, injectable faults.

Speaks https://api-docs.wisprflow.ai/websocket_api: ``/api/v1/dash/ws`` (``api_key``) and ``/api/v1/dash/client_ws``
(``client_key``), key with or without ``Bearer ``; ``auth`` first; ``append`` checked (position, volumes,
base64, equal ``packet_duration``, sample count, a RIFF header stripped); ``commit`` checked against the packets
received, answered with ``info/commit_received`` and then the final, whose words the recogniser takes from all
the audio of the session. Anything invalid gets ``{"status":"error","error":…}`` and a close.

Faults (:class:`Fault`) apply to the next N connections or to all (``inject(fault, connections=None)``);
where the real server's behaviour is unknown (bad key: HTTP 401 or an error message and close 1008) both are
offered. ``ack="none"`` never acknowledges ``auth`` (a server that hangs in the handshake).
"""

from __future__ import annotations

import asyncio
import binascii
import enum
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

import numpy as np
import orjson
import pybase64
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from tests.emulators.recognizer import Recognizer, ScriptedRecognizer

RATE = 16_000
PATHS = {"/api/v1/dash/ws", "/api/v1/dash/client_ws"}


class FaultKind(enum.Enum):
    REJECT_HTTP = "reject_http"  # refuse the upgrade with 401 whatever the key
    REJECT_MESSAGE = "reject_message"  # accept, answer auth with an "Invalid API key" error, close 1008
    CLOSE_MID_STREAM = "close_mid_stream"  # close(code) once `after_packets` packets have arrived
    ABORT = "abort"  # drop TCP, no close frame: after `after_packets` packets, else `delay_s` after accept (0: at once)
    NO_FINAL = "no_final"  # commit_received, then nothing
    SLOW_FINAL = "slow_final"  # the final `delay_s` late
    MALFORMED = "malformed"  # a non-JSON text frame where the final should be
    FINAL_UNDER_BODY = "final_under_body"  # `final` only under `body` (a tolerance check, not a failure)
    ERROR_WITHOUT_STATUS = "error_without_status"  # {"error": …} with no status, instead of the final
    PARTIALS_ONLY = "partials_only"  # a partial after every append, never a final
    IDLE_TIMEOUT = "idle_timeout"  # close 1001 after `delay_s` without a client message


@dataclass(frozen=True, slots=True)
class Fault:
    kind: FaultKind
    after_packets: int = 0
    delay_s: float = 0.0
    code: int = 1011


@dataclass(slots=True)
class SessionRecord:
    """What one connection did, for tests to inspect."""

    path: str
    faults: tuple[Fault, ...]
    auth: dict[str, Any] | None = None
    packet_duration: float | None = None
    packets: int = 0
    appends: int = 0
    riff_headers: int = 0
    total_packets: int | None = None
    final_text: str | None = None
    errors: list[str] = field(default_factory=list)
    close_code: int | None = None
    audio: list[np.ndarray] = field(default_factory=list, repr=False)

    def has(self, kind: FaultKind) -> Fault | None:
        return next((f for f in self.faults if f.kind is kind), None)


@dataclass(frozen=True, slots=True)
class EmulatorStats:
    connections: int
    rejected_http: int
    authenticated: int
    open_connections: int
    max_open: int
    packets: int
    commits: int
    finals: int
    partials: int
    errors_sent: int
    faults_applied: int


class _Reject(Exception):
    """An invalid client message: answered with an error message and a close."""

    def __init__(self, message: str, code: int = 1008) -> None:
        super().__init__(message)
        self.code = code


class _Ended(Exception):
    """The emulator ended the connection on purpose (a fault or an idle timeout)."""


def _strip_riff(data: bytes) -> tuple[bytes, bool]:
    """PCM from a packet that may carry a RIFF/WAVE header (some public clients send one per packet)."""
    if not data.startswith(b"RIFF"):
        return data, False
    at = data.find(b"data", 12)
    if at < 0 or len(data) < at + 8:
        raise _Reject("RIFF packet without a data chunk")
    return data[at + 8 :], True


def _packets(message: dict[str, Any], record: SessionRecord) -> list[np.ndarray]:
    """Validate one ``append`` (full or legacy short form) and return its packets as int16 arrays."""
    if message.get("position") != record.packets:
        raise _Reject(f"position {message.get('position')!r} != packets received {record.packets}")
    encoded: list[Any]
    volumes: Any
    duration: Any
    if "audio" in message:  # legacy short form: one packet, no duration checks possible
        encoded, volumes, duration = [message["audio"]], [0.0], None
    else:
        body = message.get("audio_packets")
        if not isinstance(body, dict) or not isinstance(body.get("packets"), list) or not body["packets"]:
            raise _Reject("append without audio_packets.packets")
        encoded, volumes, duration = body["packets"], body.get("volumes"), body.get("packet_duration")
        if body.get("byte_encoding", "base64") != "base64":
            raise _Reject(f"unsupported byte_encoding {body.get('byte_encoding')!r}")
        if not isinstance(volumes, list) or len(volumes) != len(encoded):
            raise _Reject("volumes must have one entry per packet")
        if not all(isinstance(v, int | float) and 0 <= v <= 1 for v in volumes):
            raise _Reject("volumes must be in [0, 1]")
        if not isinstance(duration, int | float) or duration <= 0:
            raise _Reject("packet_duration must be a positive number")
        if record.packet_duration is not None and duration != record.packet_duration:
            raise _Reject(f"packet_duration changed from {record.packet_duration} to {duration}")
        record.packet_duration = float(duration)
    out = []
    for item in encoded:
        try:
            raw = pybase64.b64decode(item, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise _Reject(f"packet is not base64: {exc}") from exc
        pcm, had_riff = _strip_riff(raw)
        record.riff_headers += had_riff
        if len(pcm) % 2:
            raise _Reject("odd byte count: not int16 PCM")
        if duration is not None and len(pcm) // 2 != round(duration * RATE):
            raise _Reject(f"packet has {len(pcm) // 2} samples, packet_duration says {round(duration * RATE)}")
        out.append(np.frombuffer(pcm, dtype="<i2").astype(np.int16))
    return out


def _frame(message: dict[str, Any]) -> str:
    return orjson.dumps(message).decode()


def _text(text: str, final: bool, under_body: bool = False) -> str:
    body: dict[str, Any] = {"text": text, "detected_language": "en"}
    if under_body:
        body["final"] = final
        return _frame({"status": "text", "body": body})
    return _frame({"status": "text", "final": final, "body": body})


class WisprFlowEmulator:
    """Async context manager; ``url`` is the API-key endpoint, ``client_url`` the client-token one."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str = "test-key",
                 recognizer: Recognizer | None = None, *, bad_key: Literal["http", "message"] = "http",
                 ack: Literal["status", "session_started", "both", "none"] = "status", partial_every: int = 0,
                 final_delay_s: float = 0.0, close_after_final_s: float = 5.0, auth_wait_s: float = 10.0,
                 auth_delay_s: float = 0.0) -> None:
        self.host, self.port, self.api_key = host, port, api_key
        self.recognizer: Recognizer = recognizer if recognizer is not None else ScriptedRecognizer(["hello"])
        self.bad_key, self.ack, self.partial_every = bad_key, ack, partial_every
        self.final_delay_s, self.close_after_final_s, self.auth_wait_s = final_delay_s, close_after_final_s, auth_wait_s
        self.auth_delay_s = auth_delay_s  # a slow handshake: the ack comes this late
        self.records: list[SessionRecord] = []
        self._faults: list[list[Any]] = []  # [fault, remaining connections or None]
        self._pending: dict[int, tuple[SessionRecord, bool]] = {}  # id(connection) → (record, key ok)
        self._server: Server | None = None
        self._n = dict.fromkeys(("rejected_http", "authenticated", "open", "max_open", "packets", "commits",
                                 "finals", "partials", "errors", "faults"), 0)

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}/api/v1/dash/ws"

    @property
    def client_url(self) -> str:
        return f"ws://{self.host}:{self.port}/api/v1/dash/client_ws"

    async def __aenter__(self) -> WisprFlowEmulator:
        self._server = await serve(self._handle, self.host, self.port, process_request=self._process_request)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def inject(self, fault: Fault, connections: int | None = 1) -> None:
        """Apply ``fault`` to the next ``connections`` connections (``None``: to every one until cleared)."""
        self._faults.append([fault, connections])

    def clear_faults(self) -> None:
        self._faults.clear()

    def stats(self) -> EmulatorStats:
        n = self._n
        return EmulatorStats(len(self.records), n["rejected_http"], n["authenticated"], n["open"], n["max_open"],
                             n["packets"], n["commits"], n["finals"], n["partials"], n["errors"], n["faults"])

    # -- connection handling ----------------------------------------------------------------------------------

    def _take_faults(self) -> tuple[Fault, ...]:
        taken = []
        for entry in self._faults:
            if entry[1] is None or entry[1] > 0:
                taken.append(entry[0])
                entry[1] = None if entry[1] is None else entry[1] - 1
        self._faults = [e for e in self._faults if e[1] is None or e[1] > 0]
        self._n["faults"] += len(taken)
        return tuple(taken)

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        record = SessionRecord(url.path, self._take_faults())
        self.records.append(record)
        if url.path not in PATHS:
            return connection.respond(404, "Not Found\n")
        query = parse_qs(url.query)
        key = (query.get("api_key") or query.get("client_key") or [""])[0].removeprefix("Bearer ")
        key_ok = key == self.api_key
        if record.has(FaultKind.REJECT_HTTP) or (not key_ok and self.bad_key == "http"):
            self._n["rejected_http"] += 1
            return connection.respond(401, "Invalid API key\n")
        self._pending[id(connection)] = (record, key_ok)
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        record, key_ok = self._pending.pop(id(ws))
        self._n["open"] += 1
        self._n["max_open"] = max(self._n["max_open"], self._n["open"])
        abort = record.has(FaultKind.ABORT)
        timer = None
        try:
            if abort is not None and abort.after_packets == 0:
                if not abort.delay_s:
                    ws.transport.abort()
                    return
                timer = asyncio.get_running_loop().call_later(abort.delay_s, ws.transport.abort)
            await self._session(ws, record, key_ok)
        except _Reject as exc:
            await self._error(ws, record, str(exc), exc.code)
        except (ConnectionClosed, _Ended):
            pass  # the client went away, or a fault closed the connection: nothing to answer
        finally:
            if timer is not None:
                timer.cancel()
            self._n["open"] -= 1
            if record.close_code is None:  # not closed by us: the client's code (1006 if TCP just dropped)
                record.close_code = ws.close_code

    async def _error(self, ws: ServerConnection, record: SessionRecord, message: str, code: int) -> None:
        record.errors.append(message)
        record.close_code = code
        self._n["errors"] += 1
        try:
            await ws.send(_frame({"status": "error", "error": message}))
            await ws.close(code, message[:100])
        except ConnectionClosed:
            pass

    async def _recv(self, ws: ServerConnection, record: SessionRecord, wait_s: float | None = None) -> dict[str, Any]:
        idle = record.has(FaultKind.IDLE_TIMEOUT)
        limit = idle.delay_s if idle is not None else wait_s
        try:
            async with asyncio.timeout(limit):
                frame = await ws.recv()
        except TimeoutError:
            record.close_code = 1001
            await ws.close(1001, "idle timeout")
            raise _Ended from None
        try:
            message = orjson.loads(frame)
        except orjson.JSONDecodeError as exc:
            raise _Reject("malformed JSON", 1007) from exc
        if not isinstance(message, dict):
            raise _Reject("message is not a JSON object", 1007)
        return message

    async def _session(self, ws: ServerConnection, record: SessionRecord, key_ok: bool) -> None:
        first = await self._recv(ws, record, self.auth_wait_s)
        if first.get("type") != "auth":
            raise _Reject(f"expected auth first, got {first.get('type')!r}")
        if not key_ok or record.has(FaultKind.REJECT_MESSAGE):
            raise _Reject("Invalid API key")
        record.auth = first
        self._n["authenticated"] += 1
        if self.auth_delay_s:
            await asyncio.sleep(self.auth_delay_s)
        if self.ack in ("status", "both"):
            await ws.send(_frame({"status": "auth"}))
        if self.ack in ("session_started", "both"):
            await ws.send(_frame({"status": "info", "message": {"event": "session_started"}}))
        while True:
            message = await self._recv(ws, record)
            kind = message.get("type")
            if record.total_packets is not None:
                raise _Reject(f"{kind!r} after commit")
            if kind == "append":
                await self._append(ws, record, message)
            elif kind == "commit":
                await self._commit(ws, record, message)
            else:
                raise _Reject(f"unknown message type {kind!r}")

    async def _append(self, ws: ServerConnection, record: SessionRecord, message: dict[str, Any]) -> None:
        packets = _packets(message, record)
        before = record.packets
        record.audio.extend(packets)
        record.packets += len(packets)
        record.appends += 1
        self._n["packets"] += len(packets)
        for kind in (FaultKind.CLOSE_MID_STREAM, FaultKind.ABORT):
            fault = record.has(kind)
            due = fault is not None and (kind is FaultKind.CLOSE_MID_STREAM or fault.after_packets > 0)
            if fault is not None and due and record.packets >= fault.after_packets:
                if kind is FaultKind.ABORT:
                    ws.transport.abort()
                else:
                    record.close_code = fault.code
                    await ws.close(fault.code, "emulated failure")
                raise _Ended
        every = 1 if record.has(FaultKind.PARTIALS_ONLY) else self.partial_every
        if every and record.packets // every > before // every:
            text = await self.recognizer.partial(np.concatenate(record.audio))
            if text:
                self._n["partials"] += 1
                await ws.send(_text(text, final=False))

    async def _commit(self, ws: ServerConnection, record: SessionRecord, message: dict[str, Any]) -> None:
        if message.get("total_packets") != record.packets:
            raise _Reject(f"total_packets {message.get('total_packets')!r} != packets received {record.packets}")
        record.total_packets = record.packets
        self._n["commits"] += 1
        await ws.send(_frame({"status": "info", "message": {"event": "commit_received"}}))
        if record.has(FaultKind.NO_FINAL) or record.has(FaultKind.PARTIALS_ONLY):
            await ws.wait_closed()
            return
        slow = record.has(FaultKind.SLOW_FINAL)
        delay = self.final_delay_s + (slow.delay_s if slow is not None else 0.0)
        if delay and not await self._pause(ws, delay):
            return
        if record.has(FaultKind.MALFORMED):
            await ws.send('{"status": "text", "final": tru')
        elif record.has(FaultKind.ERROR_WITHOUT_STATUS):
            await ws.send(_frame({"error": "internal error"}))
        else:
            audio = np.concatenate(record.audio) if record.audio else np.zeros(0, dtype=np.int16)
            record.final_text = await self.recognizer.recognize(audio)
            await ws.send(_text(record.final_text, final=True, under_body=bool(record.has(FaultKind.FINAL_UNDER_BODY))))
            self._n["finals"] += 1
        if await self._pause(ws, self.close_after_final_s):
            record.close_code = 1000
            await ws.close(1000, "session complete")

    @staticmethod
    async def _pause(ws: ServerConnection, seconds: float) -> bool:
        """Sleep ``seconds`` unless the connection closes first; True if it is still open."""
        try:
            async with asyncio.timeout(seconds):
                await ws.wait_closed()
        except TimeoutError:
            return True
        return False


__all__ = ["EmulatorStats", "Fault", "FaultKind", "SessionRecord", "WisprFlowEmulator"]
