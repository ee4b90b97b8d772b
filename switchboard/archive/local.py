"""``LocalArchive``: a directory as the archive, the embedded default when no bucket is configured.

Writes are atomic (temp file in the destination folder, fsync, ``os.replace``, fsync of the folder), so a reader or
a crash never sees half a recording under its final name. When the recorder already writes into the archive root
(``<data dir>/recordings/…`` with the data dir as root) the source *is* the destination and ``put_file`` does
nothing but report it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import BinaryIO

from .base import ArchivedObject, validate_key
from .errors import ArchiveError, ArchiveRejected, ArchiveSourceError, ArchiveUnavailable

_COPY_CHUNK = 1 << 20


class LocalArchive:
    """Files under ``root/key``. Metadata is not stored: the key already names the call."""

    name = "local"

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key).split("/"))

    async def put_file(
        self, key: str, path: Path, content_type: str, *, metadata: Mapping[str, str] | None = None
    ) -> ArchivedObject:
        dest = self.path_for(key)
        return await asyncio.to_thread(self._put_file, key, path, dest, content_type)

    async def put_bytes(
        self, key: str, data: bytes, content_type: str, *, metadata: Mapping[str, str] | None = None
    ) -> ArchivedObject:
        dest = self.path_for(key)
        return await asyncio.to_thread(self._put_bytes, key, data, dest, content_type)

    async def exists(self, key: str) -> bool:
        return await asyncio.to_thread(self.path_for(key).is_file)

    async def check(self) -> None:
        await asyncio.to_thread(self._check)

    def close(self) -> None:
        """Nothing to release: every write opens and closes its own files."""

    def _check(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ArchiveUnavailable(f"archive root {self.root} cannot be created: {exc}") from exc
        if not os.access(self.root, os.W_OK | os.X_OK):
            raise ArchiveUnavailable(f"archive root {self.root} is not writable")

    def _put_file(self, key: str, source: Path, dest: Path, content_type: str) -> ArchivedObject:
        try:
            src = open(source, "rb")  # opened before the destination so read errors are told apart from write errors
        except OSError as exc:
            raise ArchiveSourceError(f"cannot read {source} for {key!r}: {exc}") from exc
        with src:
            size = os.fstat(src.fileno()).st_size
            if _same_file(source, dest):
                return ArchivedObject(key, size, content_type, dest.resolve().as_uri())
            _write_translated(dest, lambda out: shutil.copyfileobj(src, out, _COPY_CHUNK))
        return ArchivedObject(key, size, content_type, dest.resolve().as_uri())

    def _put_bytes(self, key: str, data: bytes, dest: Path, content_type: str) -> ArchivedObject:
        _write_translated(dest, lambda out: out.write(data))
        return ArchivedObject(key, len(data), content_type, dest.resolve().as_uri())


def _write_translated(dest: Path, fill: Callable[[BinaryIO], object]) -> None:
    try:
        write_atomic(dest, fill)
    except OSError as exc:
        raise _translate(exc, dest) from exc


def _same_file(source: Path, dest: Path) -> bool:
    return source.resolve() == dest.resolve() or (dest.exists() and os.path.samefile(source, dest))


def write_atomic(dest: Path, fill: Callable[[BinaryIO], object]) -> None:
    """Write through ``fill(file)`` into a temp file beside ``dest``, then rename it over ``dest`` durably.

    Raises ``OSError``; the temp file (``.name.*.tmp``) is removed on failure."""
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as out:
            fill(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, dest)
        _fsync_dir(dest.parent)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _translate(exc: OSError, dest: Path) -> ArchiveError:
    """Permissions and bad names will not heal by themselves; a full or failing disk may."""
    if isinstance(exc, PermissionError | IsADirectoryError | NotADirectoryError | FileExistsError):
        return ArchiveRejected(f"cannot write {dest}: {exc}")
    return ArchiveUnavailable(f"cannot write {dest}: {exc}")
