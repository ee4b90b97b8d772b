"""Where recordings and transcripts end up: a local directory (the embedded default) or an S3 bucket.

An :class:`Archive` stores a file under a key (``recordings/YYYY/MM/DD/{CallSid}.wav``, the transcript beside it as
``.json``). :class:`ArchiveSpool` sits in front of it so a failing archive never loses a recording: entries are
recorded on disk first, uploaded by one task, retried with backoff, and resumed after a restart. Errors form one
tree rooted at :class:`ArchiveError` (see :mod:`switchboard.archive.errors`).

``S3Archive`` is imported from :mod:`switchboard.archive.s3` so that boto3 loads only when a bucket is configured.
"""

from .base import (
    JSON_CONTENT_TYPE,
    WAV_CONTENT_TYPE,
    Archive,
    ArchivedObject,
    recording_key,
    transcript_key,
    validate_key,
)
from .errors import ArchiveError, ArchiveRejected, ArchiveSourceError, ArchiveSpoolError, ArchiveUnavailable
from .local import LocalArchive
from .spool import ArchiveSpool, SpoolEntry, SpoolStats

__all__ = [
    "JSON_CONTENT_TYPE",
    "WAV_CONTENT_TYPE",
    "Archive",
    "ArchiveError",
    "ArchiveRejected",
    "ArchiveSourceError",
    "ArchiveSpool",
    "ArchiveSpoolError",
    "ArchiveUnavailable",
    "ArchivedObject",
    "LocalArchive",
    "SpoolEntry",
    "SpoolStats",
    "recording_key",
    "transcript_key",
    "validate_key",
]
