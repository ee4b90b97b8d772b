"""What the process around the app controls and watches: admission (caps, drain), live calls, background tasks.

Built by :func:`switchboard.app.create_app` (or handed to it), before the lifespan runs, so the server wrapper
(:mod:`switchboard.serving`) can start a drain on SIGTERM and wait for the live calls to finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.admission import Admission
from switchboard.call.registry import CallRegistry
from switchboard.config import Settings
from switchboard.supervisor import RestartPolicy, Supervisor


@dataclass(frozen=True, slots=True)
class Lifecycle:
    admission: Admission
    registry: CallRegistry = field(default_factory=CallRegistry)
    supervisor: Supervisor = field(default_factory=Supervisor)

    @classmethod
    def for_settings(cls, settings: Settings, policy: RestartPolicy | None = None) -> Lifecycle:
        return cls(Admission(settings.max_calls, settings.max_connections), CallRegistry(), Supervisor(policy))

    async def drain(self, timeout_s: float) -> bool:
        """Turn new calls away and wait up to ``timeout_s`` for the live ones to end; False if some are left."""
        self.admission.begin_drain()
        return await self.registry.wait_idle(timeout_s)
