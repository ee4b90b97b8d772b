"""``SegmentWriter``: batches final transcript segments from the media path into the store, losing none.

The media path calls the synchronous :meth:`SegmentWriter.add`; one writer task (:meth:`SegmentWriter.run`)
sends batches of up to ``max_batch`` segments, at the latest ``flush_interval_s`` after the first one queued.

When the store is unavailable the batch is appended to a JSONL spool in ``spool_dir`` (fsync'd, so it survives
a crash) and the writer is *degraded*: new segments go to the spool each tick, and every backoff period
(doubling up to ``retry_max_s``) it replays the spool; once that succeeds it is healthy again. A spool left by
a crashed process is replayed when ``run()`` starts. Replays are idempotent: the store ignores duplicates.

Overflow policy: the in-memory queue holds ``max_queue`` segments; beyond that ``add`` spills the whole queue
to the spool synchronously (one fsync, rare) rather than drop anything. Segments the store refuses outright
(not retryable) are isolated one by one and appended to ``rejected.jsonl`` for an operator; never replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path

import orjson

from switchboard.backoff import backoff_s

from .base import Segment, Store
from .errors import SpoolError, StoreError, StoreUnavailable

_log = logging.getLogger(__name__)

ACTIVE_SPOOL = "segments.jsonl"
REJECTED = "rejected.jsonl"


@dataclasses.dataclass(frozen=True, slots=True)
class WriterStats:
    """Counts since construction; ``written`` counts store acknowledgements (replays may repeat some)."""

    queued: int
    written: int
    spooled: int
    replayed: int
    rejected: int
    failures: int
    degraded: bool
    last_error: str | None


class Spool:
    """Append-only JSONL files in one directory; a claimed file is replayed then deleted."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def append(self, segments: Sequence[Segment], name: str = ACTIVE_SPOOL) -> None:
        """Append and fsync; raise :class:`SpoolError` if the disk refuses."""
        data = b"".join(orjson.dumps(dataclasses.asdict(s)) + b"\n" for s in segments)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            with open(self.directory / name, "ab") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise SpoolError(f"cannot spool {len(segments)} segments to {self.directory}: {exc}") from exc

    def has_pending(self) -> bool:
        return bool(self._claimed()) or (self.directory / ACTIVE_SPOOL).exists()

    def claim(self) -> list[Path]:
        """Rename the active file aside (so new appends start a fresh one) and list every file to replay."""
        active = self.directory / ACTIVE_SPOOL
        if active.exists():
            active.rename(self.directory / f"segments-{time.time_ns()}.jsonl")
        return self._claimed()

    def _claimed(self) -> list[Path]:
        return sorted(self.directory.glob("segments-*.jsonl")) if self.directory.exists() else []

    @staticmethod
    def read(path: Path) -> list[Segment]:
        """Parse a spool file; a torn line (the process died mid-write) is skipped with a warning."""
        segments = []
        for number, line in enumerate(path.read_bytes().splitlines(), 1):
            try:
                segments.append(Segment(**orjson.loads(line)))
            except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
                _log.warning("skipping unreadable line %d of spool %s: %s", number, path, exc)
        return segments


class WriterState(Enum):
    """The writer's lifecycle (whether the store is reachable is ``degraded``, a separate matter)."""

    OPEN = "open"  # takes segments; run() writes them
    CLOSING = "closing"  # aclose() was called: run() drains the queue, then returns
    FINISHED = "finished"  # stopped for good: add() goes straight to the spool


class SegmentWriter:
    """Batched, spool-backed writer of transcript segments. Not thread-safe: use it from the event loop."""

    def __init__(
        self,
        store: Store,
        *,
        spool_dir: Path,
        max_batch: int = 200,
        flush_interval_s: float = 0.25,
        retry_max_s: float = 30,
        retry_min_s: float = 0.5,
        max_queue: int = 10_000,
    ) -> None:
        self._store = store
        self._spool = Spool(spool_dir)
        self._max_batch = max_batch
        self._flush_interval_s = flush_interval_s
        self._retry_min_s = min(retry_min_s, retry_max_s)
        self._retry_max_s = retry_max_s
        self._max_queue = max_queue
        self._queue: deque[Segment] = deque()
        self._inflight: list[Segment] = []  # taken from the queue, not yet stored or spooled
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Event()
        self._urgent = 0  # callers in wait_flushed(): write now rather than at the next tick
        self._stopped = asyncio.Event()
        self._running = False  # inside run()
        self._state = WriterState.OPEN
        self._degraded = self._spool_pending = False
        self._streak = 0  # consecutive retryable failures: the backoff grows with it
        self._retry_at = 0.0
        self._written = self._spooled = self._replayed = self._rejected = self._failures = 0
        self._last_error: str | None = None

    def add(self, segment: Segment) -> None:
        """Queue a segment; never waits. After the writer has stopped, the segment goes straight to the spool."""
        if self._state is WriterState.FINISHED:
            self._to_spool_sync([segment])
            return
        self._queue.append(segment)
        if len(self._queue) > self._max_queue:
            _log.warning("segment queue over %d: spilling it to the spool", self._max_queue)
            spill = list(self._queue)
            self._queue.clear()
            self._to_spool_sync(spill)
        elif len(self._queue) in (1, self._max_batch):
            self._wakeup.set()

    @property
    def _closing(self) -> bool:
        """:meth:`aclose` was called: drain what is queued, then stop."""
        return self._state is not WriterState.OPEN

    def settled(self) -> bool:
        """Nothing waits on the spool: every segment spooled during an outage has been replayed into the store."""
        return not self._spool_pending and not self._degraded

    def stats(self) -> WriterStats:
        return WriterStats(
            queued=len(self._queue) + len(self._inflight),
            written=self._written,
            spooled=self._spooled,
            replayed=self._replayed,
            rejected=self._rejected,
            failures=self._failures,
            degraded=self._degraded,
            last_error=self._last_error,
        )

    async def run(self) -> None:
        """The writer loop. Returns after :meth:`aclose`; if cancelled, spools what it holds and re-raises.

        If it crashes (the spool's disk is full while the store is down) it keeps what it holds in memory and
        re-raises; it may then be run again (the app's supervisor does, with backoff)."""
        if self._running or self._state is WriterState.FINISHED:
            raise RuntimeError("SegmentWriter.run() is running or has finished")
        self._running = True
        self._stopped.clear()
        loop = asyncio.get_running_loop()
        crashed = False
        try:
            self._spool_pending = await asyncio.to_thread(self._spool.has_pending)
            while not self._drained():
                await self._wait_for_work(loop)
                retry_due = self._degraded and not self._closing and loop.time() >= self._retry_at
                if retry_due or (self._spool_pending and not self._degraded):
                    await self._replay(loop)
                batch = self._take()
                if batch:
                    await self._write(batch, loop)
        except Exception:
            crashed = not self._closing
            raise
        finally:
            self._running = False
            try:
                if crashed:  # the batch in flight goes back to the front of the queue, for the next run
                    self._queue.extendleft(reversed(self._inflight))
                    self._inflight = []
                else:  # cancelled or closing: what is still in memory goes to disk, synchronously
                    self._finish()
            finally:
                self._stopped.set()
                self._progress.set()

    def _finish(self) -> None:
        leftovers = self._inflight + list(self._queue)
        self._inflight, self._state = [], WriterState.FINISHED
        self._queue.clear()
        if leftovers:
            self._to_spool_sync(leftovers)

    async def aclose(self) -> None:
        """Flush what is queued (to the store, else the spool) and wait for :meth:`run` to return."""
        if self._state is WriterState.OPEN:
            self._state = WriterState.CLOSING
        self._wakeup.set()
        if self._running:
            await self._stopped.wait()
        elif self._state is not WriterState.FINISHED:
            await self.run()  # never started: drain inline

    async def wait_flushed(self, timeout_s: float = 10.0) -> bool:
        """Wait until everything added so far is stored or spooled: the end of a call waits here so that the
        call's transcript is readable when ``call.ended`` goes out. False on timeout or if the writer is not running.
        """
        if not self._running:
            return not self._queue
        self._urgent += 1
        self._wakeup.set()
        try:
            async with asyncio.timeout(timeout_s):
                while (self._queue or self._inflight) and self._running:
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            return False
        finally:
            self._urgent -= 1
        return not self._queue and not self._inflight

    def _drained(self) -> bool:
        """Closing with nothing left to try: queue empty, spool replayed (or the store is down: replay later)."""
        return self._closing and not self._queue and (self._degraded or not self._spool_pending)

    async def _wait_for_work(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._closing or (self._spool_pending and not self._degraded):
            return
        full = lambda: len(self._queue) >= self._max_batch or self._closing or self._urgent > 0  # noqa: E731
        if self._degraded:  # spool each tick or full batch, and wake when a retry is due
            await self._wait_until(full, min(self._flush_interval_s, self._retry_at - loop.time()))
            return
        await self._wait_until(lambda: bool(self._queue) or self._closing, None)
        await self._wait_until(full, self._flush_interval_s)

    async def _wait_until(self, ready: Callable[[], bool], within_s: float | None) -> None:
        """Sleep until ``ready()`` or ``within_s``; add() and aclose() set the event when state may change."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(None if within_s is None else max(within_s, 0.0)):
                while not ready():
                    self._wakeup.clear()
                    await self._wakeup.wait()

    def _take(self) -> list[Segment]:
        count = min(len(self._queue), self._max_batch)
        self._inflight = [self._queue.popleft() for _ in range(count)]
        return self._inflight

    async def _write(self, batch: list[Segment], loop: asyncio.AbstractEventLoop) -> None:
        if self._degraded:
            await self._to_spool(batch)
        else:
            await self._store_batch(batch, loop, spool=True)
        self._inflight = []
        self._progress.set()

    async def _store_batch(self, batch: list[Segment], loop: asyncio.AbstractEventLoop, *, spool: bool) -> bool:
        """One round trip; False if the store is unavailable (then the batch is spooled if ``spool``)."""
        try:
            await self._store.add_segments(batch)
        except StoreUnavailable as exc:
            self._failed(exc, loop)
            if spool:
                await self._to_spool(batch)
            return False
        except StoreError as exc:
            self._failed(exc, loop)
            return await self._isolate(batch, loop)
        self._written += len(batch)
        return True

    async def _isolate(self, batch: list[Segment], loop: asyncio.AbstractEventLoop) -> bool:
        """One segment per call to find the ones the store refuses; False if the store went away meanwhile."""
        for i, segment in enumerate(batch):
            try:
                await self._store.add_segments([segment])
            except StoreUnavailable as exc:
                self._failed(exc, loop)
                await self._to_spool(batch[i:])
                return False
            except StoreError as exc:
                _log.error("store refused segment %s/%s/%d: %s", segment.call_sid, segment.track, segment.seq, exc)
                await asyncio.to_thread(self._spool.append, [segment], REJECTED)
                self._rejected += 1
            else:
                self._written += 1
        return True

    async def _replay(self, loop: asyncio.AbstractEventLoop) -> None:
        """Replay every spool file; stay degraded (and keep the file) at the first unavailability."""
        for path in await asyncio.to_thread(self._spool.claim):
            segments = await asyncio.to_thread(Spool.read, path)
            for start in range(0, len(segments), self._max_batch):
                chunk = segments[start : start + self._max_batch]
                if not await self._store_batch(chunk, loop, spool=False):
                    return  # the file stays claimed and is replayed whole next time
            await asyncio.to_thread(path.unlink)
            self._replayed += len(segments)
            _log.info("replayed %d spooled segments from %s", len(segments), path.name)
        if self._degraded:
            _log.warning("store available again after %d failures", self._failures)
        self._degraded, self._streak = False, 0
        self._spool_pending = await asyncio.to_thread(self._spool.has_pending)

    def _failed(self, exc: StoreError, loop: asyncio.AbstractEventLoop) -> None:
        self._failures += 1
        self._last_error = f"{type(exc).__name__}: {exc}"
        if exc.retryable:
            if not self._degraded:
                _log.warning("store unavailable, spooling segments to %s: %s", self._spool.directory, exc)
            self._degraded = True
            self._streak += 1
            self._retry_at = loop.time() + backoff_s(self._streak, self._retry_min_s, self._retry_max_s)

    async def _to_spool(self, segments: Sequence[Segment]) -> None:
        await asyncio.to_thread(self._spool.append, segments)
        self._spooled += len(segments)
        self._spool_pending = True

    def _to_spool_sync(self, segments: Sequence[Segment]) -> None:
        self._spool.append(segments)
        self._spooled += len(segments)
        self._spool_pending = True
