#!/usr/bin/env python3
"""``switchboard serve`` for the dashboard benchmark, with the fixture's sidecar as its recogniser.

The same app, settings (from the environment), lifecycle and graceful server as ``switchboard serve``, but
without websocket keepalive pings (see ``main``), and with
:class:`~switchboard.transcribe.sidecar.SidecarTranscriber` as the transcriber: the fixture's own words as the
call's media time reaches them. The benchmark measures the way from a transcript event to the operator's page,
not recognition: a recogniser for a hundred calls (or a hundred cloud sockets to an emulator) would starve the
server on a two-core machine before the page is measured.

    python scripts/bench_dashboard_server.py fixtures/tts_leak_emergency_leeds.json
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from switchboard import log_scrub
from switchboard.app import create_app
from switchboard.config import Settings
from switchboard.lifecycle import Lifecycle
from switchboard.serving import GracefulServer, uvicorn_config
from switchboard.transcribe.sidecar import SidecarTranscriber


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit("usage: bench_dashboard_server.py FIXTURE_SIDECAR.json")
    transcriber = SidecarTranscriber(Path(sys.argv[1]))
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log_scrub.install(settings.secret_values())
    lifecycle = Lifecycle.for_settings(settings)
    app = create_app(settings, lifecycle=lifecycle, transcriber=transcriber)
    # No keepalive timeout: on a loaded machine the server falls behind reading 100 calls' media, and uvicorn's
    # 20 s ping timeout then closes every stream whose pong waits behind unread media (1011), which measures the
    # machine, not the page. How far behind it fell is reported (the load generator's drain_s).
    config = uvicorn_config(app, settings, ws_ping_interval=None, ws_ping_timeout=None)
    GracefulServer(config, lifecycle, settings.drain_s).run()


if __name__ == "__main__":
    main()
