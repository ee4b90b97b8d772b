"""Durable post-call work: jobs recorded in PostgreSQL before they run, executed at least once, retried.

    queue.py     JobQueue (enqueue with a dedupe key, list, stats; claim/renew/settle for workers), Job, QueueStats
    worker.py    JobWorker (claim loop, leases, LISTEN wake-up, drain on close), RetryPolicy, Handler
    handlers.py  PostCallHandlers: the ``extract``, ``lead``, ``sms`` and ``archive`` jobs of a finished call
    errors.py    JobError ← RetryJob, PermanentJobError (how a handler steers its job)

Our own ~300 lines rather than ``pgqueuer``: the table is ours (migrations, ``call_sid`` for the API, visible
attempts and errors), leases and retries are durable across crashes, and no extra runtime dependencies.
"""

from .errors import JobError, PermanentJobError, RetryJob
from .queue import CHANNEL, Job, JobQueue, JobSpec, JobStatus, QueueStats
from .worker import Handler, JobWorker, RetryPolicy, WorkerStats

__all__ = [
    "CHANNEL",
    "Handler",
    "Job",
    "JobError",
    "JobQueue",
    "JobSpec",
    "JobStatus",
    "JobWorker",
    "PermanentJobError",
    "QueueStats",
    "RetryJob",
    "RetryPolicy",
    "WorkerStats",
]
