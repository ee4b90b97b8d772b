"""``JobWorker``: runs claimed jobs with their handlers, renews their leases, settles their outcome.

One :meth:`JobWorker.run` task (owned by the app's TaskGroup) holds a TaskGroup of its own: the claim loop, a
lease keeper, a LISTEN connection that wakes the loop when a job is inserted (polling every ``poll_s`` covers a
lost notification), and one task per running handler, at most ``concurrency``.

Outcomes of one handler call:
    returns a mapping or None    ``done``; the mapping is stored as the job's ``result``
    raises, retryable            ``pending`` again after backoff (``RetryPolicy``), ``failed`` once attempts run out
    raises, not retryable        ``failed`` at once (see :mod:`switchboard.jobs.errors` for how that is decided)
    the process dies             nothing is written; the lease expires and a worker claims the job again

When the database is unreachable the worker keeps going: claims pause and an outcome that cannot be written is
dropped, which the lease turns into a later re-run (handlers are idempotent). ``aclose`` stops claiming, lets
running handlers finish for up to ``drain_s``, then cancels them and hands their jobs back.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import KW_ONLY, dataclass, field
from typing import Any

import orjson

from switchboard.backoff import backoff_s
from switchboard.store.errors import StoreUnavailable

from .errors import PermanentJobError
from .queue import Job, JobQueue

log = logging.getLogger(__name__)

Handler = Callable[[Job], Awaitable[Mapping[str, Any] | None]]
"""``async (job) -> result | None``; must be idempotent: it may run more than once for one job."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with "equal jitter": after attempt n wait U(c/2, c), c = min(max_s, base_s·2^(n-1))."""

    base_s: float = 2.0
    max_s: float = 600.0

    def delay(self, attempt: int, rng: random.Random) -> float:
        return backoff_s(attempt, self.base_s, self.max_s, rng)


@dataclass(slots=True)
class WorkerStats:
    """Counters since start; ``lost`` = outcomes not written (lease gone or database away)."""

    running: int = 0
    claimed: int = 0
    done: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0
    db_errors: int = 0


@dataclass(slots=True)
class _Outcome:
    result: Mapping[str, Any] | None = None
    error: str | None = None
    retryable: bool = True
    delay_s: float | None = None


@dataclass
class JobWorker:
    """Runs jobs of the kinds in ``handlers``; other kinds are left for workers that know them."""

    queue: JobQueue
    handlers: Mapping[str, Handler]
    _: KW_ONLY
    concurrency: int = 2
    lease_s: float = 60.0
    poll_s: float = 0.5
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    drain_s: float = 10.0
    listen: bool = True
    name: str = field(default_factory=lambda: f"worker-{uuid.uuid4().hex[:8]}")
    rng: random.Random = field(default_factory=random.Random)
    _stats: WorkerStats = field(default_factory=WorkerStats, init=False)
    _active: dict[int, tuple[Job, asyncio.Task[None]]] = field(default_factory=dict, init=False)
    _wake: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _closing: bool = field(default=False, init=False)
    _done: asyncio.Event = field(default_factory=asyncio.Event, init=False)
    _started: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.lease_s <= 0 or self.poll_s <= 0:
            raise ValueError("concurrency must be ≥ 1 and lease_s, poll_s positive")

    def stats(self) -> WorkerStats:
        self._stats.running = len(self._active)
        return WorkerStats(**{name: getattr(self._stats, name) for name in WorkerStats.__slots__})

    async def run(self) -> None:
        """Claim and run jobs until :meth:`aclose`; cancelling it abandons running jobs to their leases. After a
        crash it may be run again (the app's supervisor does, with backoff)."""
        if self._started:
            raise RuntimeError("JobWorker.run() is already running")
        self._started = True
        self._done.clear()
        try:
            async with asyncio.TaskGroup() as group:
                helpers = [group.create_task(self._keep_leases(), name=f"{self.name}:leases")]
                if self.listen:
                    helpers.append(group.create_task(self._listen(), name=f"{self.name}:listen"))
                await self._claim_loop(group)
                await self._drain()
                for task in helpers:
                    task.cancel()
        finally:
            self._started = False
            self._done.set()

    async def aclose(self) -> None:
        """Stop claiming, wait up to ``drain_s`` for running handlers, then interrupt and release the rest."""
        self._closing = True
        self._wake.set()
        if self._started:
            await self._done.wait()

    async def _claim_loop(self, group: asyncio.TaskGroup) -> None:
        kinds = sorted(self.handlers)
        while not self._closing:
            self._wake.clear()
            free = self.concurrency - len(self._active)
            jobs = await self._claim(kinds, free) if free > 0 else []
            for job in jobs:
                self._active[job.id] = (job, group.create_task(self._execute(job), name=f"job:{job.id}:{job.kind}"))
            if jobs and len(jobs) == free:
                continue  # maybe more are due: claim again as soon as a slot frees
            try:
                async with asyncio.timeout(self.poll_s):
                    await self._wake.wait()
            except TimeoutError:
                pass  # the poll interval: look for due jobs again

    async def _claim(self, kinds: list[str], free: int) -> list[Job]:
        try:
            jobs = await self.queue.claim(kinds, free, lease_s=self.lease_s, worker=self.name)
        except StoreUnavailable as exc:
            self._stats.db_errors += 1
            log.warning("%s: cannot claim jobs: %s", self.name, exc)
            return []
        self._stats.claimed += len(jobs)
        return jobs

    async def _execute(self, job: Job) -> None:
        try:
            outcome = await self._invoke(job)
            await self._settle(job, outcome)
        finally:
            self._active.pop(job.id, None)
            self._wake.set()

    async def _invoke(self, job: Job) -> _Outcome:
        try:
            result = await self.handlers[job.kind](job)
            if result is not None:
                orjson.dumps(dict(result))  # refuse a result that cannot be stored while we can say why
        except orjson.JSONEncodeError as exc:
            return self._failure(job, PermanentJobError(f"handler result is not JSON: {exc}"))
        except Exception as exc:  # the handler's failure is the job's outcome: recorded and logged, not lost
            return self._failure(job, exc)
        return _Outcome(result=result)

    def _failure(self, job: Job, exc: Exception) -> _Outcome:
        retryable = bool(getattr(exc, "retryable", True))
        delay = getattr(exc, "delay_s", None)
        level = logging.WARNING if retryable and job.attempts < job.max_attempts else logging.ERROR
        log.log(level, "job %d (%s) attempt %d/%d failed", job.id, job.kind, job.attempts, job.max_attempts,
                exc_info=exc)  # fmt: skip
        return _Outcome(error=f"{type(exc).__name__}: {exc}", retryable=retryable,
                        delay_s=float(delay) if delay is not None else None)  # fmt: skip

    async def _settle(self, job: Job, outcome: _Outcome) -> None:
        try:
            if outcome.error is None:
                written = await self.queue.complete(job, outcome.result)
                self._stats.done += written
            else:
                delay = outcome.delay_s if outcome.delay_s is not None else self.retry.delay(job.attempts, self.rng)
                status = await self.queue.settle_failure(job, outcome.error, retryable=outcome.retryable,
                                                         delay_s=delay)  # fmt: skip
                written = status is not None
                self._stats.retried += status == "pending"
                self._stats.failed += status == "failed"
        except StoreUnavailable as exc:
            self._stats.db_errors += 1
            log.warning("job %d: outcome not recorded, it will run again after its lease: %s", job.id, exc)
            written = False
        if not written:
            self._stats.lost += 1

    async def _drain(self) -> None:
        running = {task: job for job, task in self._active.values()}
        if not running:
            return
        _, pending = await asyncio.wait(running, timeout=self.drain_s)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
        for task in pending:
            try:
                await self.queue.release(running[task])
            except StoreUnavailable as exc:
                log.warning("job %d not released, its lease will expire: %s", running[task].id, exc)

    async def _keep_leases(self) -> None:
        """Renew held leases every third of ``lease_s``; fail jobs whose last lease expired elsewhere."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            claims = [(job.id, job.attempts) for job, _ in self._active.values()]
            try:
                await self.queue.extend(claims, self.lease_s)
                reaped = await self.queue.reap_expired()
            except StoreUnavailable as exc:
                self._stats.db_errors += 1
                log.warning("%s: cannot renew leases: %s", self.name, exc)
                continue
            if reaped:
                log.error("%d job(s) failed: lease expired on their last attempt", reaped)

    async def _listen(self) -> None:
        """Hold a LISTEN connection; reconnect when it is lost. Polling covers the gaps."""
        while True:
            try:
                await self._listen_once()
            except StoreUnavailable as exc:
                log.warning("%s: LISTEN unavailable, polling only: %s", self.name, exc)
            await asyncio.sleep(self.poll_s * 4)

    async def _listen_once(self) -> None:
        lost = asyncio.Event()

        def on_lost(_conn: object) -> None:
            lost.set()

        async with self.queue.listening(lambda _kind: self._wake.set()) as conn:
            conn.add_termination_listener(on_lost)
            try:
                await lost.wait()
            finally:
                conn.remove_termination_listener(on_lost)
