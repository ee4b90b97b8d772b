"""What a job handler raises to steer its job.

    JobError             base; ``retryable`` decides between another attempt and ``failed``
    ├── RetryJob         try again, optionally not before ``delay_s`` (a provider's Retry-After)
    └── PermanentJobError  the job cannot succeed (bad payload, unknown call): ``failed`` at once

A handler may also let any error with a ``retryable`` attribute escape (``StoreError``, ``ArchiveError``,
``ExtractionError``, ``SmsError`` all carry one); anything without it is treated as retryable, so an unforeseen
failure costs attempts, never the job. Database failures of the queue itself are ``switchboard.store`` errors.
"""

from __future__ import annotations


class JobError(Exception):
    """Base of the errors handlers raise on purpose."""

    retryable: bool = True


class RetryJob(JobError):
    """Run the job again later; ``delay_s`` overrides the worker's backoff for this once."""

    def __init__(self, message: str, *, delay_s: float | None = None) -> None:
        super().__init__(message)
        self.delay_s = delay_s


class PermanentJobError(JobError):
    """Retrying cannot help; the job is marked ``failed`` with this message."""

    retryable = False
