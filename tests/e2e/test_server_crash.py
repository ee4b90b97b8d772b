"""SIGKILL the server while post-call jobs are running; start it again: every pending job completes.

The server is a real ``switchboard serve`` subprocess (so the kill takes everything but PostgreSQL and the data
dir with it). A slow OpenAI emulator keeps the final-extraction job running when the kill lands.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.replay.fixture import build_schedule
from switchboard.replay.twilio_fake import Target, replay_call
from tests.e2e.conftest import API_TOKEN, AUTH_TOKEN, free_port, fresh_database
from tests.emulators.openai_server import Fault, OpenAIEmulator, RecordedRequest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "fixtures" / "real_ivr_callback_postcode.wav"


async def start_server(env: dict[str, str], base: str) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard.cli", "serve", env=env, cwd=ROOT)
    async with httpx.AsyncClient() as client, asyncio.timeout(90):
        while True:
            try:
                if (await client.get(base + "/readyz")).status_code == 200:
                    return proc
            except httpx.TransportError:
                pass
            if proc.returncode is not None:
                raise RuntimeError(f"server exited with {proc.returncode}")
            await asyncio.sleep(0.2)


@pytest.fixture
async def openai() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator(api_key="sk-test") as emulator:
        yield emulator


async def jobs_of(client: httpx.AsyncClient, call_sid: str) -> list[dict[str, Any]]:
    return (await client.get(f"/api/calls/{call_sid}")).json().get("jobs", [])


class AwaitedRequests:
    """Which requests the emulator holds (slow fault) while their client still waits for the answer.

    The live extraction previews of a call send the same requests as the final-extraction job, and are held too; but
    they are cancelled when the call ends, which closes their connections. So once the call has ended, a held
    request on an open connection is the job's. The emulator has no hook for this: its per-connection request loop
    is wrapped (``_one`` knows the connection, ``_next_fault`` runs right after a request is recorded).
    """

    def __init__(self, emulator: OpenAIEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
        readers: dict[asyncio.Task[Any] | None, asyncio.StreamReader] = {}
        self._received: list[tuple[RecordedRequest, asyncio.StreamReader]] = []
        one, next_fault = emulator._one, emulator._next_fault

        async def spied_one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
            readers[asyncio.current_task()] = reader
            return await one(reader, writer)

        def spied_next_fault(request: RecordedRequest) -> Fault | None:
            self._received.append((emulator.requests[-1], readers[asyncio.current_task()]))
            return next_fault(request)

        monkeypatch.setattr(emulator, "_one", spied_one)
        monkeypatch.setattr(emulator, "_next_fault", spied_next_fault)

    def count(self) -> int:
        return sum(record.status is None and not reader.at_eof() for record, reader in self._received)


async def test_sigkill_mid_job_then_restart_completes_every_job(pg_dsn: str, tmp_path: Path, openai: OpenAIEmulator,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    dsn = await fresh_database(pg_dsn, "crash")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DATABASE_URL": dsn, "SWITCHBOARD_DATA_DIR": str(tmp_path), "SWITCHBOARD_PORT": str(port),
           "PUBLIC_URL": base, "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "SWITCHBOARD_API_TOKEN": API_TOKEN,
           "OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": openai.base_url, "SWITCHBOARD_JOB_LEASE_S": "2",
           "SWITCHBOARD_LOG_LEVEL": "WARNING"}
    openai.inject(Fault.slow(30), times=None)  # extractions hang: the final one is running when we kill
    awaited = AwaitedRequests(openai, monkeypatch)
    server = await start_server(env, base)
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            result = await replay_call(Target(base, base, AUTH_TOKEN, API_TOKEN), build_schedule(FIXTURE),
                                       speed=0, client=client, end_timeout_s=300)
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {API_TOKEN}"}) as client:
            async with asyncio.timeout(60):
                while True:  # the extract job is running, inside its request to OpenAI (held by the slow fault)
                    jobs = await jobs_of(client, result.call_sid)
                    if any(j["kind"] == "extract" and j["status"] == "running" for j in jobs) and awaited.count():
                        break
                    await asyncio.sleep(0.1)
    finally:
        server.send_signal(signal.SIGKILL)
        await server.wait()
    openai.clear()

    server = await start_server(env, base)
    try:
        async with httpx.AsyncClient(base_url=base, headers={"Authorization": f"Bearer {API_TOKEN}"}) as client:
            async with asyncio.timeout(120):
                while True:
                    jobs = await jobs_of(client, result.call_sid)
                    if jobs and all(j["status"] == "done" for j in jobs) and \
                            {"extract", "lead", "archive"} <= {j["kind"] for j in jobs}:
                        break
                    await asyncio.sleep(0.25)
            call = (await client.get(f"/api/calls/{result.call_sid}")).json()
    finally:
        server.send_signal(signal.SIGTERM)
        await server.wait()
    extract = next(j for j in jobs if j["kind"] == "extract")
    assert extract["attempts"] >= 2  # claimed by the killed server, then again after its lease ran out
    assert call["extraction"] is not None and call["extraction"]["source"] == "openai"
    assert call["extraction"]["final"] is True
    assert call["lead"] is not None
