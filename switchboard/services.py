"""The services one running app owns: built in the lifespan, handed to routes through request state."""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.admission import Admission
from switchboard.call.agent_runtime import AgentRuntime
from switchboard.call.registry import CallRegistry
from switchboard.call.session import SessionDeps
from switchboard.config import Settings
from switchboard.live import InMemoryHub
from switchboard.loop_lag import LoopLagMonitor
from switchboard.metrics import Metrics
from switchboard.postcall import PostCall
from switchboard.store.base import Store
from switchboard.store.writer import SegmentWriter
from switchboard.supervisor import Supervisor
from switchboard.tokens import StreamTokens
from switchboard.transcribe.base import Transcriber
from switchboard.transcribe.breaker import CircuitBreakerBoard
from switchboard.web.sessions import SessionBook


@dataclass(frozen=True, slots=True)
class Services:
    settings: Settings
    store: Store
    hub: InMemoryHub
    transcriber: Transcriber
    writer: SegmentWriter
    registry: CallRegistry
    metrics: Metrics
    breakers: CircuitBreakerBoard = field(default_factory=CircuitBreakerBoard)
    """Per-provider circuit breakers shared by every call (empty when there is no failover chain)."""
    post_call: PostCall | None = None
    loop_lag: LoopLagMonitor = field(default_factory=LoopLagMonitor)
    """The event loop's lag; its effective clock times provider watchdogs and breakers."""
    instance_id: str | None = None
    """Recorded on each call this instance streams (see :mod:`switchboard.recovery`)."""
    admission: Admission = field(default_factory=lambda: Admission(100, 500))
    """Call and connection caps, and the drain after SIGTERM."""
    supervisor: Supervisor = field(default_factory=Supervisor)
    """The background tasks and which of them are dead (``/healthz``)."""
    sessions: SessionBook | None = None
    """Dashboard sign-ins (None: only the bearer token is accepted)."""
    tokens: StreamTokens | None = None
    """Mints and consumes the single-use stream tokens (None: built from the settings and the store on first use,
    without the in-memory fallback surviving between streams)."""
    agent: AgentRuntime | None = None
    """What agent calls share (profiles, voices, model, Twilio REST); None = the agent is not available."""

    def stream_tokens(self) -> StreamTokens:
        if self.tokens is not None:
            return self.tokens
        return StreamTokens(self.settings.twilio_auth_token.reveal(), self.settings.stream_token_ttl_s, self.store,
                            self.settings.twilio_auth_tokens[1:])

    def session_deps(self) -> SessionDeps:
        post = self.post_call
        return SessionDeps(store=self.store, hub=self.hub, transcriber=self.transcriber, writer=self.writer,
                           data_dir=self.settings.data_dir, metrics=self.metrics,
                           live_extractor=post.extractor if post is not None else None,
                           after_call=post.handlers if post is not None else None,
                           end_spool=post.end_spool if post is not None else None, instance_id=self.instance_id)
