"""The HTTP/1.1 server under the REST emulators (OpenAI, Twilio): plain asyncio streams, so a fault can reset a
connection or hold a request, which an ASGI app cannot.

A subclass records each request (:meth:`LoopbackHttpServer._record`), answers it (:meth:`_respond`) and names its
response headers (:meth:`_headers`); the base owns the connections, the fault queue (``inject``/``clear``) and the
two faults every emulator has the same way: ``reset`` (TCP RST instead of an answer) and ``slow`` (answer after
``delay_s``, or never if the emulator closes first).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import struct
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Generic, Protocol, Self, TypeVar


class FaultLike(Protocol):
    @property
    def kind(self) -> str: ...

    @property
    def delay_s(self) -> float: ...


class RecordLike(Protocol):
    fault: str | None
    status: int | None


@dataclass
class Response:
    """``chunks`` makes it a streamed (chunked) response: each piece is sent after its delay in seconds; ``cut``
    resets the connection after the last piece instead of ending the body (a drop mid-stream)."""

    status: int
    body: bytes
    headers: list[tuple[str, str]] = field(default_factory=list)
    chunks: list[tuple[float, bytes]] | None = None
    cut: bool = False


F = TypeVar("F", bound=FaultLike)
R = TypeVar("R", bound=RecordLike)


class LoopbackHttpServer(Generic[F, R]):
    """``async with`` it; :attr:`requests` logs every request, faults apply to the next N (None: all) of them."""

    reasons: ClassVar[Mapping[int, str]] = {}

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.requests: list[R] = []
        self._faults: list[tuple[F, int | None]] = []
        self.held: list[tuple[float, float]] = []
        """Streamed answers with a held chunk: (request read, that chunk written), ``time.monotonic`` seconds."""
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._closing = asyncio.Event()
        self._ids = itertools.count(1)

    def inject(self, fault: F, times: int | None = 1) -> None:
        """Apply ``fault`` to the next ``times`` requests (None: every request until :meth:`clear`)."""
        self._faults.append((fault, times))

    def clear(self) -> None:
        self._faults.clear()

    async def __aenter__(self) -> Self:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Handlers are ended by closing their connections, not cancelled: on Python 3.11 asyncio logs an error
        # for every cancelled client-connected task.
        assert self._server is not None
        self._server.close()
        self._closing.set()
        for writer in list(self._writers):
            writer.transport.abort()
        async with asyncio.timeout(5):
            await asyncio.gather(*self._handlers)
            await self._server.wait_closed()

    # -- for subclasses ----------------------------------------------------------------------------------------

    def _record(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> R:
        raise NotImplementedError

    def _respond(self, request: R, fault: F | None) -> Response:
        raise NotImplementedError

    def _headers(self, response: Response) -> list[str]:
        """Header lines besides the status line (content type, length, request id, ...)."""
        raise NotImplementedError

    def _refuse(self, method: str, headers: dict[str, str]) -> Response | None:
        """An answer that ends the connection before the body is read (e.g. 411); None = read the body."""
        return None

    # -- the connection loop ------------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        try:
            while await self._one(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away (e.g. it timed out and retried on a new connection)
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            writer.close()

    async def _one(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """Serve one request; False when the connection is finished."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError:
            return False
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, v in (ln.split(":", 1) for ln in lines[1:] if ":" in ln)}
        refusal = self._refuse(method, headers)
        if refusal is not None:
            await self._write(writer, refusal)
            return False
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        received = time.monotonic()
        record = self._record(method, target, headers, raw)
        self.requests.append(record)
        fault = self._next_fault(record)
        record.fault = fault.kind if fault else None
        if fault is not None and fault.kind == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        if fault is not None and fault.kind == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._closing.wait(), fault.delay_s)
            if self._closing.is_set():
                return False
        response = self._respond(record, fault)
        record.status = response.status
        if response.chunks is not None:
            return await self._stream(writer, response, received)
        await self._write(writer, response)
        return headers.get("connection", "").lower() != "close"

    def _applies(self, fault: F, request: R) -> bool:
        """Whether ``fault`` is for ``request`` (one that is not is left for the next request)."""
        return True

    def _next_fault(self, request: R) -> F | None:
        if not self._faults:
            return None
        fault, times = self._faults[0]
        if not self._applies(fault, request):
            return None
        if times is not None:
            if times <= 1:
                self._faults.pop(0)
            else:
                self._faults[0] = (fault, times - 1)
        return fault

    async def _write(self, writer: asyncio.StreamWriter, response: Response) -> None:
        writer.write(self._head(response) + response.body)
        await writer.drain()

    def _head(self, response: Response) -> bytes:
        status = f"HTTP/1.1 {response.status} {self.reasons.get(response.status, 'Error')}"
        head = [status, *self._headers(response), *(f"{k}: {v}" for k, v in response.headers)]
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")

    async def _stream(self, writer: asyncio.StreamWriter, response: Response, received: float) -> bool:
        """Send the head at once, then each chunk after its delay (HTTP/1.1 chunked transfer coding); False when
        the connection is finished (cut, or the emulator closed while a delay was running)."""
        writer.write(self._head(response))
        await writer.drain()
        for delay, data in response.chunks or ():
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._closing.wait(), delay)
                if self._closing.is_set():
                    return False
            writer.write(b"%x\r\n%s\r\n" % (len(data), data))
            await writer.drain()
            if delay > 0:
                self.held.append((received, time.monotonic()))
        if response.cut:
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True


__all__ = ["FaultLike", "LoopbackHttpServer", "RecordLike", "Response"]
