"""``ArchiveSpool``: a durable upload queue in front of an :class:`~switchboard.archive.base.Archive`.

``enqueue`` writes one small JSON entry per file under ``spool_dir/pending/`` (temp file, fsync, rename, fsync of
the folder) *before* any upload is tried, so neither a crash nor an archive outage loses a recording: the file stays
where the recorder left it and the entry says where it must go. One task, :meth:`ArchiveSpool.run`, uploads entries
oldest first; a new instance on the same directory (after a restart or a crash) resumes whatever is pending.

Outcomes of one upload:
    success            the entry is removed (and the local file too with ``delete_after_upload``)
    retryable error    global backoff: the loop sleeps, then starts again from the oldest entry
    refusal (4xx),     the entry moves to ``spool_dir/failed/`` with the error for an operator; the local file
    missing source     is never deleted. :meth:`ArchiveSpool.requeue_failed` puts them back once fixed.

Backoff is global, not per entry: an outage fails every upload alike, so hammering the archive once per pending
file helps nobody. After the n-th consecutive retryable failure the loop waits a delay drawn uniformly from
``[b/2, b]`` with ``b = min(retry_max_s, retry_min_s · 2^(n-1))``, never below ``retry_min_s`` ("equal jitter":
instances that failed together do not retry together, and the wait still grows). One success resets it.

Enqueueing the same key again (a post-call job run twice) rewrites that entry in place: one upload, the newest
file. Attempt counts live in memory only; a restart retries at once, which is what a restart is for.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from switchboard.backoff import backoff_s

from .base import Archive, ArchivedObject, validate_key
from .errors import ArchiveError, ArchiveSourceError, ArchiveSpoolError
from .local import write_atomic

_log = logging.getLogger(__name__)
_ID = re.compile(r"\d{20}-[0-9a-f]{12}")  # enqueue time in ns, then a hash of the key: names sort oldest first


@dataclass(frozen=True, slots=True, eq=False)
class SpoolEntry:
    """One pending upload, stored as ``pending/{id}.json``; ids sort by enqueue time, so oldest first is by name."""

    id: str
    key: str
    path: Path
    content_type: str
    size: int
    enqueued_at: float
    metadata: Mapping[str, str]

    def to_json(self) -> dict[str, object]:
        return {
            "v": 1,
            "key": self.key,
            "path": str(self.path),
            "content_type": self.content_type,
            "size": self.size,
            "enqueued_at": self.enqueued_at,
            "metadata": dict(self.metadata),
        }


def read_entry(path: Path) -> SpoolEntry | None:
    """The entry in ``path``, or None if it is not one (hand-edited, foreign file); ``OSError`` propagates."""
    if not _ID.fullmatch(path.stem):
        return None
    try:
        d = json.loads(path.read_bytes())
        meta = {str(k): str(v) for k, v in d.get("metadata", {}).items()}
        key, source, ctype = str(d["key"]), Path(d["path"]), str(d["content_type"])
        return SpoolEntry(path.stem, key, source, ctype, int(d["size"]), float(d["enqueued_at"]), meta)
    except (ValueError, KeyError, TypeError, AttributeError):
        return None


def _write_json(dest: Path, record: Mapping[str, object]) -> None:
    data = json.dumps(record, indent=1).encode()
    write_atomic(dest, lambda f: f.write(data))


@dataclass(frozen=True, slots=True)
class SpoolStats:
    """A snapshot for ``/readyz`` and metrics. ``consecutive_failures`` > 0 means the archive is failing now."""

    pending: int
    pending_bytes: int
    oldest_age_s: float | None
    uploaded: int
    failed: int
    consecutive_failures: int
    last_error: str | None
    next_retry_in_s: float | None


@dataclass(slots=True)
class _State:
    uploaded: int = 0
    failed: int = 0
    consecutive: int = 0
    last_error: str | None = None
    retry_at: float | None = None
    attempts: dict[str, int] = field(default_factory=dict)


class ArchiveSpool:
    """Owns ``spool_dir``; one instance (and one :meth:`run`) per directory. Does not close the archive."""

    def __init__(
        self,
        archive: Archive,
        spool_dir: Path,
        *,
        retry_min_s: float = 1.0,
        retry_max_s: float = 300.0,
        delete_after_upload: bool = False,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if not 0 < retry_min_s <= retry_max_s:
            raise ValueError(f"need 0 < retry_min_s <= retry_max_s, got {retry_min_s}, {retry_max_s}")
        self._archive = archive
        self._pending_dir = spool_dir / "pending"
        self._failed_dir = spool_dir / "failed"
        self._retry = (retry_min_s, retry_max_s)
        self._delete_after_upload = delete_after_upload
        self._clock = clock
        self._rng = rng or random.Random()
        self._lock = threading.Lock()  # enqueue may be called from worker threads (aenqueue)
        self._entries: dict[str, SpoolEntry] = {}
        self._last_ns = 0
        self._state = _State()
        self._wake = asyncio.Event()
        self._closed = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._load()

    def enqueue(self, key: str, path: Path, content_type: str, *, metadata: Mapping[str, str] | None = None) -> None:
        """Record durably that ``path`` must be archived under ``key``; returns once the entry is on disk.

        Blocks for one fsync: call :meth:`aenqueue` from the event loop when that matters."""
        validate_key(key)
        source = path.resolve()
        try:
            size = source.stat().st_size
        except OSError as exc:
            raise ArchiveSourceError(f"cannot spool {path} for {key!r}: {exc}") from exc
        with self._lock:
            existing = next((e for e in self._entries.values() if e.key == key), None)
            now = self._clock()
            eid, since = (existing.id, existing.enqueued_at) if existing else (self._new_id(now, key), now)
            entry = SpoolEntry(eid, key, source, content_type, size, since, dict(metadata or {}))
            try:
                _write_json(self._pending_dir / f"{eid}.json", entry.to_json())
            except OSError as exc:
                raise ArchiveSpoolError(f"cannot record spool entry for {key!r} in {self._pending_dir}: {exc}") from exc
            self._entries[eid] = entry
        self._notify()

    async def aenqueue(
        self, key: str, path: Path, content_type: str, *, metadata: Mapping[str, str] | None = None
    ) -> None:
        """:meth:`enqueue` on a worker thread, so the fsync does not stall the event loop."""
        await asyncio.to_thread(self.enqueue, key, path, content_type, metadata=metadata)

    def backlog(self) -> SpoolStats:
        with self._lock:
            entries = list(self._entries.values())
        now = self._clock()
        st = self._state
        return SpoolStats(
            pending=len(entries),
            pending_bytes=sum(e.size for e in entries),
            oldest_age_s=max(0.0, now - min(e.enqueued_at for e in entries)) if entries else None,
            uploaded=st.uploaded,
            failed=st.failed,
            consecutive_failures=st.consecutive,
            last_error=st.last_error,
            next_retry_in_s=max(0.0, st.retry_at - now) if st.retry_at is not None else None,
        )

    async def run(self) -> None:
        """Upload pending entries until :meth:`aclose`. Run it as one owned task (a TaskGroup's)."""
        if self._task is not None:
            raise RuntimeError("ArchiveSpool.run() is already running")
        self._task = asyncio.current_task()
        self._loop = asyncio.get_running_loop()
        try:
            while not self._closed.is_set():
                self._wake.clear()
                entry = self._oldest()
                if entry is None:
                    await self._wake.wait()
                else:
                    await self._upload(entry)
        finally:
            self._task = None

    async def aclose(self, drain_s: float = 10.0) -> None:
        """Stop the loop: an upload in flight may finish within ``drain_s``, then the task is cancelled.

        Whatever was not uploaded stays pending on disk for the next start."""
        self._closed.set()
        self._wake.set()
        task = self._task
        if task is None or task.done():
            return
        _, still_running = await asyncio.wait({task}, timeout=drain_s)
        if still_running:
            task.cancel()
            await asyncio.wait({task})  # its outcome belongs to its owner (the TaskGroup), not to us

    def requeue_failed(self) -> int:
        """Move every entry in ``failed/`` back to pending (after an operator fixed the cause); returns how many."""
        moved = 0
        for path in sorted(self._failed_dir.glob("*.json")):
            entry = read_entry(path)
            if entry is not None:
                self.enqueue(entry.key, entry.path, entry.content_type, metadata=entry.metadata)
                path.unlink()
                moved += 1
        self._state.failed = max(0, self._state.failed - moved)
        return moved

    def _oldest(self) -> SpoolEntry | None:
        with self._lock:
            return self._entries[min(self._entries)] if self._entries else None

    async def _upload(self, entry: SpoolEntry) -> None:
        try:
            stored = await self._archive.put_file(entry.key, entry.path, entry.content_type, metadata=entry.metadata)
        except ArchiveError as exc:
            if exc.retryable:
                await self._back_off(entry, exc)
            else:
                self._fail(entry, exc)
            return
        self._done(entry, stored)

    def _done(self, entry: SpoolEntry, stored: ArchivedObject) -> None:
        with self._lock:
            current = self._entries.get(entry.id) is entry  # else re-enqueued with a newer file meanwhile: keep it
            if current:
                del self._entries[entry.id]
                (self._pending_dir / f"{entry.id}.json").unlink(missing_ok=True)
        st = self._state
        st.uploaded += 1
        st.consecutive, st.retry_at = 0, None
        st.attempts.pop(entry.id, None)
        if current and self._delete_after_upload and stored.url != entry.path.as_uri():
            entry.path.unlink(missing_ok=True)
        _log.info("archived %s (%d bytes) to %s", entry.key, entry.size, stored.url)

    async def _back_off(self, entry: SpoolEntry, exc: ArchiveError) -> None:
        st = self._state
        st.consecutive += 1
        st.attempts[entry.id] = st.attempts.get(entry.id, 0) + 1
        st.last_error = f"{entry.key}: {exc}"
        delay = backoff_s(st.consecutive, *self._retry, self._rng)
        st.retry_at = self._clock() + delay
        _log.warning("archive upload of %s failed (%s); retry #%d in %.1fs", entry.key, exc, st.consecutive, delay)
        with contextlib.suppress(TimeoutError):  # the timeout is the normal end of a backoff
            async with asyncio.timeout(delay):
                await self._closed.wait()

    def _fail(self, entry: SpoolEntry, exc: ArchiveError) -> None:
        record = entry.to_json() | {
            "error": str(exc),
            "error_type": type(exc).__name__,
            "error_code": exc.code,
            "attempts": self._state.attempts.pop(entry.id, 0) + 1,
            "failed_at": self._clock(),
        }
        with self._lock:
            if self._entries.get(entry.id) is not entry:
                return  # superseded by a newer enqueue of the same key, which gets its own try
            try:
                _write_json(self._failed_dir / f"{entry.id}.json", record)
                (self._pending_dir / f"{entry.id}.json").unlink(missing_ok=True)
            except OSError as err:
                raise ArchiveSpoolError(f"cannot move spool entry {entry.id} to {self._failed_dir}: {err}") from err
            del self._entries[entry.id]
        self._state.failed += 1
        self._state.last_error = f"{entry.key}: {exc}"
        _log.error("archive refused %s, moved to %s: %s", entry.key, self._failed_dir, exc)

    def _new_id(self, now: float, key: str) -> str:
        self._last_ns = max(self._last_ns + 1, int(now * 1e9))
        return f"{self._last_ns:020d}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"

    def _notify(self) -> None:
        """Wake the loop, also from a thread other than the loop's."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return  # run() has not started (it scans on start) or is over (the entry waits on disk)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)

    def _load(self) -> None:
        """Adopt entries left by an earlier process; drop half-written temp files (their enqueue never returned)."""
        try:
            self._pending_dir.mkdir(parents=True, exist_ok=True)
            self._failed_dir.mkdir(parents=True, exist_ok=True)
            for tmp in self._pending_dir.glob(".*.tmp"):
                tmp.unlink()
            for path in sorted(self._pending_dir.glob("*.json")):
                entry = read_entry(path)
                if entry is None:
                    _log.error("unreadable spool entry %s moved to %s", path.name, self._failed_dir)
                    os.replace(path, self._failed_dir / f"{path.stem}.corrupt")
                else:
                    self._entries[entry.id] = entry
            self._state.failed = sum(1 for p in self._failed_dir.iterdir() if not p.name.startswith("."))
        except OSError as exc:
            raise ArchiveSpoolError(f"cannot open archive spool {self._pending_dir.parent}: {exc}") from exc
        if self._entries:
            self._last_ns = max(int(e.id.partition("-")[0]) for e in self._entries.values())
            _log.info("archive spool resumes %d pending uploads", len(self._entries))
