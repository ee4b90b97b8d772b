"""Pytest plugin: a real PostgreSQL for the test session, and a fresh database per test.

Register with ``pytest_plugins = ["tests.pg_plugin"]``. With ``TEST_DATABASE_URL`` set, that server is used
(the role needs CREATEDB); otherwise an embedded server is started under the session's temp dir, tuned for
tests (no fsync), and stopped at the end.

Fixtures:
    pg_dsn            session   DSN of the server (admin database)
    pg_embedded       session   the EmbeddedPostgres, or None with TEST_DATABASE_URL
    pg_empty_dsn      function  DSN of a new, empty database (dropped afterwards)
    pg_migrated_dsn   function  DSN of a new database with every migration applied (cloned from a template)
    store             function  a PgStore on ``pg_migrated_dsn``
    pg_proxy          function  a TCP proxy in front of ``pg_migrated_dsn`` that can be taken down and back up
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest_asyncio

from switchboard.store import EmbeddedPostgres, PgStore, migrate


def dsn_for(dsn: str, database: str) -> str:
    """The same server and credentials, another database."""
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _scratch_parent() -> str | None:
    """Where the throwaway cluster lives: RAM (/dev/shm) when there is room, since initdb and deleting ~1000
    files are slow on disks mounted with ``discard``; else the temp dir. Not under pytest's basetemp: as root the
    server runs as another user that must traverse the path, and every pytest session resets
    /tmp/pytest-of-<user> to 0700."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK) and shutil.disk_usage(shm).free > 1 << 30:
        return str(shm)
    return None


@pytest_asyncio.fixture(scope="session")
async def pg_embedded() -> AsyncIterator[EmbeddedPostgres | None]:
    if os.environ.get("TEST_DATABASE_URL"):
        yield None
        return
    root = Path(tempfile.mkdtemp(prefix="switchboard-pg-", dir=_scratch_parent()))
    server = EmbeddedPostgres(root / "data")
    try:
        yield await _tuned(server)
    finally:
        await server.stop()
        await asyncio.to_thread(shutil.rmtree, root, ignore_errors=True)


async def _tuned(server: EmbeddedPostgres) -> EmbeddedPostgres:
    dsn = await server.start()
    conn = await asyncpg.connect(dsn)
    try:  # durability is pointless for throwaway databases, and fsync dominates CREATE DATABASE
        for setting in ("fsync", "synchronous_commit", "full_page_writes"):
            await conn.execute(f"ALTER SYSTEM SET {setting} = off")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    return server


@pytest_asyncio.fixture(scope="session")
async def pg_dsn(pg_embedded: EmbeddedPostgres | None) -> str:
    return pg_embedded.dsn if pg_embedded is not None else os.environ["TEST_DATABASE_URL"]


@pytest_asyncio.fixture(scope="session")
async def _pg_admin(pg_dsn: str) -> AsyncIterator[asyncpg.Connection]:
    """One connection for CREATE/DROP DATABASE, shared by the session (tests run one at a time)."""
    admin = await asyncpg.connect(pg_dsn)
    try:
        yield admin
    finally:
        await admin.close()


@pytest_asyncio.fixture(scope="session")
async def _pg_template(pg_dsn: str, _pg_admin: asyncpg.Connection) -> AsyncIterator[str]:
    async with _database(_pg_admin, pg_dsn, None) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        yield urlsplit(dsn).path.lstrip("/")


@contextlib.asynccontextmanager
async def _database(admin: asyncpg.Connection, pg_dsn: str, template: str | None) -> AsyncIterator[str]:
    name = f"test_{uuid.uuid4().hex[:16]}"
    clause = f' TEMPLATE "{template}"' if template else ""
    await admin.execute(f'CREATE DATABASE "{name}"{clause}')
    try:
        yield dsn_for(pg_dsn, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest_asyncio.fixture
async def pg_empty_dsn(pg_dsn: str, _pg_admin: asyncpg.Connection) -> AsyncIterator[str]:
    async with _database(_pg_admin, pg_dsn, None) as dsn:
        yield dsn


@pytest_asyncio.fixture
async def pg_migrated_dsn(pg_dsn: str, _pg_admin: asyncpg.Connection, _pg_template: str) -> AsyncIterator[str]:
    async with _database(_pg_admin, pg_dsn, _pg_template) as dsn:
        yield dsn


@pytest_asyncio.fixture
async def store(pg_migrated_dsn: str) -> AsyncIterator[PgStore]:
    pg = await PgStore.connect(pg_migrated_dsn, max_size=4)
    try:
        yield pg
    finally:
        await pg.close()


class PgProxy:
    """A loopback TCP proxy to a PostgreSQL server: ``stop()`` is a real outage (refused connects, reset
    sessions), ``start()`` brings the same address back."""

    def __init__(self, upstream_dsn: str) -> None:
        parts = urlsplit(upstream_dsn)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        self._host = query.pop("host", parts.hostname or "localhost")
        self._port = int(query.pop("port", parts.port or 5432))
        self.port = 0
        userinfo = parts.netloc.rpartition("@")[0]
        self._template = parts._replace(query=urlencode(query)), userinfo
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def dsn(self) -> str:
        parts, userinfo = self._template
        return urlunsplit(parts._replace(netloc=f"{userinfo}@127.0.0.1:{self.port}"))

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._host.startswith("/"):
            up_reader, up_writer = await asyncio.open_unix_connection(str(Path(self._host) / f".s.PGSQL.{self._port}"))
        else:
            up_reader, up_writer = await asyncio.open_connection(self._host, self._port)
        self._writers.update((writer, up_writer))
        try:
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._pipe(reader, up_writer))
                tg.create_task(self._pipe(up_reader, writer))
        finally:
            self._writers.difference_update((writer, up_writer))

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass  # the other side went away; closing below is all there is to do
        finally:
            writer.transport.abort()


@pytest_asyncio.fixture
async def pg_proxy(pg_migrated_dsn: str) -> AsyncIterator[PgProxy]:
    proxy = PgProxy(pg_migrated_dsn)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
