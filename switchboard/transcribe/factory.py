"""The configured transcription chain, built once by the app's lifespan.

``SWITCHBOARD_TRANSCRIBER=null`` gives :class:`~.null.NullTranscriber`. Otherwise local Moonshine is the floor and
each cloud provider whose key is set goes in front of it, in the order the issue fixes: WisprFlow → Deepgram →
local. With no cloud key the result is the plain :class:`~.local.LocalTranscriber` (no failover wrapper, nothing
to fail over to); with one it is a :class:`~.fallback.FallbackTranscriber` sharing the app's
:class:`~.breaker.CircuitBreakerBoard`.

WisprFlow's utterances are cut by webrtcvad unless ``SWITCHBOARD_CLOUD_VAD=silero``: the cloud recognises the
words, our detector only finds the pauses, and Silero there cost ~40 CPU-ms per call-second (``vad.py``).

Stall limits: a streaming provider (Deepgram) answers within a second of speech, so ``stt_stall_s`` (4 s) of
silence while speech flows is a failure. WisprFlow answers once per utterance, after ``commit``, so it gets
``wispr_stall_s`` (12 s) and its utterances are force-cut 2 s shorter than that: an utterance longer than the
stall limit would otherwise look like a stall every time someone talks without pausing. (A missing final after a
commit is caught sooner, by the WisprFlow client's own 5 s final timeout.)

Time: the stall watchdogs run on the breakers' clock, which the app makes the event loop's effective time
(:class:`~switchboard.loop_lag.LoopLagMonitor`): a server too loaded to read its sockets does not blame them. So do
WisprFlow's own auth and final timeouts (:class:`~switchboard.clock_timeout.ClockTimeout`).

Replay: on failover the unfinalised audio (up to ``REPLAY_MS``) reaches the next provider in one synchronous
burst, so Deepgram's send backlog bound is set above it: at its 10 s default, a WisprFlow failure with more than
10 s of unfinalised audio made Deepgram fail on its own replay and sent the call on to local.

Everything built here that holds resources is closed through the caller's ``AsyncExitStack``; building opens no
socket and loads no model (the recogniser loads on first use, a cloud socket opens per call).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from switchboard.config import Settings
from switchboard.transcribe.base import Transcriber
from switchboard.transcribe.breaker import BreakerConfig, CircuitBreakerBoard

if TYPE_CHECKING:
    from switchboard.transcribe.moonshine import RecognizerPool
    from switchboard.transcribe.vad import DetectorPool

RATE = 16_000
REPLAY_MS = 60_000
"""Audio the failover keeps for replay (since the last final). The next provider receives it in one burst."""
WISPR_CUT_MARGIN_S = 2.0
"""Forced cuts of WisprFlow utterances come this much before its stall limit (hangover and final latency)."""


@runtime_checkable
class _Closeable(Protocol):
    """A provider holding something between calls. Today's cloud clients hold nothing (sockets are per stream
    and closed with it); one that grows an ``aclose()`` is closed with the app."""

    async def aclose(self) -> None: ...


def breaker_config(settings: Settings) -> BreakerConfig:
    """The shared breaker's thresholds from settings (window and back-off keep their defaults)."""
    defaults = BreakerConfig()
    return BreakerConfig(failure_threshold=settings.breaker_failures, cooldown_s=settings.breaker_cooldown_s,
                         max_cooldown_s=max(defaults.max_cooldown_s, settings.breaker_cooldown_s))


def chain_names(settings: Settings) -> tuple[str, ...]:
    """Provider names in failover order, as :func:`build_transcriber` will build them."""
    if settings.transcriber == "null":
        return ("null",)
    clouds = (("wisprflow", settings.wisprflow_api_key), ("deepgram", settings.deepgram_api_key))
    return (*(name for name, key in clouds if key is not None), "local")


def build_transcriber(settings: Settings, stack: AsyncExitStack, breakers: CircuitBreakerBoard,
                      recognizers: RecognizerPool | None = None) -> Transcriber:
    """The transcriber the settings ask for; its resources are released when ``stack`` closes.

    ``recognizers`` replaces the local engine's pool (the caller owns it): end-to-end tests give the local leg
    a recogniser whose words they can check exactly."""
    if settings.transcriber == "null":
        from switchboard.transcribe.null import NullTranscriber

        return NullTranscriber()
    from switchboard.transcribe.local import LocalTranscriber
    from switchboard.transcribe.moonshine import RecognizerPool, moonshine_factory
    from switchboard.transcribe.vad import DetectorPool

    pool = recognizers
    if pool is None:
        pool = RecognizerPool(workers=settings.stt_workers, engine_factory=moonshine_factory(
            settings.stt_beam, settings.stt_vocabulary, settings.stt_bias))
        stack.push_async_callback(pool.aclose)
    silero = DetectorPool()  # one free list of Silero sessions for every provider that endpoints with it
    local = LocalTranscriber(pool, detectors=silero)
    clouds = _clouds(settings, silero, breakers.clock)
    for provider in clouds:
        if isinstance(provider, _Closeable):
            stack.push_async_callback(provider.aclose)
    if not clouds:
        return local
    from switchboard.transcribe.fallback import FallbackTranscriber

    return FallbackTranscriber(*clouds, local, breaker=breakers, clock=breakers.clock,
                               stall_timeout_s=settings.stt_stall_s,
                               stall_timeouts={"wisprflow": settings.wispr_stall_s}, max_buffer_ms=REPLAY_MS)


def _clouds(settings: Settings, silero: DetectorPool, clock: Callable[[], float]) -> list[Transcriber]:
    """The keyed cloud providers, in failover order; constructing them opens no socket."""
    from audio.endpoint import EndpointConfig
    from switchboard.transcribe.vad import cloud_detectors

    out: list[Transcriber] = []
    if settings.wisprflow_api_key is not None:
        from switchboard.transcribe.wisprflow import WisprFlowTranscriber

        cut_ms = round((settings.wispr_stall_s - WISPR_CUT_MARGIN_S) * 1000)
        endpoint = EndpointConfig(sample_rate=RATE, max_utterance_ms=min(30_000, cut_ms))
        out.append(WisprFlowTranscriber(settings.wisprflow_api_key.reveal(), ws_url=settings.wispr_ws_url,
                                        endpoint=endpoint, detectors=cloud_detectors(settings.cloud_vad, silero),
                                        clock=clock))
    if settings.deepgram_api_key is not None:
        from switchboard.transcribe.deepgram import DeepgramTranscriber

        out.append(DeepgramTranscriber(settings.deepgram_api_key.reveal(), base_url=settings.deepgram_url,
                                       max_backlog_ms=REPLAY_MS + 10_000, vocabulary=settings.stt_vocabulary))
    return out


__all__ = ["breaker_config", "build_transcriber", "chain_names"]
