"""Migrations against a real, initially empty database."""

import asyncio
from pathlib import Path

import asyncpg
import pytest

from switchboard.store import Migration, MigrationError, load_migrations, migrate
from switchboard.store.migrate import applied_versions


async def _tables(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return {row["tablename"] for row in rows}


def test_packaged_migrations_are_ordered_and_named() -> None:
    migrations = load_migrations()
    assert migrations[0].version == "0001_calls"
    assert [m.version for m in migrations] == sorted(m.version for m in migrations)
    assert "CREATE TABLE transcript_segments" in migrations[0].sql


def test_badly_named_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "0001_ok.sql").write_text("SELECT 1")
    (tmp_path / "2_Bad Name.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match=r"2_Bad Name\.sql"):
        load_migrations(tmp_path)


def test_files_load_in_filename_order(tmp_path: Path) -> None:
    for name in ("0010_c.sql", "0002_b.sql", "0001_a.sql", "notes.txt"):
        (tmp_path / name).write_text(f"-- {name}")
    assert [m.version for m in load_migrations(tmp_path)] == ["0001_a", "0002_b", "0010_c"]


async def test_applies_once_and_records(pg_empty_dsn: str) -> None:
    conn = await asyncpg.connect(pg_empty_dsn)
    try:
        assert await applied_versions(conn) == []
        packaged = [m.version for m in load_migrations()]  # every packaged one, in order (the list grows)
        assert packaged[:3] == ["0001_calls", "0002_leads_jobs", "0003_call_owner"]
        assert await migrate(conn) == packaged
        assert {"calls", "transcript_segments", "schema_migrations"} <= await _tables(conn)
        row = await conn.fetchrow("SELECT version, applied_at FROM schema_migrations ORDER BY version LIMIT 1")
        assert row["version"] == "0001_calls" and row["applied_at"] is not None
        assert await migrate(conn) == []  # second run: nothing pending, nothing re-run
        assert await applied_versions(conn) == packaged
    finally:
        await conn.close()


async def test_concurrent_migrations_do_not_race(pg_empty_dsn: str) -> None:
    # The slow first migration keeps the lock long enough for the others to queue behind it; without the
    # lock two of them would both CREATE TABLE slow and one would fail.
    steps = [
        Migration("0001_slow", "SELECT pg_sleep(0.2); CREATE TABLE slow (x int)"),
        Migration("0002_next", "CREATE TABLE next (x int)"),
    ]
    conns = [await asyncpg.connect(pg_empty_dsn) for _ in range(3)]
    try:
        results = await asyncio.gather(*(migrate(c, migrations=steps) for c in conns))
        applied = [version for result in results for version in result]
        assert sorted(applied) == ["0001_slow", "0002_next"]  # each applied exactly once
        assert await applied_versions(conns[0]) == ["0001_slow", "0002_next"]
    finally:
        for conn in conns:
            await conn.close()


async def test_failed_migration_rolls_back_and_stops(pg_empty_dsn: str) -> None:
    steps = [
        Migration("0001_ok", "CREATE TABLE ok (x int)"),
        Migration("0002_bad", "CREATE TABLE half (x int); SELECT * FROM no_such_table"),
        Migration("0003_after", "CREATE TABLE after (x int)"),
    ]
    pool = await asyncpg.create_pool(pg_empty_dsn, min_size=1, max_size=1)
    try:
        with pytest.raises(MigrationError, match="0002_bad"):
            await migrate(pool, migrations=steps)
        async with pool.acquire() as conn:
            assert await applied_versions(conn) == ["0001_ok"]
            assert await _tables(conn) == {"ok", "schema_migrations"}  # "half" rolled back, 0003 not tried
    finally:
        await pool.close()
