"""A Deepgram live-transcription server (``/v1/listen``) on loopback, with fault injection on command.

It speaks the protocol of https://developers.deepgram.com/reference/speech-to-text-api/listen-streaming
closely enough that the real ``deepgram-sdk``
parses every message: ``Authorization: Token <key>`` is checked before the upgrade (401 with ``dg-error``
otherwise), the query is validated (unknown model, bad encoding or rate → 400), binary audio (linear16 at 8
or 16 kHz, mulaw at 8 kHz) is cut into utterances by the ``audio`` package's energy detector and endpointer
(``endpointing`` ms of quiet ends one), and each utterance is answered with ``SpeechStarted``, interim
``Results``, a final ``Results`` (``is_final``, and ``speech_final`` unless it was cut at ``max_segment_ms``)
whose ``start``/``duration`` are stream seconds, then ``UtteranceEnd`` after ``utterance_end_ms`` of quiet.
Words come from a :mod:`tests.emulators.recognizer` (Moonshine, or scripted text). ``KeepAlive`` resets the
idle timer (``idle_timeout_s`` without audio or KeepAlive → close 1011 ``NET-0001``), ``Finalize`` flushes the
open utterance with ``from_finalize``, ``CloseStream`` (or an empty binary frame) flushes, sends ``Metadata``
and closes 1000.

Faults (:class:`Fault`) apply to the next N connections (:meth:`DeepgramEmulator.inject`) or to one live
connection (:meth:`EmulatorConnection.inject`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import enum
import json
import uuid
from dataclasses import dataclass
from typing import Final, Literal
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from audio import mulaw
from audio.detectors import EnergyDetector
from audio.endpoint import EndpointConfig, Endpointer, EndpointState
from audio.resample import StreamResampler
from tests.emulators.recognizer import EmulatorRecognizer, Recognizer, ScriptedRecognizer

RATE: Final = 16_000
FRAME: Final = 320  # 20 ms detector frames
MODELS: Final = frozenset({"nova-3", "nova-2", "nova-2-phonecall", "nova-2-general", "nova", "enhanced", "base"})
FORMATS: Final = {("linear16", 16000), ("linear16", 8000), ("mulaw", 8000)}
MODEL_INFO: Final = {"name": "2-phonecall-nova", "version": "2024-01-09.29447", "arch": "nova-2"}


class FaultKind(enum.Enum):
    REJECT_AUTH = "reject_auth"  # 401 at the upgrade, whatever the key
    CLOSE = "close"  # close(code, reason) once after_ms of audio has arrived
    STALL = "stall"  # after after_ms of audio send nothing more, CloseStream included; the socket stays open
    NO_FINAL = "no_final"  # interims only: no final Results, no UtteranceEnd, CloseStream never answered
    MALFORMED = "malformed"  # one non-JSON text frame after after_ms of audio
    ERROR = "error"  # one Error message after after_ms of audio (the socket stays open)
    SLOW = "slow"  # every message goes out delay_s late
    DIE = "die"  # abort the TCP connection (no close frame) after_s seconds after the upgrade


ONCE: Final[dict[FaultKind, dict[str, object] | str]] = {
    FaultKind.MALFORMED: "{not json: this frame is malformed",
    FaultKind.ERROR: {"type": "Error", "variant": "StreamingError", "description": "injected", "code": "NET-0000"},
}


@dataclass(frozen=True, slots=True)
class Fault:
    """What goes wrong and when: ``after_ms`` of audio received (CLOSE, STALL, MALFORMED, ERROR), ``after_s``
    since the upgrade (DIE), ``delay_s`` per message (SLOW), ``code``/``reason`` of a CLOSE."""

    kind: FaultKind
    after_ms: int = 0
    after_s: float = 0.0
    delay_s: float = 0.0
    code: int = 1011
    reason: str = "NET-0000"


@dataclass(frozen=True, slots=True)
class EmulatorStats:
    connections: int
    """Upgrades accepted."""
    rejected: int
    active: int
    audio_s: float
    keepalives: int
    finals: int
    interims: int


@dataclass
class _Armed:
    fault: Fault
    left: int | None
    """Connections still to get the fault; None: every connection."""


@dataclass
class _Counters:
    connections: int = 0
    rejected: int = 0
    audio_s: float = 0.0
    keepalives: int = 0
    finals: int = 0
    interims: int = 0


@dataclass(frozen=True, slots=True)
class _Transcribe:
    pcm: np.ndarray
    start: float
    end: float
    is_final: bool
    speech_final: bool = False
    from_finalize: bool = False


@dataclass(frozen=True, slots=True)
class _Message:
    """A message to send as is; ``final`` marks those a NO_FINAL fault withholds."""

    payload: dict[str, object] | str
    final: bool = False


@dataclass(frozen=True, slots=True)
class _Close:
    duration: float


class _Segmenter:
    """Sans-I/O: 16 kHz audio in, what to answer out, all in stream seconds."""

    def __init__(self, endpointing_ms: int | None, utterance_end_ms: int | None, interim_ms: int | None,
                 vad_events: bool, max_segment_ms: int) -> None:
        hangover = endpointing_ms or 500
        self._endpointer = Endpointer(EndpointConfig(hangover_ms=hangover, padding_ms=min(200, hangover),
                                                     max_utterance_ms=max_segment_ms, sample_rate=RATE))
        self._detector = EnergyDetector(RATE, 20)
        self._speech_final = endpointing_ms is not None
        self._utterance_end = utterance_end_ms * RATE // 1000 if utterance_end_ms else None
        self._interim = interim_ms * RATE // 1000 if interim_ms else None
        self._vad_events = vad_events
        self._buf = np.zeros(0, dtype=np.int16)
        self._origin = 0  # sample index of _buf[0]
        self._last_interim = 0
        self._forced = False  # the last final was a forced cut: its speech_final is still owed
        self._word_end: int | None = None  # end of the last final's speech, until its UtteranceEnd

    @property
    def position(self) -> int:
        return self._endpointer.position

    def push(self, pcm: np.ndarray) -> list[_Transcribe | _Message]:
        self._buf = np.concatenate((self._buf, pcm))
        ep, out = self._endpointer, list[_Transcribe | _Message]()
        while self._origin + len(self._buf) - ep.position >= FRAME:
            frame = self._view(ep.position, ep.position + FRAME)
            was = ep.state
            cuts = ep.push(self._detector.probability(frame), FRAME)
            if was is EndpointState.SILENCE and ep.in_speech:
                self._last_interim = ep.position
                if self._vad_events:
                    out.append(_Message({"type": "SpeechStarted", "channel": [0],
                                         "timestamp": round((ep.position - FRAME) / RATE, 3)}))
            out += [self._final(u.start_sample, u.end_sample, speech_final=not u.forced) for u in cuts]
            if cuts:
                self._forced = cuts[-1].forced
            elif self._forced and was is not EndpointState.SILENCE and not ep.in_speech:
                # The rest of a forced cut held no speech: still tell the client the pause ended the utterance.
                self._forced = False
                at = ep.position / RATE
                out.append(_Transcribe(np.zeros(0, np.int16), at, at, is_final=True, speech_final=self._speech_final))
            if ep.state is EndpointState.SPEECH and self._interim and ep.position - self._last_interim >= self._interim:
                self._last_interim = ep.position
                start = ep.speech_start or 0
                out.append(_Transcribe(self._view(start, ep.position).copy(), start / RATE, ep.position / RATE,
                                       is_final=False))
            if (self._word_end is not None and self._utterance_end and not ep.in_speech
                    and ep.position - self._word_end >= self._utterance_end):
                out.append(_Message({"type": "UtteranceEnd", "channel": [0, 1],
                                     "last_word_end": round(self._word_end / RATE, 3)}, final=True))
                self._word_end = None
        keep = min(ep.retain_from, ep.position)
        self._buf, self._origin = self._buf[keep - self._origin :], keep
        return out

    def flush(self, from_finalize: bool) -> list[_Transcribe | _Message]:
        cuts = self._endpointer.flush()
        if not cuts and from_finalize:  # Deepgram answers a Finalize even when nothing was pending
            at = self.position / RATE
            return [_Transcribe(np.zeros(0, np.int16), at, at, is_final=True, from_finalize=True)]
        return [self._final(u.start_sample, u.end_sample, speech_final=False, from_finalize=from_finalize)
                for u in cuts]

    def _final(self, start: int, end: int, speech_final: bool, from_finalize: bool = False) -> _Transcribe:
        self._word_end = max(start, end - self._endpointer.config.samples(self._endpointer.config.padding_ms))
        return _Transcribe(self._view(start, end).copy(), start / RATE, end / RATE, is_final=True,
                           speech_final=speech_final and self._speech_final, from_finalize=from_finalize)

    def _view(self, start: int, end: int) -> np.ndarray:
        return self._buf[start - self._origin : end - self._origin]


def _results(job: _Transcribe, text: str, request_id: str, diarize: bool) -> dict[str, object]:
    """A ``Results`` message; words are spread evenly over the span (good enough for timing checks)."""
    tokens = text.split()
    step = (job.end - job.start) / max(len(tokens), 1)
    words = [{"word": t.strip(".,?!;:").lower(), "start": round(job.start + i * step, 3),
              "end": round(job.start + (i + 1) * step, 3), "confidence": 0.99, "punctuated_word": t,
              **({"speaker": 0, "speaker_confidence": 0.9} if diarize else {})} for i, t in enumerate(tokens)]
    return {"type": "Results", "channel_index": [0, 1], "duration": round(job.end - job.start, 3),
            "start": round(job.start, 3), "is_final": job.is_final, "speech_final": job.speech_final,
            "from_finalize": job.from_finalize,
            "channel": {"alternatives": [{"transcript": text, "confidence": 0.99 if text else 0.0,
                                          "words": words}]},
            "metadata": {"request_id": request_id, "model_info": MODEL_INFO, "model_uuid": str(uuid.uuid5(
                uuid.NAMESPACE_DNS, "nova-2-phonecall"))}}


class EmulatorConnection:
    """One accepted socket: its query, the audio it sent, and faults that can be injected while it runs.

    The reader handles what the client sends and queues answers; the writer recognises and sends them in
    order, so a slow recogniser never stops the reader (and KeepAlive handling) from running.
    """

    def __init__(self, ws: ServerConnection, params: dict[str, str], recognizer: Recognizer, counters: _Counters,
                 idle_timeout_s: float, faults: list[Fault], segmenter: _Segmenter) -> None:
        self.ws, self.params, self.recognizer = ws, params, recognizer
        self.query_pairs: list[tuple[str, str]] = list(params.items())
        self.faults = faults
        self.request_id = str(uuid.uuid4())
        self.audio_s = 0.0
        """Seconds of audio received, at the rate the query declared."""
        self._counters, self._idle_timeout_s, self._segmenter = counters, idle_timeout_s, segmenter
        self._rate = int(params["sample_rate"])
        self._resampler = StreamResampler(self._rate, RATE) if self._rate != RATE else None
        self._queue: asyncio.Queue[tuple[float, _Transcribe | _Message | _Close]] = asyncio.Queue(1024)
        self._once = dict(ONCE)
        self._closing = False  # CloseStream received or a close started: input is read and dropped
        self._closer: asyncio.Task[None] | None = None
        self._deadline = 0.0

    def inject(self, fault: Fault) -> None:
        self.faults.append(fault)

    def _active(self, kind: FaultKind) -> Fault | None:
        return next((f for f in self.faults if f.kind is kind and self.audio_s * 1000 >= f.after_ms), None)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            writer = group.create_task(self._write_loop())
            dies = [group.create_task(self._die(f.after_s)) for f in self.faults if f.kind is FaultKind.DIE]
            await self._read_loop()
            for task in (writer, *dies):
                task.cancel()

    async def _read_loop(self) -> None:
        self._deadline = asyncio.get_running_loop().time() + self._idle_timeout_s
        while True:
            try:
                async with asyncio.timeout_at(None if self._closing else self._deadline):
                    message = await self.ws.recv()
            except TimeoutError:
                self._close(1011, "NET-0001")
                continue
            except ConnectionClosed:
                if self._closer is not None:
                    await self._closer
                return
            if self._closing:
                continue  # keep reading: a full receive queue would hold up the client's close frame
            if isinstance(message, bytes) and message:
                await self._on_audio(message)
            else:
                await self._on_control(message)

    def _close(self, code: int, reason: str) -> None:
        """Start the closing handshake while the reader goes on draining input."""
        self._closing = True
        self._closer = asyncio.create_task(self.ws.close(code, reason))

    async def _put(self, *items: _Transcribe | _Message | _Close) -> None:
        now = asyncio.get_running_loop().time()
        for item in items:
            await self._queue.put((now, item))

    async def _on_audio(self, data: bytes) -> None:
        if self.params["encoding"] == "mulaw":
            pcm = mulaw.decode(data)
        else:
            pcm = np.frombuffer(data[: len(data) // 2 * 2], "<i2").astype(np.int16)
        pcm16k = self._resampler.push(pcm) if self._resampler is not None else pcm
        self.audio_s += len(pcm) / self._rate
        self._counters.audio_s += len(pcm) / self._rate
        self._deadline = asyncio.get_running_loop().time() + self._idle_timeout_s
        await self._put(*self._segmenter.push(pcm16k))
        if (close := self._active(FaultKind.CLOSE)) is not None:
            self._close(close.code, close.reason)
        for kind in [k for k in self._once if self._active(k) is not None]:
            await self._put(_Message(self._once.pop(kind)))

    async def _on_control(self, message: str | bytes) -> None:
        kind = _message_type(message)
        if kind == "KeepAlive":
            self._counters.keepalives += 1
            self._deadline = asyncio.get_running_loop().time() + self._idle_timeout_s
        elif kind == "Finalize":
            await self._put(*self._segmenter.flush(from_finalize=True))
        elif kind == "CloseStream" or message == b"":  # an empty binary frame is the legacy CloseStream
            self._closing = True
            await self._put(*self._segmenter.flush(from_finalize=False), _Close(self.audio_s))
        elif kind != "Configure":
            await self._put(_Message({"type": "Error", "variant": "SchemaError", "message": str(message),
                                      "description": f"unknown message type {kind!r}"}))

    async def _write_loop(self) -> None:
        loop = asyncio.get_running_loop()
        diarize = self.params.get("diarize") == "true"
        while True:
            queued_at, item = await self._queue.get()
            ready_at = queued_at + sum(f.delay_s for f in self.faults if f.kind is FaultKind.SLOW)
            if isinstance(item, _Transcribe):
                if not item.is_final and not self._queue.empty():
                    continue  # a newer result is waiting: this interim is stale
                text = await self._words(item)
                if not item.is_final and not text:
                    continue
                item = _Message(_results(item, text, self.request_id, diarize), final=item.is_final)
            if self._active(FaultKind.STALL) or (self._active(FaultKind.NO_FINAL) and (
                    isinstance(item, _Close) or item.final)):
                continue
            await asyncio.sleep(max(0.0, ready_at - loop.time()))
            try:
                if isinstance(item, _Close):
                    await self.ws.send(json.dumps(_metadata(self.request_id, item.duration)))
                    await self.ws.close(1000)
                    return
                await self.ws.send(item.payload if isinstance(item.payload, str) else json.dumps(item.payload))
            except ConnectionClosed:
                return
            if isinstance(item.payload, dict) and item.payload.get("type") == "Results":
                self._counters.finals += bool(item.payload["is_final"])
                self._counters.interims += not item.payload["is_final"]

    async def _words(self, job: _Transcribe) -> str:
        if not len(job.pcm):
            return ""
        return await (self.recognizer.recognize(job.pcm) if job.is_final else self.recognizer.partial(job.pcm))

    async def _die(self, after_s: float) -> None:
        await asyncio.sleep(after_s)
        self.ws.transport.abort()


def _message_type(message: str | bytes) -> str | None:
    if isinstance(message, bytes):
        return None
    try:
        data = json.loads(message)
    except json.JSONDecodeError:
        return None
    return data.get("type") if isinstance(data, dict) else None


def _metadata(request_id: str, duration: float) -> dict[str, object]:
    return {"type": "Metadata", "transaction_key": "deprecated", "request_id": request_id, "sha256": "0" * 64,
            "created": "2024-01-01T00:00:00.000Z", "duration": round(duration, 3), "channels": 1,
            "models": [str(uuid.uuid5(uuid.NAMESPACE_DNS, "nova-2-phonecall"))],
            "model_info": {str(uuid.uuid5(uuid.NAMESPACE_DNS, "nova-2-phonecall")): MODEL_INFO}}


class DeepgramEmulator:
    """The server; an async context manager. ``recognizer`` defaults to one scripted line.

    ``compression``: whether Deepgram's servers accept permessage-deflate is not documented; the SDK always
    offers it (and cannot be told not to), so ``"deflate"`` shows what compressing PCM would cost the client.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str = "test-key",
                 recognizer: Recognizer | None = None, *, idle_timeout_s: float = 10.0,
                 interim_ms: int | None = 1000, max_segment_ms: int = 5000,
                 compression: Literal["deflate"] | None = None) -> None:
        self.host, self.port, self.api_key = host, port, api_key
        self.compression = compression
        self.recognizer: Recognizer = recognizer if recognizer is not None else ScriptedRecognizer(["hello"])
        self.idle_timeout_s, self.interim_ms, self.max_segment_ms = idle_timeout_s, interim_ms, max_segment_ms
        self.connections: list[EmulatorConnection] = []
        """Live connections, oldest first."""
        self._faults: list[_Armed] = []
        self._pending: dict[ServerConnection, list[Fault]] = {}
        self._counters = _Counters()
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def inject(self, fault: Fault, connections: int | None = 1) -> None:
        """Apply ``fault`` to the next ``connections`` connections (None: every one until clear_faults)."""
        self._faults.append(_Armed(fault, connections))

    def clear_faults(self) -> None:
        self._faults.clear()

    def stats(self) -> EmulatorStats:
        c = self._counters
        return EmulatorStats(c.connections, c.rejected, len(self.connections), c.audio_s,
                             c.keepalives, c.finals, c.interims)

    async def start(self) -> None:
        self._server = await serve(self._handle, self.host, self.port, process_request=self._check,
                                   compression=self.compression)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> DeepgramEmulator:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def _take_faults(self) -> list[Fault]:
        for armed in self._faults:
            armed.left = None if armed.left is None else armed.left - 1
        taken = [armed.fault for armed in self._faults]
        self._faults = [a for a in self._faults if a.left is None or a.left > 0]
        return taken

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        """Refuse the upgrade as Deepgram does: HTTP status plus ``dg-error``, before any WebSocket frame."""
        url = urlsplit(request.path)
        params = dict(parse_qsl(url.query))
        faults = self._take_faults()
        if url.path != "/v1/listen":
            return self._refuse(connection, 404, "Not found.")
        if any(f.kind is FaultKind.REJECT_AUTH for f in faults) or \
                request.headers.get("Authorization") != f"Token {self.api_key}":
            return self._refuse(connection, 401, "Invalid credentials.")
        if params.get("model", "base") not in MODELS:
            return self._refuse(connection, 400, f"No such model: {params['model']}")
        rate = params.get("sample_rate", "")
        if (params.get("encoding"), int(rate) if rate.isdigit() else 0) not in FORMATS:
            return self._refuse(connection, 400, "Unsupported encoding or sample_rate for raw audio.")
        if params.get("channels", "1") != "1":
            return self._refuse(connection, 400, "This emulator takes channels=1 only.")
        self._pending[connection] = faults
        return None

    def _refuse(self, connection: ServerConnection, status: int, error: str) -> Response:
        self._counters.rejected += 1
        response = connection.respond(status, json.dumps({"err_code": "INVALID_AUTH" if status == 401 else
                                                          "Bad Request", "err_msg": error}))
        response.headers["dg-error"] = error
        response.headers["dg-request-id"] = str(uuid.uuid4())
        return response

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self._counters.connections += 1
        p = dict(parse_qsl(urlsplit(ws.request.path).query))
        endpointing = None if p.get("endpointing") == "false" else int(p.get("endpointing", "10"))
        segmenter = _Segmenter(endpointing, int(p.get("utterance_end_ms", "0")) or None,
                               self.interim_ms if p.get("interim_results") == "true" else None,
                               p.get("vad_events") == "true", self.max_segment_ms)
        conn = EmulatorConnection(ws, p, self.recognizer, self._counters, self.idle_timeout_s,
                                  self._pending.pop(ws, []), segmenter)
        # repeated parameters (keywords, keyterm) as sent, for tests of vocabulary boosting
        conn.query_pairs = parse_qsl(urlsplit(ws.request.path).query)
        self.connections.append(conn)
        try:
            await conn.run()
        finally:
            self.connections.remove(conn)


async def _serve(port: int, api_key: str, moonshine: bool, deflate: bool) -> None:
    recognizer = EmulatorRecognizer() if moonshine else ScriptedRecognizer(["hello from the deepgram emulator"])
    async with DeepgramEmulator(port=port, api_key=api_key, recognizer=recognizer,
                                compression="deflate" if deflate else None) as emulator:
        print(emulator.url, flush=True)
        await asyncio.Event().wait()  # until interrupted


def main(argv: list[str] | None = None) -> None:
    """``python -m tests.emulators.deepgram_server``: serve on loopback for local runs and benchmarks."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default="test-key")
    parser.add_argument("--moonshine", action="store_true", help="real words (loads Moonshine); else scripted")
    parser.add_argument("--deflate", action="store_true", help="accept permessage-deflate")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.api_key, args.moonshine, args.deflate))


__all__ = ["DeepgramEmulator", "EmulatorConnection", "EmulatorStats", "Fault", "FaultKind"]


if __name__ == "__main__":
    main()
