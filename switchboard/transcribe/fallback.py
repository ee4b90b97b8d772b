"""Lossless failover across transcription providers: a composite that is itself a ``Transcriber``.

``FallbackTranscriber(primary, *backups, breaker=...)`` opens, per track, the first provider whose circuit
breaker allows a call (if none does, the first anyway: it never gives up while a provider is left). The
stream keeps the audio not yet covered by a final (:class:`_ReplayBuffer`); when the provider fails it is
closed in the background, the next one is opened, the buffered audio is replayed with its original
``pts_ms``, and new pushes follow. Events whose ``end_ms`` is not past the last final already emitted are
dropped, so the overlap the new provider re-recognises is not repeated and events stay in media-time order.

A provider has failed when (each failure is recorded on the shared breaker and announced in the stream, before
the next provider's first event, as a :class:`~switchboard.transcribe.base.ProviderSwitched`):

* ``open`` raises ``TranscriptionError`` or takes longer than ``open_timeout_s``   → ``open_error``
* its iterator raises ``TranscriptionError``, or its ``push`` does                 → ``stream_error``
* its iterator ends before ``end()`` was called                                     → ``early_end``
* speech was pushed ``stall_timeout_s`` ago and it has emitted nothing since       → ``stall``
  (speech = a push whose RMS is at least ``speech_rms``: silence must not look like a stall)
* after ``end()``, it neither emits nor finishes for ``stall_timeout_s``, or it finishes with words shown
  in a partial but never finalised                                                  → ``missing_final``

Time-based failures are decided by a :class:`~.failover_watch.FailoverWatch` (sans-I/O, only while another
provider is left to switch to). A provider fails at most once per stream; when every one has, the iterator
yields the switches it made and then raises :class:`ProviderUnavailable`. Deadlines are computed from ``clock``
(tests step a fake one); ``poll_s`` caps each real sleep so a clock other than the loop's is still looked at.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from audio.media_time import ms_to_samples, samples_to_ms
from switchboard.transcribe.base import (
    Pcm16,
    ProviderSwitched,
    StreamItem,
    SwitchReason,
    Transcriber,
    TranscriptEvent,
    TranscriptStream,
    check_push,
)
from switchboard.transcribe.breaker import CircuitBreakerBoard
from switchboard.transcribe.errors import ProviderUnavailable, TranscriptionError
from switchboard.transcribe.failover_watch import FailoverWatch
from switchboard.transcribe.waker import Waker

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FallbackStats:
    provider: str | None
    switches: int
    buffered_ms: int
    overflow_ms: int
    """Audio dropped from the front of a full replay buffer: it could no longer be replayed."""
    duplicates_dropped: int


@dataclass(frozen=True, slots=True)
class _Failure:
    reason: SwitchReason
    detail: str
    retryable: bool = True


_Outcome = StreamItem | _Failure | None
"""What a provider did next: an event, a failure, or ``None`` = its iterator ended."""


async def _pull(inner: TranscriptStream) -> _Outcome:
    """The provider's next outcome as a value, so an abandoned pull never leaves an unretrieved exception."""
    try:
        return await inner.__anext__()
    except StopAsyncIteration:
        return None
    except TranscriptionError as exc:
        return _Failure(SwitchReason.STREAM_ERROR, str(exc), exc.retryable)


class _ReplayBuffer:
    """(pts_ms, pcm) chunks not yet covered by a final; beyond ``max_ms`` the oldest go (counted),
    which only matters if a provider gives no final for that long and then fails."""

    def __init__(self, rate: int, max_ms: int) -> None:
        self._rate, self._max = rate, ms_to_samples(max_ms, rate)
        self._chunks: deque[tuple[int, Pcm16]] = deque()
        self.samples = self.overflow_samples = 0

    def append(self, pts_ms: int, pcm: Pcm16) -> None:
        self._chunks.append((pts_ms, pcm.copy()))  # the caller may reuse its array
        self.samples += len(pcm)
        while self.samples > self._max and len(self._chunks) > 1:
            dropped = len(self._chunks.popleft()[1])
            self.samples -= dropped
            self.overflow_samples += dropped

    def trim_before(self, ms: int) -> None:
        """Forget audio before media time ``ms``, cutting a chunk that straddles it to the sample."""
        while self._chunks:
            pts, pcm = self._chunks[0]
            cut = min(len(pcm), max(0, ms_to_samples(ms - pts, self._rate)))
            if cut == 0:
                return
            self.samples -= cut
            if cut < len(pcm):
                self._chunks[0] = (ms, pcm[cut:])
                return
            self._chunks.popleft()

    @property
    def start_ms(self) -> int | None:
        return self._chunks[0][0] if self._chunks else None

    def __iter__(self) -> Iterator[tuple[int, Pcm16]]:
        return iter(self._chunks)


class FallbackStream:
    """One track across providers; one coroutine iterates it (the ``TranscriptStream`` contract)."""

    def __init__(self, owner: FallbackTranscriber, track: str, sample_rate: int) -> None:
        self.track, self.rate, self._owner = track, sample_rate, owner
        self._clock = owner.clock
        self._buffer = _ReplayBuffer(sample_rate, owner.max_buffer_ms)
        self._watch = FailoverWatch(owner.answer_slack_ms)
        self._announce: deque[ProviderSwitched] = deque()  # switches made, not yet yielded
        self._gave_up: ProviderUnavailable | None = None  # raised once the switches before it are out
        self._switches = 0
        self._failed: set[int] = set()
        self._index: int | None = None
        self._inner: TranscriptStream | None = None
        self._next: asyncio.Task[_Outcome] | None = None  # the inner __anext__ in flight, kept across waits
        self._retiring: list[asyncio.Task[None]] = []  # at most one per provider: each fails once per stream
        self._waker = Waker()
        self._push_error: TranscriptionError | None = None
        self._ended = self._closed = self._answered = False
        self._last_final_end = self._shown_end = -1
        self._media_end = self._duplicates = 0

    @property
    def provider(self) -> str | None:
        """Name of the provider serving the track now."""
        return None if self._index is None else self._owner.providers[self._index].name

    def push(self, pcm: Pcm16, pts_ms: int) -> None:
        """Buffer for replay and forward; a provider's push error is kept for the iterator to act on."""
        check_push(pcm, ended=self._ended, track=self.track, provider=self._owner.name)
        self._forward(pcm, pts_ms)  # first, so audio the provider rejects as malformed is not kept either
        self._buffer.append(pts_ms, pcm)
        end_ms = pts_ms + samples_to_ms(len(pcm), self.rate)
        self._media_end = max(self._media_end, end_ms)
        if self._is_speech(pcm) and self._watch.speech_pushed(self._clock(), end_ms):
            self._waker.wake()  # a stall deadline now exists

    def end(self) -> None:
        if not self._ended:
            self._ended = True
            self._watch.audio_ended(self._clock())
            if self._inner is not None:
                self._inner.end()
            self._waker.wake()

    def __aiter__(self) -> FallbackStream:
        return self

    async def __anext__(self) -> StreamItem:
        while True:
            if self._announce and not self._closed:
                return self._announce.popleft()
            if self._gave_up is not None:
                raise self._gave_up
            if (inner := self._inner) is None:
                break
            outcome = await self._wait_outcome(inner)
            if self._closed:
                break
            if isinstance(outcome, ProviderSwitched):  # a nested composite's own switch: pass it on
                return outcome
            if isinstance(outcome, TranscriptEvent):
                event = self._accept(outcome)
                if event is not None:
                    return event
                continue
            if outcome is None:  # the provider's iterator ended
                if not self._ended:
                    outcome = _Failure(SwitchReason.EARLY_END, "iterator ended before end()")
                elif self._shown_end > self._last_final_end and self._has_candidate():
                    outcome = _Failure(SwitchReason.MISSING_FINAL, "ended with words never finalised")
                else:
                    if not self._answered:  # a clean end counts as health (a silent track has no results)
                        self._owner.breaker.record_success(self._name())
                    self._retire()
                    await self._drain_retiring()
                    break
            try:
                await self._fail_over(outcome)
            except ProviderUnavailable as exc:
                self._gave_up = exc
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Close the current provider and wait (bounded) for every retired one; idempotent."""
        self._closed = self._ended = True
        self._retire()
        self._waker.wake()
        await self._drain_retiring()

    def stats(self) -> FallbackStats:
        ms = 1000 / self.rate
        return FallbackStats(self.provider, self._switches, round(self._buffer.samples * ms),
                             round(self._buffer.overflow_samples * ms), self._duplicates)

    async def _connect(self, failed: str | None = None, failure: _Failure | None = None) -> None:
        """Open the next provider left (breakers first) and replay the buffer into it."""
        owner, last = self._owner, None
        while (index := self._choose()) is not None:
            provider = owner.providers[index]
            if failed is not None and failure is not None:
                self._note_switch(failed, provider.name, failure)
            try:
                async with asyncio.timeout(owner.open_timeout_s):
                    inner = await provider.open(self.track, self.rate)
            except (TranscriptionError, TimeoutError) as exc:
                last, retryable = exc, exc.retryable if isinstance(exc, TranscriptionError) else True
                failed, failure = provider.name, _Failure(SwitchReason.OPEN_ERROR, str(exc) or "timed out", retryable)
                owner.breaker.record_failure(provider.name, f"open_error: {failure.detail}", retryable=retryable)
                self._failed.add(index)
                continue
            if self._closed:  # aclose() ran while we were opening
                await self._close(inner, None)
            else:
                self._install(index, inner)
            return
        raise ProviderUnavailable(f"every provider failed on track {self.track!r}", retryable=False,
                                  provider=owner.name) from last

    def _install(self, index: int, inner: TranscriptStream) -> None:
        self._index, self._inner, self._push_error = index, inner, None
        self._answered, self._shown_end = False, -1
        now = self._clock()
        self._watch.provider_opened(now, self._stall_timeout(), armed=self._has_candidate())
        for pts, pcm in self._buffer:  # replay: original timestamps, in order
            if self._is_speech(pcm):
                self._watch.speech_pushed(now, pts + samples_to_ms(len(pcm), self.rate))
            self._forward(pcm, pts)
        if self._ended:
            inner.end()

    def _is_speech(self, pcm: Pcm16) -> bool:
        x = pcm.astype(np.float32)
        return len(x) > 0 and float(np.dot(x, x)) >= self._owner.speech_rms**2 * len(x)

    def _forward(self, pcm: Pcm16, pts_ms: int) -> None:
        if self._inner is not None and self._push_error is None:
            try:
                self._inner.push(pcm, pts_ms)
            except TranscriptionError as exc:
                self._push_error = exc
                self._waker.wake()

    async def _wait_outcome(self, inner: TranscriptStream) -> _Outcome:
        """The provider's next event, ``None`` when its iterator ended, or why it is deemed failed."""
        while not self._closed:
            if self._push_error is not None:
                return _Failure(SwitchReason.STREAM_ERROR, f"push: {self._push_error}", self._push_error.retryable)
            if self._next is None:
                self._next = asyncio.create_task(_pull(inner), name=f"fallback:{self.track}:{self.provider}")
            task = self._next
            timeout = None
            if (deadline := self._watch.next_deadline()) is not None:
                if (reason := self._watch.on_timer(now := self._clock())) is not None:
                    return _Failure(reason, f"nothing for {self._watch.stall_limit_s:g} s")
                timeout = min(deadline - now, self._owner.poll_s)
            if not task.done():
                await self._waker.wait(within=timeout, task=task)
            if task.done() and not self._closed:
                self._next = None
                return task.result()
        return None

    def _accept(self, event: TranscriptEvent) -> TranscriptEvent | None:
        """Note the provider is alive; drop what the transcript already covers; trim the replay buffer."""
        self._watch.result(self._clock(), event.end_ms, self._last_final_end)
        if not self._answered:
            self._answered = True
            self._owner.breaker.record_success(self._name())
        if event.end_ms <= self._last_final_end:
            self._duplicates += 1
            return None
        if event.is_final:
            self._last_final_end = event.end_ms
            self._buffer.trim_before(event.end_ms - self._owner.overlap_ms)
        else:
            self._shown_end = max(self._shown_end, event.end_ms)
        return event

    async def _fail_over(self, failure: _Failure) -> None:
        assert self._index is not None  # only called while a provider is installed
        name = self._name()
        log.warning("track %s: %s failed (%s: %s) at %d ms", self.track, name, failure.reason, failure.detail,
                    self._media_end)
        self._owner.breaker.record_failure(name, f"{failure.reason}: {failure.detail}", retryable=failure.retryable)
        self._failed.add(self._index)
        self._retire()
        await self._connect(name, failure)

    def _retire(self) -> None:
        """Close the current provider in the background, so a hung close never delays the backup."""
        inner, pending, self._inner, self._next = self._inner, self._next, None, None
        if inner is not None:
            self._retiring.append(asyncio.create_task(self._close(inner, pending), name=f"retire:{self.track}"))

    async def _close(self, inner: TranscriptStream, pending: asyncio.Task[_Outcome] | None) -> None:
        try:
            async with asyncio.timeout(self._owner.close_timeout_s):
                if pending is not None:
                    pending.cancel()  # a late event from a replaced provider is dropped by design
                    await asyncio.wait((pending,))
                await inner.aclose()
        except (TranscriptionError, TimeoutError) as exc:
            log.warning("track %s: closing a replaced provider: %r", self.track, exc)

    async def _drain_retiring(self) -> None:
        await asyncio.gather(*self._retiring)

    def _choose(self) -> int | None:
        left = [i for i in range(len(self._owner.providers)) if i not in self._failed]
        for i in left:
            if self._owner.breaker.allow(self._owner.providers[i].name):
                return i
        return left[0] if left else None

    def _has_candidate(self) -> bool:
        return len(self._failed) + 1 < len(self._owner.providers)

    def _name(self) -> str:
        return self.provider or ""

    def _stall_timeout(self) -> float:
        return self._owner.stall_timeouts.get(self._name(), self._owner.stall_timeout_s)

    def _note_switch(self, from_provider: str, to_provider: str, failure: _Failure) -> None:
        self._switches += 1
        self._announce.append(ProviderSwitched(self.track, from_provider, to_provider, failure.reason,
                                               self._media_end, self._buffer.start_ms, failure.detail))



@runtime_checkable
class _Warmable(Protocol):
    async def warm(self) -> None: ...


class FallbackTranscriber:
    """:class:`~switchboard.transcribe.base.Transcriber` over an ordered chain of providers; events keep the
    real provider's name. ``stall_timeouts`` overrides ``stall_timeout_s`` per provider name (a provider that
    answers only per utterance needs longer than one that streams partials)."""

    name = "fallback"

    def __init__(self, primary: Transcriber, *backups: Transcriber, breaker: CircuitBreakerBoard,
                 clock: Callable[[], float] = time.monotonic, stall_timeout_s: float = 4.0,
                 stall_timeouts: Mapping[str, float] | None = None, open_timeout_s: float = 5.0,
                 close_timeout_s: float = 1.0, overlap_ms: int = 200, max_buffer_ms: int = 60_000,
                 speech_rms: float = 200.0, poll_s: float = 1.0, answer_slack_ms: int = 1000) -> None:
        """``answer_slack_ms``: speech ending within this of a result's end counts as answered by it (a word's
        end time and the end of its energy differ; a provider says nothing about a trailing breath)."""
        if min(stall_timeout_s, open_timeout_s, close_timeout_s, poll_s) <= 0 or min(overlap_ms, answer_slack_ms) < 0:
            raise ValueError("timeouts and poll_s must be > 0, overlap_ms and answer_slack_ms >= 0")
        self.providers: tuple[Transcriber, ...] = (primary, *backups)
        self.breaker, self.clock = breaker, clock
        self.stall_timeout_s, self.stall_timeouts = stall_timeout_s, dict(stall_timeouts or {})
        self.open_timeout_s, self.close_timeout_s, self.poll_s = open_timeout_s, close_timeout_s, poll_s
        self.overlap_ms, self.max_buffer_ms, self.speech_rms = overlap_ms, max_buffer_ms, speech_rms
        self.answer_slack_ms = answer_slack_ms
        breaker.register(*(p.name for p in self.providers))

    async def warm(self) -> None:
        """Warm every backup that can be (``warm()``: the local engine loads its model), so that failing over to it
        costs no cold start; the app runs this once, in the background, at startup."""
        for provider in self.providers[1:]:
            if isinstance(provider, _Warmable):
                await provider.warm()

    async def open(self, track: str, sample_rate: int) -> FallbackStream:
        """A stream on the first provider that opens; ``ProviderUnavailable`` only if every one fails."""
        stream = FallbackStream(self, track, sample_rate)
        await stream._connect()
        return stream


__all__ = ["FallbackStats", "FallbackStream", "FallbackTranscriber"]
