"""Errors raised by the store package.

    StoreError                 base; ``retryable`` says whether the same call may succeed later
    ├── StoreUnavailable       the database cannot be reached or dropped the connection (retryable)
    ├── StoreQueryError        the database rejected a statement: constraint, bad data (not retryable)
    ├── MigrationError         a migration file is malformed or failed to apply (not retryable)
    ├── EmbeddedStartError     the embedded PostgreSQL server could not be started (not retryable)
    └── SpoolError             the segment writer could not persist to its disk spool either

asyncpg and OS errors are translated once, at the boundary of :class:`~switchboard.store.pg.PgStore`, with
``raise … from exc`` so the original stays in the traceback.
"""


class StoreError(Exception):
    """Base of every error raised by :mod:`switchboard.store`."""

    retryable: bool = False


class StoreUnavailable(StoreError):
    """The database is unreachable, restarting, overloaded or dropped the connection; retry later."""

    retryable = True


class StoreQueryError(StoreError):
    """The database refused a statement; retrying the same data fails the same way."""


class MigrationError(StoreError):
    """A migration could not be loaded or applied; its transaction was rolled back."""


class EmbeddedStartError(StoreError):
    """The embedded PostgreSQL server did not start; the message carries the server log's tail."""


class SpoolError(StoreError):
    """Neither the database nor the on-disk spool accepted the segments."""
