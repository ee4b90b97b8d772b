"""A voice that falls back: ElevenLabs → Piper → espeak-ng behind the same :class:`VoiceStream` seam.

The composite keeps, for every turn still being spoken, its text and how far the audio already yielded has
voiced it (``chars_end``). When the current voice fails (its iterator raises a ``VoiceError``: auth, drop,
stall, garbage), the next voice is opened and given what is left: the unvoiced rest of each flushed turn as a
whole turn, and the rest of the turn being composed as pushed text. Chunks keep the composite's turn numbers,
and their offsets and ``chars_end`` continue from where the failed voice stopped, so the call sees one turn with
two providers (``TurnEnd.providers``). The caller hears the failed voice's last audio (Twilio has it queued),
then the next voice after at most the failure detection time (ElevenLabs' ``stall_timeout_s``, 0.6 s by default)
plus the next voice's first audio (espeak-ng ≈ 20 ms, Piper ≈ 0.2–0.4 s a sentence). Peer design:
livekit-agents ``tts.FallbackAdapter``.

:class:`PromptCache` keeps whole prompts (the greeting) rendered per voice, so ``say`` of a cached prompt at the
start of a call yields its audio at once instead of waiting for synthesis.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from switchboard.tasks import cancel_and_wait
from switchboard.tts.base import AudioChunk, TurnEnd, Voice, VoiceEvent, VoiceStream
from switchboard.tts.errors import VoiceClosedError, VoiceError, VoiceUnavailable
from switchboard.tts.outbox import Outbox

log = logging.getLogger(__name__)


def cache_key(voice: Voice) -> str:
    """Which voice made a prompt's audio: the provider and, where it has one, its voice id."""
    return str(getattr(voice, "cache_key", voice.name))


class PromptCache:
    """Rendered prompts per (voice, text), at most ``max_entries`` (the oldest goes first)."""

    def __init__(self, max_entries: int = 64) -> None:
        self._entries: OrderedDict[tuple[str, str], tuple[AudioChunk, ...]] = OrderedDict()
        self._max = max_entries

    def get(self, voice: str, text: str) -> tuple[AudioChunk, ...] | None:
        return self._entries.get((voice, text))

    def put(self, voice: str, text: str, chunks: tuple[AudioChunk, ...]) -> None:
        self._entries[(voice, text)] = chunks
        self._entries.move_to_end((voice, text))
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(slots=True)
class _Turn:
    turn: int
    text: str = ""
    flushed: bool = False
    chars: int = 0
    audio_ms: int = 0
    providers: list[str] = field(default_factory=list)
    base_chars: int = 0
    base_ms: int = 0


class FallbackVoice:
    """:class:`~switchboard.tts.base.Voice` over ``voices`` in order of preference."""

    name = "fallback"

    def __init__(self, voices: Sequence[Voice], cache: PromptCache | None = None) -> None:
        if not voices:
            raise ValueError("FallbackVoice needs at least one voice")
        self.voices = tuple(voices)
        self.cache = PromptCache() if cache is None else cache

    async def open(self) -> FallbackStream:
        stream = FallbackStream(self.voices, self.cache)
        await stream.start()
        return stream

    async def render(self, text: str) -> tuple[AudioChunk, ...]:
        error: VoiceError | None = None
        for voice in self.voices:
            try:
                return await voice.render(text)
            except VoiceError as exc:
                log.warning("voice %s could not render a prompt: %s", voice.name, exc)
                error = exc
        assert error is not None
        raise error

    async def warm(self, text: str) -> str:
        """Render ``text`` with the first voice that can and cache it; returns that voice's cache key."""
        for voice in self.voices:
            key = cache_key(voice)
            if self.cache.get(key, text) is not None:
                return key
            try:
                self.cache.put(key, text, await voice.render(text))
                return key
            except VoiceError as exc:
                log.warning("voice %s could not render a prompt: %s", voice.name, exc)
        raise VoiceUnavailable("no voice could render the prompt", provider=self.name)


class FallbackStream:
    def __init__(self, voices: Sequence[Voice], cache: PromptCache) -> None:
        self._voices = voices
        self._cache = cache
        self._index = -1
        self._inner: VoiceStream | None = None
        self._used: list[VoiceStream] = []
        self._map: dict[int, _Turn] = {}
        self._turns: dict[int, _Turn] = {}
        self._turn = 1
        self._outbox = Outbox()
        self._closed = False
        self._pump: asyncio.Task[None] | None = None
        self.switches: list[tuple[str, str]] = []
        """``(failed provider, reason)`` for every switch, in order."""

    async def start(self) -> None:
        await self._next_voice(None)
        self._pump = asyncio.get_running_loop().create_task(self._run(), name="voice-fallback")

    @property
    def provider(self) -> str:
        return self._inner.provider if self._inner is not None else "none"

    @property
    def turn(self) -> int:
        return self._turn

    def push_text(self, text: str) -> None:
        self._check_open()
        state = self._current()
        state.text += text
        assert self._inner is not None
        self._map[self._inner.turn] = state
        self._inner.push_text(text)

    def flush(self) -> int:
        self._check_open()
        state = self._current()
        state.flushed = True
        assert self._inner is not None
        self._map[self._inner.flush()] = state
        self._turn += 1
        return state.turn

    def say(self, text: str) -> int:
        self._check_open()
        assert self._inner is not None
        cached = self._cache.get(cache_key(self._voices[self._index]), text)
        if cached is None or self._turns:
            self.push_text(text)
            return self.flush()
        turn = self._turn  # nothing else is being spoken or composed: the cached audio can go out now, in order
        self._turn += 1
        generation = self._outbox.generation
        for chunk in cached:
            self._outbox.put_nowait(generation, replace(chunk, turn=turn))
        self._outbox.put_nowait(generation, TurnEnd(turn, text, sum(c.duration_ms for c in cached),
                                                    (cached[0].provider,) if cached else ()))
        return turn

    def cancel(self) -> None:
        self._outbox.cancel()
        if self._inner is not None:
            self._inner.cancel()
        if self._turn in self._turns:
            self._turn += 1
        self._turns.clear()
        self._map.clear()

    def characters(self) -> Mapping[str, int]:
        total: dict[str, int] = {}
        for stream in self._used:
            for name, count in stream.characters().items():
                total[name] = total.get(name, 0) + count
        return total

    def __aiter__(self) -> FallbackStream:
        return self

    async def __anext__(self) -> VoiceEvent:
        return await self._outbox.get()

    async def aclose(self) -> None:
        self._closed = True
        self._outbox.end()
        if self._pump is not None:
            await cancel_and_wait(self._pump)
        for stream in self._used:
            await stream.aclose()

    # -- internals ----------------------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed or self._outbox.ended:
            raise VoiceClosedError("text pushed to a closed voice stream", provider="fallback")

    def _current(self) -> _Turn:
        if self._turn not in self._turns:
            self._turns[self._turn] = _Turn(self._turn)
        return self._turns[self._turn]

    async def _run(self) -> None:
        while True:
            assert self._inner is not None
            try:
                async for event in self._inner:
                    await self._forward(event)
                self._outbox.end()
                return
            except VoiceError as exc:
                log.warning("voice %s failed, switching: %s", exc.provider, exc)
                self.switches.append((exc.provider, exc.message))
                failed = self._inner
                try:
                    await self._next_voice(exc)
                except VoiceError as last:
                    self._outbox.end(last)
                    return
                self._resume()
                await failed.aclose()

    async def _forward(self, event: VoiceEvent) -> None:
        generation = self._outbox.generation
        state = self._map.get(event.turn)
        if state is None:
            return  # a turn cancelled (or served from the cache) in the meantime
        if isinstance(event, AudioChunk):
            chunk = replace(event, turn=state.turn, offset_ms=state.base_ms + event.offset_ms,
                            chars_end=state.base_chars + event.chars_end)
            state.chars, state.audio_ms = chunk.chars_end, chunk.offset_ms + chunk.duration_ms
            if event.provider not in state.providers:
                state.providers.append(event.provider)
            await self._outbox.put(generation, chunk)
            return
        del self._map[event.turn]
        self._turns.pop(state.turn, None)
        await self._outbox.put(generation, TurnEnd(state.turn, state.text, state.audio_ms, tuple(state.providers)))

    async def _next_voice(self, error: VoiceError | None) -> None:
        """Open the next voice that opens; raise the last error when none is left."""
        while self._index + 1 < len(self._voices):
            self._index += 1
            voice = self._voices[self._index]
            try:
                self._inner = await voice.open()
            except VoiceError as exc:
                log.warning("voice %s cannot open: %s", voice.name, exc)
                self.switches.append((exc.provider, exc.message))
                error = exc
                continue
            self._used.append(self._inner)
            return
        raise error or VoiceUnavailable("no voice could be opened", provider="fallback")

    def _resume(self) -> None:
        """Give the new voice what the failed one left unsaid, turn by turn, in order."""
        assert self._inner is not None
        pending = sorted(self._turns.values(), key=lambda t: t.turn)
        self._map.clear()
        for state in pending:
            state.base_chars, state.base_ms = state.chars, state.audio_ms
            rest = state.text[state.chars:]
            if state.flushed:
                self._inner.push_text(rest)
                self._map[self._inner.flush()] = state
            else:
                self._map[self._inner.turn] = state
                if rest:
                    self._inner.push_text(rest)


__all__ = ["FallbackStream", "FallbackVoice", "PromptCache", "cache_key"]
