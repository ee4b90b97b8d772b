"""The :class:`Archive` seam: where finished recordings and transcripts are kept for good.

Implementations: :class:`~switchboard.archive.local.LocalArchive` (a directory, the embedded default) and
:class:`~switchboard.archive.s3.S3Archive` (any S3-compatible store through boto3). Callers that must not lose a
file go through :class:`~switchboard.archive.spool.ArchiveSpool`, which retries until the archive takes it.

Keys are ``/``-separated relative paths, the same on every archive: ``recordings/YYYY/MM/DD/{CallSid}.wav`` with
the transcript beside it as ``…/{CallSid}.json``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final, Protocol

from .errors import ArchiveRejected

WAV_CONTENT_TYPE: Final = "audio/wav"
JSON_CONTENT_TYPE: Final = "application/json"


@dataclass(frozen=True, slots=True)
class ArchivedObject:
    """What the archive now holds: ``url`` names the stored copy (``file://…`` or ``s3://bucket/key``)."""

    key: str
    size: int
    content_type: str
    url: str
    etag: str | None = None


class Archive(Protocol):
    """Long-term storage for call artefacts. Every method that waits is async; none blocks the event loop."""

    name: str

    async def put_file(
        self, key: str, path: Path, content_type: str, *, metadata: Mapping[str, str] | None = None
    ) -> ArchivedObject:
        """Store the file at ``path`` under ``key``, streaming it (never read whole into memory)."""
        ...

    async def put_bytes(
        self, key: str, data: bytes, content_type: str, *, metadata: Mapping[str, str] | None = None
    ) -> ArchivedObject:
        """Store a small in-memory object (a transcript) under ``key``."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        ...

    async def check(self) -> None:
        """Readiness probe: return if the archive can take uploads, else raise an ``ArchiveError``."""
        ...

    def close(self) -> None:
        """Release clients and threads; the archive is unusable afterwards."""
        ...


def recording_key(call_sid: str, at: datetime, part: int = 1) -> str:
    """``recordings/YYYY/MM/DD/{CallSid}.wav`` for a call that started at ``at`` (use UTC); a later stream of the same
    call (``part`` 2, 3, …) is ``{CallSid}-{part}.wav`` beside it, so no stream ever replaces another's recording."""
    suffix = "" if part == 1 else f"-{part}"
    return validate_key(f"recordings/{at:%Y/%m/%d}/{call_sid}{suffix}.wav")


def transcript_key(recording: str) -> str:
    """The transcript's key beside a recording's: same folder and stem, ``.json``."""
    stem, dot, _ = recording.rpartition(".")
    return validate_key(f"{stem if dot else recording}.json")


def validate_key(key: str) -> str:
    """Reject keys that could escape a local root or differ between archives (``..``, absolute, empty parts)."""
    parts = key.split("/")
    if not key or "\\" in key or "\x00" in key or any(p in ("", ".", "..") for p in parts):
        raise ArchiveRejected(f"invalid archive key {key!r}: need a relative a/b/c path", code="InvalidKey")
    return key
