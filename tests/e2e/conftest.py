"""A real uvicorn server on loopback with a real PostgreSQL, shared by the end-to-end tests."""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import uvicorn

from switchboard.app import create_app
from switchboard.config import Secret, Settings
from switchboard.lifecycle import Lifecycle
from switchboard.replay.twilio_fake import Target
from switchboard.serving import uvicorn_config
from switchboard.transcribe.base import Transcriber
from switchboard.transcribe.moonshine import RecognizerPool
from switchboard.tts.factory import VoiceConfig
from tests.pg_plugin import dsn_for

AUTH_TOKEN = "e2e-twilio-auth-token"
API_TOKEN = "e2e-api-token"


@dataclass(frozen=True)
class Endpoint:
    """Where a server answers (in this process or a ``switchboard serve`` subprocess)."""

    base: str
    target: Target

    @property
    def ws_base(self) -> str:
        return self.base.replace("http://", "ws://")

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_TOKEN}"}


@dataclass(frozen=True)
class Server(Endpoint):
    settings: Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def fresh_database(server_dsn: str, prefix: str) -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    conn = await asyncpg.connect(server_dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return dsn_for(server_dsn, name)


@asynccontextmanager
async def running_server(dsn: str, data_dir: Path, *, recognizers: RecognizerPool | None = None,
                         lifecycle: Lifecycle | None = None, root_path: str = "", stt: Transcriber | None = None,
                         voices: VoiceConfig | None = None, **overrides: Any) -> AsyncIterator[Server]:
    """A real uvicorn server in this event loop; shut down (calls drained) on exit. ``recognizers`` is the
    local engine's pool and ``lifecycle`` the caps, live calls and supervisor, ``stt`` (a transcriber) and ``voices``
    replace the configured ones (see ``create_app``); ``root_path`` is uvicorn's (the prefix a proxy strips, which
    ``PUBLIC_URL`` then carries); ``overrides`` are settings."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    options: dict[str, Any] = {"transcriber": "local", "stt_workers": 2, "live_queue": 5000, **overrides}
    settings = Settings(data_dir=data_dir, public_url=base + root_path, host="127.0.0.1", port=port,
                        twilio_auth_token=Secret(AUTH_TOKEN), api_token=Secret(API_TOKEN),
                        database_url=Secret(dsn), **options)
    app = create_app(settings, recognizers=recognizers, lifecycle=lifecycle, transcriber=stt, voices=voices)
    uv = uvicorn.Server(uvicorn_config(app, settings, log_level="warning", root_path=root_path))
    task = asyncio.create_task(uv.serve())
    async with asyncio.timeout(60):
        while not uv.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.05)
    try:
        yield Server(base, Target(base, base, AUTH_TOKEN, API_TOKEN), settings)
    finally:
        uv.should_exit = True
        await task


@pytest.fixture(scope="session")
async def server(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    dsn = await fresh_database(pg_dsn, "e2e")
    async with running_server(dsn, tmp_path_factory.mktemp("switchboard-data")) as srv:
        yield srv


@pytest.fixture
async def http(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        yield client
