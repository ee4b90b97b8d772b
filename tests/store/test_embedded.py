"""EmbeddedPostgres: a real server from the wheel, shared between processes, with clear start errors."""

import asyncio
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from switchboard.store import EmbeddedPostgres, EmbeddedStartError
from tests.pg_plugin import _scratch_parent

REPO = Path(__file__).resolve().parents[2]

ATTACH = """
import sys
from pathlib import Path
from switchboard.store import EmbeddedPostgres
with EmbeddedPostgres(Path(sys.argv[1])) as pg:
    print(pg.dsn)
"""


@pytest.fixture
def scratch() -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="switchboard-pg-", dir=_scratch_parent()))
    yield root
    shutil.rmtree(root, ignore_errors=True)


async def _answers(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn)
    try:
        return bool(await conn.fetchval("SELECT 1") == 1)
    finally:
        await conn.close()


async def test_another_process_attaches_without_stopping_it(pg_embedded: EmbeddedPostgres | None) -> None:
    if pg_embedded is None:
        pytest.skip("TEST_DATABASE_URL is set: no embedded server")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", ATTACH, str(pg_embedded.data_dir), cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert out.decode().strip() == pg_embedded.dsn  # it reused our server...
    assert await _answers(pg_embedded.dsn)  # ...and its stop() left it running for us


async def test_stop_then_restart_keeps_data(scratch: Path) -> None:
    pg = EmbeddedPostgres(scratch / "nested" / "pgdata")
    dsn = await pg.start()
    conn = await asyncpg.connect(dsn)
    await conn.execute("CREATE TABLE kept (x int); INSERT INTO kept VALUES (7)")
    await conn.close()
    await pg.stop()
    assert not (scratch / "nested" / "pgdata" / "postmaster.pid").exists()  # we were its only user: stopped
    with pytest.raises(EmbeddedStartError):
        _ = pg.dsn

    again = EmbeddedPostgres(scratch / "nested" / "pgdata")
    conn = await asyncpg.connect(await again.start())
    try:
        assert await conn.fetchval("SELECT x FROM kept") == 7
    finally:
        await conn.close()
        await again.stop()


async def test_unusable_data_dir_is_a_clear_error(scratch: Path) -> None:
    not_a_dir = scratch / "file"
    not_a_dir.write_text("")
    with pytest.raises(EmbeddedStartError, match="did not start"):
        await EmbeddedPostgres(not_a_dir).start()


async def test_broken_cluster_reports_the_server_log(scratch: Path) -> None:
    broken = scratch / "broken"
    broken.mkdir()
    (broken / "PG_VERSION").write_text("18\n")  # looks initialised, but has no catalog
    with pytest.raises(EmbeddedStartError, match="did not start") as info:
        await EmbeddedPostgres(broken).start()
    assert "postgresql.conf" in str(info.value)  # the tail of the server log says why
