"""Running the app under uvicorn: one config for ``serve``, ``demo`` and the tests, and a graceful SIGTERM.

uvicorn's own SIGTERM closes the listening socket and every websocket at once (code 1012): live calls are cut
and a webhook arriving meanwhile finds nothing listening. :class:`GracefulServer` makes the first SIGTERM (or
SIGINT) a drain instead: new calls are turned away (the voice webhook answers a busy message, ``/readyz`` says 503
so the load balancer stops sending), live calls go on for up to ``drain_s``, and only then does uvicorn shut down:
calls still live are closed and finalised by their sessions (recording, transcript, post-call jobs), the lifespan
stops the services, and the process exits 0. A second signal shuts down at once, as plain uvicorn would.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
from types import FrameType
from typing import Any

import uvicorn

from switchboard.config import Settings
from switchboard.lifecycle import Lifecycle

log = logging.getLogger(__name__)

FINALISE_S = 60.0
"""After the drain, how long uvicorn waits for the sessions it closed to finalise before cancelling them."""


def uvicorn_config(app: Any, settings: Settings, **overrides: Any) -> uvicorn.Config:
    """The uvicorn settings every server of ours runs with: message and connection limits from ``settings``."""
    options: dict[str, Any] = {
        "host": settings.host, "port": settings.port, "log_level": settings.log_level.lower(), "lifespan": "on",
        "ws_max_size": settings.ws_max_bytes,  # refused in the protocol layer, before the message is buffered
        # a backstop above our own, reasoned refusals (websocket cap, call cap): uvicorn answers 503 past it
        "limit_concurrency": 2 * (settings.max_connections + settings.max_calls) + 100,
        "timeout_graceful_shutdown": FINALISE_S,
        "server_header": False,
        **overrides,
    }
    return uvicorn.Config(app, **options)


GC_YOUNG_THRESHOLD = 10_000
"""Allocations between young collections (CPython's default is 700)."""


def settle_gc() -> None:
    """Once the server has started: ``gc.freeze()`` and a higher young-generation threshold.

    Everything alive after start-up lives as long as the process, yet the cyclic collector walks all of it on every
    full collection; frozen objects are left out (still freed by reference counting). The media path allocates a few
    short-lived objects per message, so the default threshold ran a young collection every few hundred messages.
    Measured at N=100 null-transcriber calls for 20 s (loaded 2-core machine): collections 0.97 s → 0.56 s of the
    server's ~9 CPU-s (young 681 → 326, full 5 → 2). The floor server of ``scripts/bench_floor.py`` runs with the same
    setting, so the benchmark's ratio does not count it.
    """
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *gc.get_threshold()[1:])


class GracefulServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, lifecycle: Lifecycle, drain_s: float) -> None:
        super().__init__(config)
        self.lifecycle, self.drain_s = lifecycle, drain_s
        self.drained: bool | None = None
        """After a drain: True if every live call ended within ``drain_s``."""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._drain_requested = asyncio.Event()
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Signal handler (uvicorn installs it). Not recorded in ``_captured_signals``: uvicorn would re-raise the
        signal after shutting down, and the process would die of it instead of exiting 0."""
        if self._draining or self._loop is None or not self.started:
            if self.should_exit and sig == signal.SIGINT:
                self.force_exit = True
            self.should_exit = True
            return
        self._draining = True
        self._loop.call_soon_threadsafe(self._drain_requested.set)

    def begin_drain(self) -> None:
        """What SIGTERM does, for callers in the loop's thread (tests, an admin hook)."""
        self._draining = True
        self._drain_requested.set()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        """uvicorn's start-up (the lifespan: every service built, models loaded), then :func:`settle_gc`."""
        await super().startup(sockets)
        settle_gc()

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        async with asyncio.TaskGroup() as group:
            watcher = group.create_task(self._drain_when_asked(), name="drain-on-sigterm")
            try:
                await super().serve(sockets)
            finally:
                watcher.cancel()

    async def _drain_when_asked(self) -> None:
        await self._drain_requested.wait()
        live = len(self.lifecycle.registry)
        log.warning("draining: taking no new calls; %d live call(s) have up to %.0f s to finish", live, self.drain_s)
        self.drained = await self.lifecycle.drain(self.drain_s)
        if not self.drained:
            log.warning("drain time over: closing %d live call(s); each is finalised", len(self.lifecycle.registry))
        self.should_exit = True
