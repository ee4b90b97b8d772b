"""Durable storage: calls and final transcript segments in PostgreSQL (asyncpg).

``PgStore.connect(dsn)`` opens a pool and applies the packaged SQL migrations; with no ``DATABASE_URL`` the
app starts an :class:`EmbeddedPostgres` under its data dir first. Segments from the media path go through a
:class:`SegmentWriter`, which batches them and spools to disk while the database is away.
"""

from .base import TERMINAL_STATUSES, CallMode, CallRecord, Segment, Store, Track, status_applies
from .embedded import EmbeddedPostgres
from .errors import (
    EmbeddedStartError,
    MigrationError,
    SpoolError,
    StoreError,
    StoreQueryError,
    StoreUnavailable,
)
from .migrate import Migration, load_migrations, migrate
from .pg import PgStore
from .writer import SegmentWriter, WriterStats

__all__ = [
    "TERMINAL_STATUSES",
    "CallMode",
    "CallRecord",
    "EmbeddedPostgres",
    "EmbeddedStartError",
    "Migration",
    "MigrationError",
    "PgStore",
    "Segment",
    "SegmentWriter",
    "SpoolError",
    "Store",
    "StoreError",
    "StoreQueryError",
    "StoreUnavailable",
    "Track",
    "WriterStats",
    "load_migrations",
    "migrate",
    "status_applies",
]
