"""WisprFlow (cloud, primary) as a :class:`~switchboard.transcribe.base.Transcriber`, on our own websocket client.

WisprFlow is a *dictation* API: one utterance per session, the final only after ``commit``. So each track runs
a speech detector (webrtcvad by default, Silero if asked: :func:`~.vad.cloud_detectors`) and
:class:`audio.endpoint.Endpointer` (as :mod:`.local` does), and every utterance gets its own
:class:`~.wisprflow_session.Session`. Packets of ``packet_ms`` are sent as they fill, leading padding included;
at the end of the utterance the last packet is zero-padded, the session committed, and the next socket is
opened ahead of need (also at stream open), so the handshake and auth round trip are off the critical path.

Forced cuts (``max_utterance_ms``: 30 s by default, the app's chain cuts 2 s inside WisprFlow's stall limit; well
under the 6-minute cap) land at a low point up to ``cut_search`` in the past, so packets are streamed eagerly only
up to where no cut can fall; the rest goes at the cut, and the next session starts exactly there: no audio is sent
twice or lost.

Ordering: finals leave in utterance order; partials only for the oldest unfinished utterance (each replaces
the previous). Any session failure is raised from the iterator as the session reported it (auth →
:class:`ProviderAuthError`; close, error reply, auth or final timeout → :class:`ProviderUnavailable`), except
a socket lost before any of our audio went out on it (typically a pre-opened one the server closed as idle):
the server saw nothing, so its packets (and commit) move to a new socket, once per utterance.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

import numpy as np

from audio import STT_RATE
from audio.cutter import Closed, CutEvent, Dropped, Opened, UtteranceCutter
from audio.detectors import ResettableDetector
from audio.endpoint import EndpointConfig, Utterance
from audio.errors import UnsupportedRateError
from switchboard.transcribe.base import Pcm16, TranscriptEvent, check_push
from switchboard.transcribe.errors import TranscriptionError
from switchboard.transcribe.latency import LatencyTracker
from switchboard.transcribe.vad import DetectorPool, cloud_detectors
from switchboard.transcribe.waker import Waker
from switchboard.transcribe.wisprflow_session import Session, SessionConfig, SessionState, SessionSupply
from switchboard.transcribe.wisprflow_wire import PRODUCTION_URL, PROVIDER

log = logging.getLogger(__name__)



@dataclass(slots=True)
class _Utterance:
    """One utterance's session and how far its audio has been handed to it (samples since stream start)."""

    session: Session
    origin: int
    sent_until: int
    start_ms: int
    sent_ms: int
    end_ms: int | None = None
    committed_at: float | None = None
    partial_version: int = 0
    reopened: bool = False


@dataclass(frozen=True, slots=True)
class WisprStreamStats:
    pushed_samples: int
    dropped_samples: int
    sessions: int
    warm_hits: int
    """Utterances that started on a socket opened ahead of need."""
    cold_opens: int
    warm_expired: int
    warm_lost: int
    """Sockets lost before any audio went out on them (replaced, not failures)."""
    aborted: int
    finals: int
    partials: int
    last_final_latency_s: float | None
    """Wall time from the end of the last utterance (commit) to its final event."""


class WisprFlowStream:
    """One track's :class:`~switchboard.transcribe.base.TranscriptStream`; one coroutine iterates it."""

    def __init__(self, track: str, config: SessionConfig, detector: ResettableDetector, detectors: DetectorPool,
                 endpoint: EndpointConfig, warm_ttl_s: float, max_backlog_ms: int,
                 finals: LatencyTracker | None = None) -> None:
        self.track = track
        self._finals = finals if finals is not None else LatencyTracker(config.final_timeout_s)
        self._detector, self._detectors = detector, detectors
        self._cutter = UtteranceCutter(detector, endpoint, max_backlog_ms)
        self._packet = round(config.packet_s * STT_RATE)
        search = max(min(endpoint.samples(endpoint.cut_search_ms), endpoint.samples(endpoint.max_utterance_ms) // 2), 1)
        self._eager_span = endpoint.samples(endpoint.max_utterance_ms) - search - 2 * detector.frame_samples
        self._waker = Waker()
        self._sessions = SessionSupply(config, self._waker.wake, warm_ttl_s)
        self._open: _Utterance | None = None
        self._order: deque[_Utterance] = deque()  # committed ones, then the open one; finals leave from the left
        self._failure: TranscriptionError | None = None
        self._ended = self._closed = self._released = False
        self._counts = dict.fromkeys(("sessions", "finals", "partials"), 0)
        self._latency: float | None = None
        self._sessions.preopen()

    # -- TranscriptStream -----------------------------------------------------------------------------------------

    def push(self, pcm: Pcm16, pts_ms: int) -> None:
        """Append 16 kHz int16 audio whose first sample is at media time ``pts_ms``; never blocks."""
        check_push(pcm, ended=self._ended, track=self.track, provider=PROVIDER)
        if self._cutter.push(pcm, pts_ms) and len(pcm):  # over the backlog bound it is dropped (and counted)
            self._waker.wake()

    def end(self) -> None:
        """No more audio: the open utterance is committed and iteration stops after the last final."""
        self._ended = True
        self._cutter.finish()
        self._waker.wake()

    def __aiter__(self) -> WisprFlowStream:
        return self

    async def __anext__(self) -> TranscriptEvent:
        while not self._closed:
            if self._failure is not None:
                raise self._failure
            try:
                more = self._advance()
                event = self._collect()
            except TranscriptionError as exc:
                self._failure = exc  # the stream is broken: every later call raises the same
                raise
            if event is not None:
                return event
            if self._cutter.flushed and not self._order:
                await self._finish()
                break
            if more:
                await asyncio.sleep(0)  # let the media path run between detector batches
            else:
                # wake to expire the warm socket even if no audio comes
                await self._waker.wait(at=self._sessions.next_deadline())
        raise StopAsyncIteration

    async def aclose(self) -> None:
        """Abandon the stream: every session is cancelled and its socket closed before this returns."""
        self._ended = self._closed = True
        in_use = [u.session for u in self._order]
        self._order.clear()
        self._open = None
        self._waker.wake()
        await self._finish(in_use)

    def stats(self) -> WisprStreamStats:
        c, s, dropped = self._counts, self._sessions.counts, self._cutter.dropped_samples
        return WisprStreamStats(self._cutter.end + dropped, dropped, c["sessions"], s["warm_hits"],
                                s["cold_opens"], s["warm_expired"], s["warm_lost"], s["aborted"], c["finals"],
                                c["partials"], self._latency)

    # -- utterances and sessions (sync) ---------------------------------------------------------------------------

    def _advance(self) -> bool:
        """Run a step of the cutter, start/feed/commit sessions; True if unexamined audio is left."""
        for event in self._cutter.step():
            self._on_cut(event)
        if self._cutter.flushed:
            self._sessions.stop_preopening()
        if self._open is not None:
            limit = min(self._cutter.settled_until, self._open.origin + self._eager_span)
            self._feed(self._open, limit, pad=False)
        self._sessions.tend(asyncio.get_running_loop().time())
        return self._cutter.pending

    def _on_cut(self, event: CutEvent) -> None:
        if isinstance(event, Closed):
            if self._open is None:  # cannot happen: every utterance was opened first
                raise RuntimeError(f"utterance {event.cut} ended with no session open")
            self._commit(self._open, event.cut)
            self._open = None
        elif isinstance(event, Opened):
            self._start(event.start)
        elif isinstance(event, Dropped) and self._open is not None:
            self._discard(self._open)  # too little speech: the endpointer dropped it

    def _start(self, origin: int) -> None:
        session = self._sessions.take()
        self._counts["sessions"] += 1
        ms = self._cutter.ms(origin)
        self._open = _Utterance(session, origin, origin, ms, ms)
        self._order.append(self._open)

    def _feed(self, u: _Utterance, until: int, pad: bool) -> None:
        """Hand ``u``'s session every full packet of audio before ``until``; with ``pad``, the zero-padded
        remainder too."""
        self._renew_if_lost(u)
        step, packets = self._packet, []
        while u.sent_until + step <= until:
            packets.append(self._cutter.view(u.sent_until, u.sent_until + step).tobytes())
            u.sent_until += step
        if pad and u.sent_until < until:
            packet = np.zeros(step, dtype=np.int16)
            tail = self._cutter.view(u.sent_until, until)
            packet[: len(tail)] = tail
            packets.append(packet.tobytes())
            u.sent_until += step
        if packets:
            u.session.feed(packets)
            u.sent_ms = self._cutter.ms(min(u.sent_until, self._cutter.end))

    def _commit(self, u: _Utterance, cut: Utterance) -> None:
        self._feed(u, cut.end_sample, pad=True)
        if not u.session.fed_packets and u.session.state is not SessionState.FAILED:
            self._discard(u)  # an empty cut (cannot happen with min_speech_ms > 0): nothing to commit
            return
        u.end_ms = self._cutter.ms(cut.end_sample)
        u.committed_at = asyncio.get_running_loop().time()
        u.session.commit(self._finals.deadline_s())
        if not self._ended:
            self._sessions.preopen()

    def _renew_if_lost(self, u: _Utterance) -> None:
        """``u``'s socket died before any of its audio went out: move it to a new one, once."""
        if u.session.lost_unused and not u.reopened:
            u.session, u.reopened = self._sessions.replace(u.session), True

    def _discard(self, u: _Utterance) -> None:
        self._order.remove(u)
        self._open = None
        self._sessions.give_back(u.session)

    def _collect(self) -> TranscriptEvent | None:
        """The next event in order, if one is ready; raises the first session failure."""
        for u in self._order:
            self._renew_if_lost(u)
            u.session.check()
        if not self._order:
            return None
        head = self._order[0]
        session = head.session
        if session.final is not None and head.end_ms is not None:
            self._order.popleft()
            self._sessions.retire(session)
            if head.committed_at is not None:
                self._latency = asyncio.get_running_loop().time() - head.committed_at
                self._finals.observe(self._latency)
            if session.language:
                log.debug("track %s: detected language %s", self.track, session.language)
            if session.final:
                self._counts["finals"] += 1
                return TranscriptEvent(self.track, session.final, True, head.start_ms, head.end_ms, PROVIDER)
            return self._collect()
        if session.partial_version > head.partial_version and session.partial:
            head.partial_version = session.partial_version
            self._counts["partials"] += 1
            end_ms = head.end_ms if head.end_ms is not None else head.sent_ms
            return TranscriptEvent(self.track, session.partial, False, head.start_ms, end_ms, PROVIDER)
        return None

    # -- waiting and shutdown -------------------------------------------------------------------------------------

    async def _finish(self, in_use: Sequence[Session] = ()) -> None:
        """Cancel ``in_use`` sessions; wait for every socket to close (each bounded by its close timeout)."""
        self._closed = True
        await self._sessions.aclose(in_use)
        if not self._released:
            self._released = True
            self._detectors.release(self._detector)


class WisprFlowTranscriber:
    """:class:`~switchboard.transcribe.base.Transcriber` for WisprFlow's websocket API (API-key endpoint)."""

    name = "wisprflow"

    def __init__(self, api_key: str, *, ws_url: str = PRODUCTION_URL, key_prefix: str = "Bearer ",
                 packet_ms: int = 1000, auth_timeout_s: float = 3.0, final_timeout_s: float = 5.0,
                 language: Sequence[str] = ("en",), endpoint: EndpointConfig | None = None,
                 detectors: DetectorPool | None = None, warm_ttl_s: float = 8.0, close_timeout_s: float = 1.0,
                 context: Mapping[str, Any] | None = None, max_backlog_ms: int = 60_000,
                 clock: Callable[[], float] | None = None, min_final_timeout_s: float = 0.5) -> None:
        """``clock``: what the auth and final timeouts are measured on (the app passes the loop-lag monitor's
        effective time, so our own overload is not blamed on WisprFlow); None = the event loop's clock.

        The final timeout adapts (:class:`~.latency.LatencyTracker`): 2.5 × the p99 of recent commit → final times
        of this transcriber's streams, within ``[min_final_timeout_s, final_timeout_s]``, so a stalled session is
        given up on after well under a second when WisprFlow usually answers in a few hundred ms."""
        if not api_key:
            raise ValueError("WisprFlow needs an API key (set WISPRFLOW_API_KEY)")
        if not 250 <= packet_ms <= 1000:
            raise ValueError(f"packet_ms must be in 250..1000 (the docs advise ~1 s), got {packet_ms}")
        if urlsplit(ws_url).scheme not in ("ws", "wss"):
            raise ValueError(f"ws_url must be a ws:// or wss:// URL, got {ws_url!r}")
        self._endpoint = endpoint if endpoint is not None else EndpointConfig(sample_rate=STT_RATE,
                                                                              max_utterance_ms=30_000)
        if self._endpoint.sample_rate != STT_RATE:
            raise UnsupportedRateError(f"endpointing runs at {STT_RATE} Hz, not {self._endpoint.sample_rate}")
        if max_backlog_ms < self._endpoint.max_utterance_ms:
            raise ValueError("max_backlog_ms must cover at least one maximal utterance")
        # The client endpoint takes a client JWT as `client_key`; the server endpoint an API key as `api_key`.
        param = "client_key" if urlsplit(ws_url).path.rstrip("/").endswith("client_ws") else "api_key"
        url = f"{ws_url}{'&' if '?' in ws_url else '?'}{param}={quote(key_prefix + api_key, safe='')}"
        self._config = SessionConfig(url, api_key, tuple(language), packet_ms / 1000, auth_timeout_s,
                                     final_timeout_s, close_timeout_s, context, clock)
        self._detectors = detectors if detectors is not None else cloud_detectors("webrtc")
        self._warm_ttl_s = warm_ttl_s
        self._max_backlog_ms = max_backlog_ms
        self.final_latency = LatencyTracker(final_timeout_s, floor_s=min(min_final_timeout_s, final_timeout_s))
        """Commit → final times of every stream: the final timeout follows them."""

    def __repr__(self) -> str:
        return f"WisprFlowTranscriber({self._config!r})"

    async def open(self, track: str, sample_rate: int) -> WisprFlowStream:
        """A stream for ``track``; its first socket is opened now, in the background (errors come from the
        iterator, so a failover composite handles them in one place)."""
        if sample_rate != STT_RATE:
            raise UnsupportedRateError(f"WisprFlow takes {STT_RATE} Hz PCM, got {sample_rate}")
        detector = await self._detectors.acquire()
        return WisprFlowStream(track, self._config, detector, self._detectors, self._endpoint,
                               self._warm_ttl_s, self._max_backlog_ms, self.final_latency)


__all__ = ["WisprFlowStream", "WisprFlowTranscriber", "WisprStreamStats"]
