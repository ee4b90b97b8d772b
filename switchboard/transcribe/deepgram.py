"""Deepgram live transcription (``/v1/listen``) through the official async SDK (``deepgram-sdk`` 7.x).

One socket per track, not one ``multichannel`` socket for both: failover is per track, and a provider can fail
one track's socket (a close, a stall) while the other is healthy, so each track must be able to move on alone.

Per stream two tasks run, both started in :meth:`DeepgramTranscriber.open` and cancelled and awaited when
iteration ends or on :meth:`DeepgramStream.aclose`: the *sender* owns the socket's write side (~100 ms binary
frames of linear16, a ``KeepAlive`` text frame whenever no audio went out for ``keepalive_s``, because about
10 s without either closes the stream; after :meth:`~DeepgramStream.end`, ``Finalize`` then ``CloseStream``);
the *receiver* turns messages into events. It calls ``recv()`` itself rather than the SDK's
``start_listening()``, which stops for good on a non-JSON text frame, and copes with ``recv()`` answering
``None`` for message types this SDK does not know (``listen/v1/socket_client.py`` of deepgram-sdk 7.x,
https://github.com/deepgram/deepgram-python-sdk).

Finals are assembled as the protocol note says: ``is_final`` pieces are concatenated up to ``speech_final``,
an ``UtteranceEnd``, a ``from_finalize`` result or the end of the stream, and emitted as one event; interims
become partials. Deepgram's ``start``/``duration`` are seconds of the audio it received, mapped back to media
time through the ``pts_ms`` of each push (:class:`MediaClock`).

Errors, raised from the iterator after every event received before them: a 401/403 at connect is
:class:`ProviderAuthError`; connect failures and time-outs, any close before ``end()`` (1011 ``NET-0000``/
``NET-0001``, a dropped TCP connection), a non-JSON frame or a send backlog past ``max_backlog_ms`` are
:class:`ProviderUnavailable` (retryable except for 1008 ``DATA-0000`` and other 4xx: the same request fails
again); an ``Error`` message is :class:`RecognitionFailed` (retryable). A stalled provider raises nothing:
the failover layer times it out.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import warnings
from collections import deque
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from websockets.exceptions import ConnectionClosed, WebSocketException

from audio.media_time import MediaClock
from switchboard.transcribe.base import Pcm16, TranscriptEvent, check_push
from switchboard.transcribe.errors import (
    ProviderAuthError,
    ProviderUnavailable,
    RecognitionFailed,
    TranscriptionError,
)
from switchboard.transcribe.waker import Waker

if TYPE_CHECKING:
    from deepgram import AsyncDeepgramClient
    from deepgram.listen.v1.socket_client import AsyncV1SocketClient

log = logging.getLogger(__name__)

PROVIDER: Final = "deepgram"
FRAME_MS: Final = 100
"""Audio per binary frame: Deepgram suggests 20–100 ms; fewer, larger frames cost less CPU per call-second."""
FRAME_WAIT_S: Final = 0.2
"""A partial frame waits this long for more audio before it is sent anyway."""
UTTERANCE_END_MS: Final = 1500
ENDPOINTING_MS: Final = 300


class _Assembler:
    """Sans-I/O: Deepgram ``Results``/``UtteranceEnd`` in, :class:`TranscriptEvent` out."""

    def __init__(self, track: str, clock: MediaClock) -> None:
        self._track, self._clock = track, clock
        self._pieces: list[tuple[str, float, float, float]] = []  # transcript, start s, end s, confidence

    def results(self, msg: Any) -> list[TranscriptEvent]:
        alternatives = msg.channel.alternatives if msg.channel is not None else None
        best = alternatives[0] if alternatives else None
        text = (best.transcript or "").strip() if best is not None else ""
        start = float(msg.start or 0.0)
        end = start + float(msg.duration or 0.0)
        confidence = float(best.confidence) if best is not None and best.confidence is not None else 0.0
        if not msg.is_final:
            return [self._event(text, start, end, confidence, final=False)] if text else []
        if text:
            self._pieces.append((text, start, end, confidence))
        return self.flush() if msg.speech_final or msg.from_finalize else []

    def flush(self) -> list[TranscriptEvent]:
        """Emit the pieces held (at ``speech_final``, ``UtteranceEnd``, ``from_finalize`` or the end)."""
        if not self._pieces:
            return []
        pieces, self._pieces = self._pieces, []
        start, end = pieces[0][1], pieces[-1][2]
        weights = [max(p[2] - p[1], 1e-3) for p in pieces]
        confidence = sum(p[3] * w for p, w in zip(pieces, weights, strict=True)) / sum(weights)
        event = self._event(" ".join(p[0] for p in pieces), start, end, confidence, final=True)
        self._clock.drop_before(round(end * self._clock.rate))
        return [event]

    def _event(self, text: str, start: float, end: float, confidence: float, final: bool) -> TranscriptEvent:
        return TranscriptEvent(self._track, text, final, self._clock.seconds_to_ms(start),
                               self._clock.seconds_to_ms(end), PROVIDER, round(confidence, 4))


@dataclass(frozen=True, slots=True)
class DeepgramStats:
    """One stream's counters; ``backlog_ms`` is audio pushed but not yet sent (bounded by max_backlog_ms)."""

    sent_ms: int
    backlog_ms: int
    dropped_ms: int
    """Pushed after the stream failed or over the backlog bound: never sent."""
    keepalives: int
    partials: int
    finals: int
    ignored_messages: int
    """Messages of types this SDK does not parse, or binary frames: skipped."""


class DeepgramStream:
    """One track's :class:`~switchboard.transcribe.base.TranscriptStream` on one Deepgram socket."""

    def __init__(self, track: str, sample_rate: int, socket_cm: AbstractAsyncContextManager[AsyncV1SocketClient],
                 sock: AsyncV1SocketClient, *, keepalive_s: float, max_backlog_ms: int,
                 close_timeout_s: float) -> None:
        self.track = track
        self._cm, self._sock = socket_cm, sock
        self._bytes_per_ms = sample_rate * 2 // 1000
        self._frame_bytes = FRAME_MS * self._bytes_per_ms
        self._max_backlog = max_backlog_ms * self._bytes_per_ms
        self._keepalive_s, self._close_timeout_s = keepalive_s, close_timeout_s
        self._clock = MediaClock(sample_rate)
        self._assembler = _Assembler(track, self._clock)
        self._audio = bytearray()
        self._pushed = self._sent = self._dropped = 0  # bytes
        self._keepalives = self._partials = self._finals = self._ignored = 0
        self._events: deque[TranscriptEvent] = deque()
        self._failure: BaseException | None = None
        self._ended = self._close_sent = self._finished = False
        self._audio_ready = asyncio.Event()
        self._waker = Waker()
        self._shutdown: asyncio.Future[None] | None = None
        self._tasks = [asyncio.create_task(self._send_loop(), name=f"deepgram-send-{track}"),
                       asyncio.create_task(self._recv_loop(), name=f"deepgram-recv-{track}")]
        for task in self._tasks:
            task.add_done_callback(self._task_done)

    def push(self, pcm: Pcm16, pts_ms: int) -> None:
        """Queue int16 audio whose first sample is at media time ``pts_ms``; never blocks."""
        check_push(pcm, ended=self._ended, track=self.track, provider=PROVIDER)
        data = pcm.astype("<i2", copy=False).tobytes()
        if self._failure is not None or len(self._audio) + len(data) > self._max_backlog:
            self._dropped += len(data)
            if self._failure is None:  # the socket is not draining: let the failover layer move on
                self._fail(ProviderUnavailable(f"send backlog over {self._max_backlog // self._bytes_per_ms} ms",
                                               provider=PROVIDER))
            return
        if data:
            self._clock.note(self._pushed // 2, pts_ms)
            self._pushed += len(data)
            was_empty = not self._audio
            self._audio += data
            if was_empty or len(self._audio) >= self._frame_bytes:  # fewer wake-ups: what the sender waits for
                self._audio_ready.set()

    def end(self) -> None:
        """No more audio: the queued audio is sent, then ``Finalize`` and ``CloseStream``."""
        self._ended = True
        self._audio_ready.set()

    def __aiter__(self) -> DeepgramStream:
        return self

    async def __anext__(self) -> TranscriptEvent:
        while True:
            if self._events:
                return self._events.popleft()
            if self._failure is not None:
                await self._close()
                raise self._failure
            if self._finished:
                await self._close()
                raise StopAsyncIteration
            await self._waker.wait()

    async def aclose(self) -> None:
        """Abandon the stream: tasks are cancelled and awaited, the socket closed; idempotent."""
        self._ended = self._finished = True
        self._events.clear()
        self._waker.wake()
        await self._close()

    def stats(self) -> DeepgramStats:
        ms = self._bytes_per_ms
        return DeepgramStats(self._sent // ms, len(self._audio) // ms, self._dropped // ms, self._keepalives,
                             self._partials, self._finals, self._ignored)

    async def _send_loop(self) -> None:
        loop = asyncio.get_running_loop()
        last_sent = loop.time()
        while not self._ended or self._audio:
            await self._wait_audio(FRAME_WAIT_S if self._audio else last_sent + self._keepalive_s - loop.time())
            if self._audio:
                chunk = bytes(self._audio[: self._frame_bytes])
                del self._audio[: len(chunk)]
                await self._sock.send_media(chunk)
                self._sent += len(chunk)
            elif not self._ended:  # keepalive_s without audio: Deepgram closes after ~10 s of nothing
                await self._sock.send_keep_alive()
                self._keepalives += 1
            last_sent = loop.time()
        self._close_sent = True  # before the send: the server may close as soon as it reads CloseStream
        await self._sock.send_finalize()
        await self._sock.send_close_stream()

    async def _wait_audio(self, within_s: float) -> None:
        """Until a whole frame is queued or the stream ends; at most ``within_s``, or FRAME_WAIT_S once some
        audio waits."""
        loop = asyncio.get_running_loop()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within_s) as timeout:
                while len(self._audio) < self._frame_bytes and not self._ended:
                    self._audio_ready.clear()
                    await self._audio_ready.wait()
                    if 0 < len(self._audio) < self._frame_bytes:
                        timeout.reschedule(min(timeout.when() or math.inf, loop.time() + FRAME_WAIT_S))

    async def _recv_loop(self) -> None:
        while not self._finished:
            try:
                message = await self._sock.recv()
            except json.JSONDecodeError as exc:
                raise ProviderUnavailable("received a text frame that is not JSON", provider=PROVIDER) from exc
            except ConnectionClosed as exc:
                if not (self._close_sent and exc.rcvd is not None and exc.rcvd.code == 1000):
                    raise _closed_error(exc) from exc
                self._emit(self._assembler.flush())  # a normal close after CloseStream
                self._finished = True
                return
            self._on_message(message)

    def _on_message(self, message: Any) -> None:
        kind = getattr(message, "type", None)
        if kind == "Results":
            self._emit(self._assembler.results(message))
        elif kind == "UtteranceEnd":
            self._emit(self._assembler.flush())
        elif kind == "Metadata" and self._close_sent:  # the last message after CloseStream
            self._emit(self._assembler.flush())
            self._finished = True
        elif kind == "Error":
            raise RecognitionFailed(f"Deepgram error {message.variant}: {message.description}", retryable=True,
                                    provider=PROVIDER)
        elif kind not in ("SpeechStarted", "Metadata"):
            self._ignored += 1  # None (a type the SDK does not know), a raw dict, or bytes

    def _emit(self, events: list[TranscriptEvent]) -> None:
        for event in events:
            if not event.is_final and self._events and not self._events[-1].is_final:
                self._events[-1] = event  # an unread partial is superseded by the newer one
            else:
                self._events.append(event)
            self._finals += event.is_final
            self._partials += not event.is_final
        self._waker.wake()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, WebSocketException | OSError):  # a send on a socket that died
            wrapped = _closed_error(exc) if isinstance(exc, ConnectionClosed) else ProviderUnavailable(
                f"socket failed: {exc!r}", provider=PROVIDER)
            wrapped.__cause__ = exc
            exc = wrapped
        if exc is not None:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self._failure is None and not self._finished:
            self._failure = exc
        self._waker.wake()

    async def _close(self) -> None:
        """Cancel and await both tasks, then close the socket (bounded by ``close_timeout_s``); once."""
        if self._shutdown is not None:
            await asyncio.shield(self._shutdown)
            return
        self._shutdown = asyncio.get_running_loop().create_future()
        try:
            for task in self._tasks:
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)  # outcomes already went to _task_done
            try:
                async with asyncio.timeout(self._close_timeout_s):
                    await self._cm.__aexit__(None, None, None)
            except (TimeoutError, WebSocketException, OSError) as exc:  # the stream is over either way
                log.info("track %s: Deepgram socket did not close cleanly: %r", self.track, exc)
        finally:
            self._shutdown.set_result(None)


class DeepgramTranscriber:
    """:class:`~switchboard.transcribe.base.Transcriber` for Deepgram; ``base_url`` points at an emulator.

    The SDK is imported here, not at module import: it takes ~1 s, and importing it warns that
    ``websockets.legacy`` and ``InvalidStatusCode`` are deprecated (the SDK's async client is the legacy one;
    the project pins ``websockets<18``), which these warnings are filtered for here and nowhere else.
    """

    name = "deepgram"

    def __init__(self, api_key: str, *, base_url: str | None = None, model: str = "nova-2-phonecall",
                 keepalive_s: float = 4.0, connect_timeout_s: float = 5.0, close_timeout_s: float = 2.0,
                 max_backlog_ms: int = 10_000, vocabulary: Sequence[str] = ()) -> None:
        if not api_key:
            raise ProviderAuthError("no API key (set DEEPGRAM_API_KEY)", provider=PROVIDER)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"websockets\.(legacy|exceptions\.InvalidStatusCode)",
                                    DeprecationWarning)
            import deepgram.listen.v1.client  # noqa: F401  (imports websockets.legacy)
            from deepgram import AsyncDeepgramClient
            from deepgram.core.api_error import ApiError
            from deepgram.environment import DeepgramClientEnvironment
        self._api_error: type[ApiError] = ApiError
        if base_url is None:
            environment = DeepgramClientEnvironment.PRODUCTION
        else:
            http = base_url.replace("ws://", "http://", 1).replace("wss://", "https://", 1)
            environment = DeepgramClientEnvironment(base=http, production=base_url, agent=base_url,
                                                    agent_rest=http)
        self._client: AsyncDeepgramClient = AsyncDeepgramClient(api_key=api_key, environment=environment)
        self.model = model
        self.boost = vocabulary_params(model, vocabulary)
        self._keepalive_s, self._connect_timeout_s = keepalive_s, connect_timeout_s
        self._close_timeout_s, self._max_backlog_ms = close_timeout_s, max_backlog_ms

    async def open(self, track: str, sample_rate: int) -> DeepgramStream:
        """Connect one socket for ``track`` (linear16 mono at ``sample_rate``); raises TranscriptionError."""
        cm = self._client.listen.v1.connect(
            model=self.model, encoding="linear16", sample_rate=sample_rate, channels=1, punctuate=True,
            smart_format=True, diarize=True, interim_results=True, utterance_end_ms=UTTERANCE_END_MS,
            endpointing=ENDPOINTING_MS, vad_events=True, **self.boost)
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                sock = await cm.__aenter__()
        except TimeoutError as exc:
            raise ProviderUnavailable(f"connect timed out after {self._connect_timeout_s} s",
                                      provider=PROVIDER) from exc
        except (OSError, WebSocketException) as exc:
            raise ProviderUnavailable(f"cannot connect: {exc!r}", provider=PROVIDER) from exc
        except self._api_error as exc:
            raise _translate_api_error(exc.status_code or 0, exc.body) from exc
        return DeepgramStream(track, sample_rate, cm, sock, keepalive_s=self._keepalive_s,
                              max_backlog_ms=self._max_backlog_ms, close_timeout_s=self._close_timeout_s)


MAX_VOCABULARY: Final = 50
"""Terms sent at most: each is a query parameter, and the URL must stay well under a proxy's limits."""
_GENERIC: Final = frozenset({"road", "street", "lane", "avenue", "drive", "terrace", "close", "way", "crescent",
                             "grove", "place", "gardens", "court", "hill", "park", "row", "square", "walk", "the",
                             "and", "of", "upon", "on", "st", "rd"})


def vocabulary_params(model: str, names: Sequence[str]) -> dict[str, list[str]]:
    """Deepgram's boosting parameters for ``names`` (streets, areas): Nova-3 takes whole phrases as ``keyterm``;
    earlier models take single words as ``keywords`` (the generic words of a street name are left out, they need
    no help). https://developers.deepgram.com/docs/keyterm and https://developers.deepgram.com/docs/keywords"""
    names = [" ".join(name.split()) for name in names if name.strip()]
    if model.startswith("nova-3"):
        return {"keyterm": list(dict.fromkeys(names))[:MAX_VOCABULARY]} if names else {}
    words = [w for name in names for w in re.findall(r"[A-Za-z][A-Za-z'-]+", name) if w.lower() not in _GENERIC]
    unique = list(dict.fromkeys(words))[:MAX_VOCABULARY]
    return {"keywords": unique} if unique else {}


def _closed_error(exc: ConnectionClosed) -> ProviderUnavailable:
    """A close the client did not ask for; retrying cannot help after 1008 ``DATA-0000`` (undecodable audio)."""
    code = exc.rcvd.code if exc.rcvd is not None else 1006
    reason = exc.rcvd.reason if exc.rcvd is not None else "no close frame"
    return ProviderUnavailable(f"socket closed {code} {reason!r} before the stream ended",
                               retryable=not (code == 1008 or reason.startswith("DATA-")), provider=PROVIDER)


def _translate_api_error(status: int, body: object) -> TranscriptionError:
    """The SDK's ``ApiError`` (a refused upgrade) as a TranscriptionError.

    ``str(ApiError)`` includes the request headers (redacted by the SDK), so only status and body are used.
    """
    message = f"upgrade refused: HTTP {status}: {body}"
    if status in (401, 403):
        return ProviderAuthError(message, provider=PROVIDER)
    retryable = status == 429 or status >= 500
    return ProviderUnavailable(message, retryable=retryable, provider=PROVIDER)


__all__ = ["DeepgramStats", "DeepgramStream", "DeepgramTranscriber"]
