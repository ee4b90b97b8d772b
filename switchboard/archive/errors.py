"""Errors raised by the archive package.

    ArchiveError               base; ``retryable`` says whether the same call may succeed later
    ├── ArchiveUnavailable     the archive cannot be reached right now: refused, timed out, 5xx, throttled (retryable)
    ├── ArchiveRejected        the archive refused the object: no such bucket, access denied, bad key (not retryable)
    ├── ArchiveSourceError     the local file to upload is missing or unreadable (not retryable)
    └── ArchiveSpoolError      the spool could not record or update an entry on local disk (not retryable)

botocore, boto3 and OS errors are translated once, at the boundary of each archive, with ``raise … from exc``
so the original stays in the traceback. ``code`` and ``status`` carry the S3 error code and HTTP status when the
server answered, so an operator sees *why* without reading the chain.
"""

from __future__ import annotations


class ArchiveError(Exception):
    """Base of every error raised by :mod:`switchboard.archive`."""

    retryable: bool = False

    def __init__(
        self, message: str, *, retryable: bool | None = None, code: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable
        self.code = code
        self.status = status


class ArchiveUnavailable(ArchiveError):
    """The archive is unreachable, overloaded or failing; the same upload should be retried later."""

    retryable = True


class ArchiveRejected(ArchiveError):
    """The archive answered with a refusal (4xx): retrying the same request fails the same way."""


class ArchiveSourceError(ArchiveError):
    """The local file given to ``put_file`` cannot be read; nothing was uploaded."""


class ArchiveSpoolError(ArchiveError):
    """The spool's own directory refused a write (disk full, permissions): the entry was not recorded."""
