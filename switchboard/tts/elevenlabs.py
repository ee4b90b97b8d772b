"""ElevenLabs: the ``stream-input`` websocket for the agent's turns, the official SDK for whole fixed prompts.

Why our own websocket client: the SDK's only realtime helper (``elevenlabs/realtime_tts.py``,
``RealtimeTextToSpeechClient.convert_realtime`` in elevenlabs 2.78) is synchronous (``websockets.sync``), takes the
whole text as an iterator and closes the socket at its end (no turns on one connection, no flush, no cancel), and
rewrites the base URL's scheme to ``wss`` (``_replace(scheme="wss")``), so it cannot reach a ``ws://`` emulator.
Whole prompts (the greeting cache) go through the SDK: ``AsyncElevenLabs(...).text_to_speech.stream``.

One socket per call, kept across turns: each turn's text goes out at word boundaries as the model writes it and
ends with ``flush``; its first sentence is flushed as soon as it is complete, because the server otherwise waits
for ``chunk_length_schedule[0]`` characters (50 at least) before it starts generating, and a short first sentence
("Thanks, John.") would wait for the model's next words
(https://elevenlabs.io/docs/api-reference/text-to-speech/v-1-text-to-speech-voice-id-stream-input: ``flush``
forces the generation of the buffered text). The socket is opened before the agent speaks
(``ElevenLabsVoice.open``), kept alive with a single-space message every ``keepalive_s`` and asked for a longer
``inactivity_timeout``; if the server closes it while idle anyway, the next one is opened when the next turn's text
comes (not at once: a server closing idle sockets sooner than our keep-alive would otherwise be reconnected to in a
loop). The endpoint has no end-of-flush message, so a turn ends when the alignment has voiced all of its text
(:class:`~switchboard.tts.elevenlabs_wire.TextAligner`), or, from a server that sends no alignment, after the stall
deadline of quiet. A flushed turn with no audio by the first-audio deadline, or audio that stops for the stall
deadline before its text is voiced, is a :class:`VoiceTimeout`; both deadlines follow the provider's observed
latencies (:mod:`~switchboard.tts.watch`), at most ``first_audio_timeout_s`` (0.8 s) and ``stall_timeout_s``
(0.6 s). Barge-in: the single-context endpoint has no cancel, so ``cancel()`` closes the socket and opens a new one.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from switchboard.tasks import cancel_and_wait
from switchboard.tts import elevenlabs_wire as wire
from switchboard.tts.base import AudioChunk, TurnEnd, VoiceEvent
from switchboard.tts.errors import (
    VoiceAuthError,
    VoiceClosedError,
    VoiceError,
    VoiceProtocolError,
    VoiceTimeout,
    VoiceUnavailable,
)
from switchboard.tts.outbox import Outbox
from switchboard.tts.rechunk import DEFAULT_MAX_FRAMES, Rechunker, spread_chars
from switchboard.tts.watch import Owed, TurnClock, VoiceWatch

NAME = wire.PROVIDER


@dataclass(frozen=True, slots=True)
class ElevenLabsSettings:
    api_key: str = field(repr=False)
    voice_id: str
    model_id: str = "eleven_flash_v2_5"
    ws_url: str = "wss://api.elevenlabs.io"
    base_url: str = "https://api.elevenlabs.io"
    inactivity_timeout_s: int = 60
    """Asked of the server (default 20, at most 180); the keep-alive below makes it a backstop."""
    keepalive_s: float = 15.0
    connect_timeout_s: float = 3.0
    first_audio_timeout_s: float = 0.8
    """The first-audio deadline until enough turns have been seen; then 2.5 × the observed p99, at least 0.35 s
    (:mod:`~switchboard.tts.watch`). Flash answers in ~75 ms of model time plus the network
    (https://elevenlabs.io/docs/models#flash-v25)."""
    stall_timeout_s: float = 0.6
    """Likewise for a pause between audio messages before the text is voiced (at least 0.25 s)."""
    turn_end_grace_s: float = 0.1
    """After the alignment has voiced the whole turn, audio arriving this soon still belongs to it."""
    chunk_length_schedule: tuple[int, ...] = (50, 120, 160, 250)
    """Characters buffered before each generation (50 = the smallest allowed: first audio sooner)."""
    max_frames: int = DEFAULT_MAX_FRAMES


class _Reconnect(Exception):
    """Internal: close this socket and open another (barge-in, or the server closed an idle socket)."""


@dataclass(slots=True)
class _Turn:
    turn: int
    chunker: Rechunker
    aligner: wire.TextAligner = field(default_factory=wire.TextAligner)
    flushed_at: float | None = None
    generating: bool = False
    """Its first sentence was flushed: the server is already generating this turn."""


class ElevenLabsStream:
    """One call's ``stream-input`` connection (see the module docstring); build it with :meth:`ElevenLabsVoice.open`."""

    def __init__(self, settings: ElevenLabsSettings, ws: ClientConnection, watch: VoiceWatch | None = None) -> None:
        self._settings = settings
        self._watch = watch or VoiceWatch(settings.first_audio_timeout_s, settings.stall_timeout_s,
                                          turn_end_grace_s=settings.turn_end_grace_s)
        self._ws: ClientConnection | None = ws
        self._turn = 1
        self._turns: deque[_Turn] = deque()
        self._sendq: deque[str] = deque()
        self._words = wire.WordBuffer()
        self._wake = asyncio.Event()
        self._outbox = Outbox()
        self._reconnect = False
        self._idle_closed = False
        self._closed = False
        self._characters = 0
        self._aligned_seen = False
        self._last_audio_at = 0.0
        self._last_sent_at = time.monotonic()
        self._timer: asyncio.Timeout | None = None
        self.connections = 1
        self._task = asyncio.get_running_loop().create_task(self._run(), name="voice-elevenlabs")

    @property
    def provider(self) -> str:
        return NAME

    @property
    def turn(self) -> int:
        return self._turn

    def push_text(self, text: str) -> None:
        self._check_open()
        current = self._current()
        current.aligner.extend(text)
        self._characters += len(text)
        ready = self._words.push(text)
        if not current.generating and (cut := wire.first_sentence_end(ready)):
            current.generating = True
            self._send(ready[:cut], flush=True)
            ready = ready[cut:]
        self._send(ready)

    def flush(self) -> int:
        self._check_open()
        current = self._current()
        current.flushed_at = time.monotonic()
        if current.aligner.text.strip():
            self._send(self._words.flush(), flush=True)
        self._words.clear()
        self._turn += 1
        self._wake.set()
        if self._timer is not None:
            self._timer.reschedule(self._deadline())
        return current.turn

    def say(self, text: str) -> int:
        self.push_text(text)
        return self.flush()

    def cancel(self) -> None:
        self._outbox.cancel()
        if self._turns and self._turns[-1].turn == self._turn:
            self._turn += 1
        self._turns.clear()
        self._sendq.clear()
        self._words.clear()
        self._reconnect = True
        self._wake.set()

    def characters(self) -> Mapping[str, int]:
        return {NAME: self._characters}

    def __aiter__(self) -> ElevenLabsStream:
        return self

    async def __anext__(self) -> VoiceEvent:
        return await self._outbox.get()

    async def aclose(self) -> None:
        self._closed = True
        self._outbox.end()
        await cancel_and_wait(self._task)

    # -- composing ------------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed or self._outbox.ended:
            raise VoiceClosedError("text pushed to a closed voice stream", provider=NAME)

    def _current(self) -> _Turn:
        if not self._turns or self._turns[-1].turn != self._turn:
            self._turns.append(_Turn(self._turn, Rechunker(self._turn, NAME, self._settings.max_frames)))
        return self._turns[-1]

    def _send(self, text: str, flush: bool = False) -> None:
        if text or flush:
            self._sendq.append(wire.text_message(text, flush))
            self._wake.set()

    # -- the connection ------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        quick_closes = 0
        try:
            while True:
                if self._idle_closed:  # the server closed an idle socket: open the next one for the next turn
                    await self._wait_for_text()
                ws = self._ws or await _connect(self._settings)
                self._ws = None
                self._reconnect = self._idle_closed = False  # nothing stale on this new socket
                opened = time.monotonic()
                try:
                    await self._serve(ws)
                except _Reconnect:
                    pass
                except VoiceError as exc:
                    self._outbox.end(exc)  # the reader switches voices now; a stalled server's close may take 1 s
                    raise
                finally:
                    await ws.close()
                self.connections += 1
                quick = not (self._reconnect or self._idle_closed) and time.monotonic() - opened < 1.0
                quick_closes = quick_closes + 1 if quick else 0
                if quick_closes >= 3:
                    raise VoiceUnavailable("the server keeps closing new connections", provider=NAME)
        except VoiceError as exc:
            self._outbox.end(exc)
        except Exception as exc:
            self._outbox.end(VoiceUnavailable(f"voice connection failed: {exc!r}", provider=NAME))
            raise

    async def _wait_for_text(self) -> None:
        while not self._sendq and not self._turns:
            self._wake.clear()
            await self._wake.wait()

    async def _serve(self, ws: ClientConnection) -> None:
        """Run one socket until it must be replaced (:class:`_Reconnect`) or fails (:class:`VoiceError`)."""
        await _send(ws, wire.init_message(self._settings.chunk_length_schedule))
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._send_loop(ws))
                group.create_task(self._recv_loop(ws))
        except BaseExceptionGroup as group_error:
            errors = [e for e in group_error.exceptions if isinstance(e, VoiceError)]
            if errors:
                raise errors[0] from None
            if not all(isinstance(e, _Reconnect) for e in group_error.exceptions):
                raise

    async def _send_loop(self, ws: ClientConnection) -> None:
        while True:
            if self._reconnect:
                raise _Reconnect
            while self._sendq and not self._reconnect:
                await _send(ws, self._sendq.popleft())
                self._last_sent_at = time.monotonic()
            self._wake.clear()
            idle = time.monotonic() - self._last_sent_at
            try:
                async with asyncio.timeout(max(0.0, self._settings.keepalive_s - idle)):
                    await self._wake.wait()
            except TimeoutError:
                await _send(ws, wire.KEEPALIVE)
                self._last_sent_at = time.monotonic()

    async def _recv_loop(self, ws: ClientConnection) -> None:
        while True:
            try:
                async with asyncio.timeout_at(self._deadline()) as self._timer:
                    frame = await ws.recv()
            except TimeoutError:
                await self._on_deadline()
                continue
            except ConnectionClosed as exc:
                raise self._closed_error(exc) from exc
            finally:
                self._timer = None
            if self._reconnect:
                raise _Reconnect  # cancelled: whatever this socket still says is for a dropped turn
            message = wire.parse(frame)
            if isinstance(message, wire.Audio):
                await self._on_audio(message)
            elif isinstance(message, wire.Final):
                while self._turns:
                    await self._finish(self._turns[0])
            await self._finish_ready()

    # -- turns -----------------------------------------------------------------------------------------------------

    def _clock(self, head: _Turn) -> TurnClock:
        assert head.flushed_at is not None
        return TurnClock(head.flushed_at, self._last_sent_at, head.chunker.received_bytes > 0, self._last_audio_at,
                         head.aligner.done)

    def _deadline(self) -> float | None:
        """Loop time by which the head turn must hear from the server, or None (nothing is owed)."""
        head = self._turns[0] if self._turns else None
        if head is None or head.flushed_at is None:
            return None
        due, _ = self._watch.due(self._clock(head))
        return asyncio.get_running_loop().time() + (due - time.monotonic())

    async def _on_deadline(self) -> None:
        if not self._turns or self._turns[0].flushed_at is None:
            return
        head = self._turns[0]
        _, owed = self._watch.due(self._clock(head))
        if owed is Owed.TURN_END or (owed is Owed.MORE_AUDIO and not self._aligned_seen):
            await self._finish(head)
            await self._finish_ready()
        elif owed is Owed.FIRST_AUDIO:
            raise VoiceTimeout(f"no audio {self._watch.first.deadline_s():.2f} s after the turn was flushed",
                               provider=NAME)
        else:
            raise VoiceTimeout(f"audio stopped for {self._watch.gaps.deadline_s():.2f} s in the middle of a turn",
                               provider=NAME)

    async def _on_audio(self, message: wire.Audio) -> None:
        now = time.monotonic()
        if self._turns and self._turns[0].flushed_at is not None:
            self._watch.audio(self._clock(self._turns[0]), now)
        self._last_audio_at = now
        if not self._turns:
            return  # audio for a turn already ended (or cancelled on this socket): nobody is listening for it
        head = self._turns[0]
        self._aligned_seen = self._aligned_seen or bool(message.chars)
        chars = [(piece, ms) for char, ms in message.chars if (piece := head.aligner.consume(char))]
        generation = self._outbox.generation
        for chunk in head.chunker.push(message.audio, chars):
            await self._outbox.put(generation, chunk)

    async def _finish_ready(self) -> None:
        while self._turns:
            head = self._turns[0]
            if head.flushed_at is None or not head.aligner.done:
                return
            quiet = time.monotonic() - self._last_audio_at >= self._settings.turn_end_grace_s
            if head.aligner.text.strip() and len(self._turns) == 1 and not quiet:
                return
            await self._finish(head)

    async def _finish(self, head: _Turn) -> None:
        generation = self._outbox.generation
        rest = head.aligner.rest()
        events: list[VoiceEvent] = [*head.chunker.push(b"", [(rest, 0)] if rest else []), *head.chunker.finish()]
        events.append(TurnEnd(head.turn, head.aligner.text, head.chunker.emitted_ms, (NAME,)))
        if self._turns and self._turns[0] is head:
            self._turns.popleft()
        for event in events:
            await self._outbox.put(generation, event)

    def _closed_error(self, exc: ConnectionClosed) -> VoiceError | _Reconnect:
        code = exc.rcvd.code if exc.rcvd else 1006
        reason = exc.rcvd.reason if exc.rcvd else ""
        error = wire.error_from(reason) if reason else None
        if isinstance(error, VoiceAuthError):
            return error
        if not self._turns and not self._closed:
            self._idle_closed = True  # e.g. the inactivity timeout: a fresh socket when the next turn comes
            return _Reconnect()
        return VoiceUnavailable(f"connection closed mid-turn (code {code}{': ' + reason if reason else ''})",
                                provider=NAME)


async def _send(ws: ClientConnection, message: str) -> None:
    try:
        await ws.send(message)
    except ConnectionClosed as exc:
        raise VoiceUnavailable(f"connection lost while sending: {exc}", provider=NAME) from exc


async def _connect(settings: ElevenLabsSettings) -> ClientConnection:
    url = wire.stream_url(settings.ws_url, settings.voice_id, settings.model_id, settings.inactivity_timeout_s)
    try:
        return await connect(url, additional_headers={"xi-api-key": settings.api_key},
                             open_timeout=settings.connect_timeout_s, close_timeout=1, max_size=2**22)
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            raise VoiceAuthError(f"handshake refused with HTTP {status}", provider=NAME) from exc
        raise VoiceUnavailable(f"handshake refused with HTTP {status}", retryable=status >= 429,
                               provider=NAME) from exc
    except InvalidHandshake as exc:
        raise VoiceProtocolError(f"bad handshake: {exc}", provider=NAME) from exc
    except (OSError, TimeoutError) as exc:
        raise VoiceUnavailable(f"cannot connect to {settings.ws_url}: {exc!r}", provider=NAME) from exc


class ElevenLabsVoice:
    """:class:`~switchboard.tts.base.Voice` for ElevenLabs: ``open`` connects the websocket (pre-open it while the
    call connects); ``render`` fetches a whole prompt over HTTP with the official SDK."""

    name = NAME

    def __init__(self, settings: ElevenLabsSettings) -> None:
        self.settings = settings
        self.cache_key = f"{NAME}:{settings.voice_id}:{settings.model_id}"
        self.watch = VoiceWatch(settings.first_audio_timeout_s, settings.stall_timeout_s,
                                turn_end_grace_s=settings.turn_end_grace_s)
        """Shared by every call's stream: the deadlines follow the provider's observed latencies."""

    async def open(self) -> ElevenLabsStream:
        return ElevenLabsStream(self.settings, await _connect(self.settings), self.watch)

    async def render(self, text: str) -> tuple[AudioChunk, ...]:
        from elevenlabs.client import AsyncElevenLabs  # the SDK is heavy to import: only where it is used
        from elevenlabs.core.api_error import ApiError

        timeout = self.settings.connect_timeout_s + 10
        audio = bytearray()
        try:
            async with httpx.AsyncClient(timeout=timeout) as http, asyncio.timeout(timeout):
                client = AsyncElevenLabs(api_key=self.settings.api_key, base_url=self.settings.base_url,
                                         httpx_client=http)
                async for piece in client.text_to_speech.stream(self.settings.voice_id, text=text,
                                                                model_id=self.settings.model_id,
                                                                output_format="ulaw_8000"):
                    audio += piece
        except ApiError as exc:
            if exc.status_code in (401, 403):
                raise VoiceAuthError(f"HTTP {exc.status_code}: {str(exc.body)[:200]}", provider=NAME) from exc
            raise VoiceUnavailable(f"HTTP {exc.status_code}: {str(exc.body)[:200]}",
                                   retryable=exc.status_code is None or exc.status_code >= 429,
                                   provider=NAME) from exc
        except TimeoutError as exc:
            raise VoiceTimeout("the prompt did not arrive in time", provider=NAME) from exc
        except (OSError, httpx.HTTPError) as exc:
            raise VoiceUnavailable(f"prompt request failed: {exc!r}", provider=NAME) from exc
        if not audio:
            raise VoiceProtocolError("empty audio for a prompt", provider=NAME)
        chunker = Rechunker(0, NAME, self.settings.max_frames)
        return tuple(chunker.push(bytes(audio), spread_chars(text, len(audio) // 8)) + chunker.finish())


__all__ = ["ElevenLabsSettings", "ElevenLabsStream", "ElevenLabsVoice"]
