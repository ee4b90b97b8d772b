"""Plain-SQL migrations: ``migrations/NNNN_name.sql`` applied in filename order and recorded.

Each migration runs in its own transaction together with its row in ``schema_migrations``, so it is applied
entirely or not at all. Every transaction first takes a transaction-scoped advisory lock, which serialises
instances that start at the same time against one database: the loser waits, then finds nothing pending.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Final

import asyncpg

from .errors import MigrationError, StoreUnavailable

LOCK_KEY: Final = 0x5357_4244_0001
"""``pg_advisory_xact_lock`` key owned by this module ("SWBD" + 1)."""

_NAME = re.compile(r"^(\d{4}_[a-z0-9_]+)\.sql$")

_ENSURE_TABLE: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration: ``version`` is the file name without ``.sql``."""

    version: str
    sql: str


def load_migrations(folder: Traversable | None = None) -> list[Migration]:
    """Read the ``.sql`` files, sorted by name; by default the packaged ones (package data: works from a wheel)."""
    if folder is None:
        folder = resources.files(__package__) / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _NAME.match(entry.name)
        if match is None:
            raise MigrationError(f"migration file name {entry.name!r} is not NNNN_lower_snake.sql")
        found.append(Migration(match.group(1), entry.read_text(encoding="utf-8")))
    return sorted(found, key=lambda m: m.version)


async def migrate(
    target: asyncpg.Pool | asyncpg.Connection, *, migrations: Sequence[Migration] | None = None
) -> list[str]:
    """Apply the pending migrations; return the versions this call applied (empty if up to date)."""
    todo = list(load_migrations() if migrations is None else migrations)
    try:
        if isinstance(target, asyncpg.Pool):
            async with target.acquire() as conn:
                return await _apply_pending(conn, todo)
        return await _apply_pending(target, todo)
    except (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError) as exc:
        raise StoreUnavailable(f"database unavailable while migrating: {exc}") from exc


async def _apply_pending(conn: asyncpg.Connection, todo: list[Migration]) -> list[str]:
    applied: list[str] = []
    for migration in todo:
        if await _apply_one(conn, migration):
            applied.append(migration.version)
    return applied


async def _apply_one(conn: asyncpg.Connection, migration: Migration) -> bool:
    """Apply one migration under the lock unless it is already recorded; True if this call applied it."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", LOCK_KEY)
        # Created under the lock: concurrent CREATE TABLE IF NOT EXISTS can otherwise fail on pg_type.
        await conn.execute(_ENSURE_TABLE)
        done = await conn.fetchval("SELECT true FROM schema_migrations WHERE version = $1", migration.version)
        if done:
            return False
        try:
            await conn.execute(migration.sql)
        except asyncpg.PostgresError as exc:
            if isinstance(exc, asyncpg.PostgresConnectionError):
                raise
            raise MigrationError(f"migration {migration.version} failed: {exc}") from exc
        await conn.execute("INSERT INTO schema_migrations (version, applied_at) VALUES ($1, now())", migration.version)
        return True


async def applied_versions(conn: asyncpg.Connection) -> list[str]:
    """Versions recorded in ``schema_migrations``, oldest first (empty if the table does not exist)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return []
    rows = await conn.fetch("SELECT version FROM schema_migrations ORDER BY version")
    return [row["version"] for row in rows]
