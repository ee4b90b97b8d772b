"""``create_app(settings)``: the Starlette app; its lifespan builds, owns and tears down every service.

Start order: database (embedded if no ``DATABASE_URL``) → migrations → segment writer → circuit breakers and the
transcription chain (:mod:`switchboard.transcribe.factory`: cloud providers with keys, then the local recogniser
pool) → hub → post-call services → calls this instance left live when it died are finished
(:mod:`switchboard.recovery`). Shutdown is the reverse, after live calls drain: uvicorn closes the media sockets,
every CallSession finalises (recording closed, last words recognised, provider sockets closed, call row ended),
then the writer flushes and the pool stops.

Background loops (segment writer, archive spool, job worker) run under the :class:`Supervisor`: a crash restarts
the loop with backoff instead of tearing down the lifespan, and one given up for dead fails ``/healthz``. The
:class:`Lifecycle` (admission, live calls, supervisor) is made before the lifespan so the process around the app
can drain it on SIGTERM (:mod:`switchboard.serving`). Every request passes the :class:`Limits` middleware first.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route, WebSocketRoute

from switchboard.agent.answer import AnswerMode
from switchboard.alerts.sms import SmsAlerter
from switchboard.call.agent_runtime import AgentRuntime
from switchboard.call.registry import CallRegistry
from switchboard.config import Settings
from switchboard.lifecycle import Lifecycle
from switchboard.limits import Limits
from switchboard.live import InMemoryHub
from switchboard.loop_lag import LoopLagMonitor
from switchboard.metrics import Metrics
from switchboard.postcall import build_post_call
from switchboard.recovery import instance_id, recover_orphaned_calls
from switchboard.routes import api, live_ws, media_ws, outbound, twilio_http
from switchboard.routes.errors import EXCEPTION_HANDLERS
from switchboard.services import Services
from switchboard.store.embedded import EmbeddedPostgres
from switchboard.store.pg import PgStore
from switchboard.store.writer import SegmentWriter
from switchboard.tokens import StreamTokens
from switchboard.transcribe.base import Transcriber
from switchboard.transcribe.breaker import BreakerState, CircuitBreakerBoard
from switchboard.transcribe.factory import breaker_config, build_transcriber
from switchboard.transcribe.fallback import FallbackTranscriber
from switchboard.tts.factory import VoiceConfig, build_voice
from switchboard.twilio.calls import TwilioCalls
from switchboard.web import pages
from switchboard.web.sessions import SessionBook

if TYPE_CHECKING:  # for the annotation only: the factory imports the local engine when it is used
    from switchboard.transcribe.moonshine import RecognizerPool

log = logging.getLogger(__name__)

DRAIN_TIMEOUT_S = 150.0


async def _database(settings: Settings, stack: AsyncExitStack) -> PgStore:
    if settings.database_url is not None:
        dsn = settings.database_url.reveal()
    else:
        embedded = EmbeddedPostgres(settings.data_dir / "postgres")
        dsn = await embedded.start()
        stack.push_async_callback(embedded.stop)
        log.info("embedded PostgreSQL under %s", settings.data_dir / "postgres")
    store = await PgStore.connect(dsn)
    stack.push_async_callback(store.close)
    return store


def _metrics(registry: CallRegistry, hub: InMemoryHub, writer: SegmentWriter,
             breakers: CircuitBreakerBoard, loop_lag: LoopLagMonitor) -> Metrics:
    metrics = Metrics()
    metrics.gauge("switchboard_loop_lag_seconds", "Worst event-loop lateness within the last second",
                  lambda: loop_lag.lag_s)
    metrics.gauge("switchboard_loop_starved_seconds", "Total time the event loop was starved (not counted by "
                  "provider watchdogs)", lambda: loop_lag.starved_s)
    metrics.gauge("switchboard_calls_live", "Calls with a live media stream", lambda: len(registry))
    metrics.gauge("switchboard_live_subscribers", "Live websocket subscribers", lambda: hub.stats()["subscribers"])
    metrics.gauge("switchboard_segments_queued", "Transcript segments waiting for the database",
                  lambda: writer.stats().queued)
    metrics.gauge("switchboard_segments_spooled", "Transcript segments spooled to disk", lambda: writer.stats().spooled)
    metrics.gauge_family("switchboard_provider_state",
                         "Circuit breaker state per transcription provider (1 on the current state)",
                         lambda: _provider_states(breakers))
    return metrics


def _operating_metrics(metrics: Metrics, life: Lifecycle) -> None:
    admission, supervisor = life.admission, life.supervisor
    metrics.gauge("switchboard_websockets_open", "Open websockets (media streams and live subscribers)",
                  lambda: admission.stats().connections)
    metrics.gauge("switchboard_calls_refused", "Calls turned away since start (at capacity or draining)",
                  lambda: admission.stats().refused_calls)
    metrics.gauge("switchboard_websockets_refused", "Websockets refused since start (over the connection cap)",
                  lambda: admission.stats().refused_connections)
    metrics.gauge("switchboard_draining", "1 while the instance drains after SIGTERM", lambda: admission.draining)
    metrics.gauge("switchboard_tasks_dead", "Essential background tasks given up for dead (/healthz fails)",
                  lambda: len(supervisor.dead()))


async def _agent(settings: Settings, stack: AsyncExitStack, config: VoiceConfig) -> AgentRuntime:
    """The agent's shared parts; with the agent answering, its voices load and greetings render now, not on the
    first call."""
    alerter = None
    if settings.twilio_phone_number:
        alerter = SmsAlerter(settings.twilio_account_sid, settings.twilio_auth_token.reveal(),
                             settings.twilio_phone_number, base_url=settings.twilio_api_url)
        stack.push_async_callback(alerter.close)
    runtime = AgentRuntime(
        profile_path=settings.agent_profile, operator_number=settings.operator_number,
        calls=TwilioCalls(settings.twilio_account_sid, settings.twilio_auth_token.reveal(),
                          base_url=settings.twilio_api_url),
        voice_builder=lambda: build_voice(config),
        openai_key=None if settings.openai_api_key is None else settings.openai_api_key.reveal(),
        openai_base_url=settings.openai_base_url, alerter=alerter, caller_id=settings.twilio_phone_number,
        oncall_number=settings.oncall_number)
    stack.push_async_callback(runtime.aclose)
    if settings.answer is not AnswerMode.OPERATOR:
        await runtime.warm()
    return runtime


def _provider_states(breakers: CircuitBreakerBoard) -> list[tuple[dict[str, str], float]]:
    """One-hot state series per provider, the Prometheus way to export an enum."""
    return [({"provider": name, "state": state.value}, 1.0 if snap["state"] == state.value else 0.0)
            for name, snap in sorted(breakers.snapshot().items()) for state in BreakerState]


def create_app(settings: Settings, *, transcriber: Transcriber | None = None,
               recognizers: RecognizerPool | None = None, lifecycle: Lifecycle | None = None,
               voices: VoiceConfig | None = None) -> Starlette:
    """Build the app. ``transcriber`` overrides the configured one (tests, benchmarks, emulators); a
    :class:`FallbackTranscriber` brings its own breakers, which ``/readyz`` and ``/metrics`` then show.
    ``recognizers`` is the local engine's pool for the configured chain (the caller owns it). ``lifecycle``: pass
    one to drain the app from outside (SIGTERM) or to set the restart policy; one lifespan per lifecycle.
    ``voices`` overrides the agent's voice chain read from the environment (tests, benchmarks)."""
    life = lifecycle or Lifecycle.for_settings(settings)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        try:
            async with _services(settings, life, transcriber, recognizers, voices) as services:
                yield {"services": services}
        except Exception as exc:  # after start-up nothing should get here: say so on /healthz, then re-raise
            life.supervisor.mark_dead("lifespan", exc)
            raise

    routes = [
        Route(twilio_http.VOICE_PATH, twilio_http.voice, methods=["POST"]),
        Route(twilio_http.STATUS_PATH, twilio_http.status, methods=["POST"]),
        Route(twilio_http.DIAL_PATH, twilio_http.dial_status, methods=["POST"]),
        WebSocketRoute(media_ws.STREAM_PATH, media_ws.media_stream),
        WebSocketRoute("/api/live", live_ws.live),
        WebSocketRoute("/api/live/{call_sid}", live_ws.live),
        Route("/api/calls", api.list_calls),
        Route("/api/calls", outbound.place_call, methods=["POST"]),
        Route("/api/calls/{call_sid}", api.get_call),
        Route("/api/calls/{call_sid}/recording", api.get_recording),
        Route("/api/leads", api.list_leads),
        Route("/api/leads/{lead_id}/handled", api.mark_lead_handled, methods=["POST"]),
        Route("/healthz", api.healthz),
        Route("/readyz", api.readyz),
        Route("/metrics", api.metrics),
        *pages.routes(),  # the dashboard (switchboard/web)
    ]
    limits = Middleware(Limits, max_body_bytes=settings.max_body_bytes, ws_max_bytes=settings.ws_max_bytes,
                        admission=life.admission)
    return Starlette(routes=routes, lifespan=lifespan, middleware=[limits], exception_handlers=EXCEPTION_HANDLERS)


@asynccontextmanager
async def _services(settings: Settings, life: Lifecycle, transcriber: Transcriber | None,
                    recognizers: RecognizerPool | None, voices: VoiceConfig | None) -> AsyncIterator[Services]:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        store = await _database(settings, stack)
        writer = SegmentWriter(store, spool_dir=settings.spool_dir)
        # Provider watchdogs and breakers run on the loop's effective time: an overloaded server must not
        # blame its providers for its own lag and cascade every call down to the costliest one (local).
        loop_lag = await stack.enter_async_context(LoopLagMonitor())
        breakers = CircuitBreakerBoard(breaker_config(settings), clock=loop_lag.effective_time)
        stt = transcriber or build_transcriber(settings, stack, breakers, recognizers)
        if isinstance(stt, FallbackTranscriber):
            breakers = stt.breaker
        hub = InMemoryHub(queue_size=settings.live_queue)
        registry = life.registry
        metrics = _metrics(registry, hub, writer, breakers, loop_lag)
        _operating_metrics(metrics, life)
        # Its loops stop (LIFO exit-stack callbacks: post-call services, then the writer) before the supervisor
        # cancels what is left (loops waiting out a backoff), the store after that.
        supervisor = await stack.enter_async_context(life.supervisor)
        supervisor.start("segment-writer", writer.run)
        if isinstance(stt, FallbackTranscriber):  # backups warm in the background: a failover meets no cold start
            supervisor.start("warm-backups", stt.warm, essential=False)
        post_call = await build_post_call(settings, store, stack, supervisor, segments_settled=writer.settled)
        instance = instance_id(settings.data_dir, settings.instance_id)
        await recover_orphaned_calls(store, instance, settings.data_dir, post_call)  # before taking calls
        sessions = SessionBook(store.pool, settings.api_token, timedelta(hours=settings.session_hours))
        tokens = StreamTokens(settings.twilio_auth_token.reveal(), settings.stream_token_ttl_s, store,
                              settings.twilio_auth_tokens[1:])
        agent = await _agent(settings, stack, voices or VoiceConfig.from_env())
        services = Services(settings, store, hub, stt, writer, registry, metrics, breakers, post_call, loop_lag,
                            instance, life.admission, supervisor, sessions, tokens=tokens, agent=agent)
        try:
            yield services
        finally:
            if not await registry.drain(DRAIN_TIMEOUT_S):
                log.error("shutdown: %d calls still live after %.0fs", len(registry), DRAIN_TIMEOUT_S)
            await writer.aclose()
            hub.close()
