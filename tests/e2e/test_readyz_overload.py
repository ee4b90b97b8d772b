"""/readyz answers 503 while the event loop lags past SWITCHBOARD_MAX_LOOP_LAG_S, and 200 again once it recovers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.conftest import fresh_database, running_server

pytestmark = pytest.mark.e2e


async def test_a_lagging_loop_makes_the_instance_unready_until_it_recovers(pg_dsn: str, tmp_path: Path) -> None:
    dsn = await fresh_database(pg_dsn, "overload")
    async with running_server(dsn, tmp_path, transcriber="null", max_loop_lag_s=0.15) as server, \
            httpx.AsyncClient(base_url=server.base, timeout=30) as http:
        time.sleep(0.4)  # noqa: ASYNC251 -- the point: the server shares this loop, so this starves it
        ready = await http.get("/readyz")
        loop = ready.json()["checks"]["event_loop"]
        assert ready.status_code == 503 and loop["overloaded"] is True and loop["lag_s"] >= 0.3
        assert loop["max_lag_allowed_s"] == 0.15
        async with asyncio.timeout(30):  # the lag is a maximum over the last second: it decays
            while True:
                ready = await http.get("/readyz")
                if ready.status_code == 200:
                    break
                await asyncio.sleep(0.2)
        assert ready.json()["checks"]["event_loop"]["overloaded"] is False
