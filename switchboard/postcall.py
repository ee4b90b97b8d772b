"""Build the during- and after-the-call services: extractor, archive + spool, job queue and worker, SMS alerts.

Called from the app's lifespan with its exit stack and supervisor, so every client is closed and every loop is
stopped and awaited on shutdown, in reverse order of construction, and a loop that crashes is restarted.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from switchboard.alerts.sms import SmsAlerter
from switchboard.archive import Archive, ArchiveSpool
from switchboard.archive.local import LocalArchive
from switchboard.archive.s3 import S3Archive
from switchboard.config import Settings
from switchboard.extract import FallbackExtractor, OfflineExtractor
from switchboard.extract.openai_client import OpenAIExtractor
from switchboard.jobs import JobQueue, JobWorker
from switchboard.jobs.end_spool import CallEndSpool
from switchboard.jobs.handlers import AlertRoute, PostCallHandlers
from switchboard.store.pg import PgStore
from switchboard.supervisor import Supervisor


@dataclass(frozen=True, slots=True)
class PostCall:
    extractor: FallbackExtractor
    archive: Archive
    spool: ArchiveSpool
    queue: JobQueue
    worker: JobWorker
    handlers: PostCallHandlers
    end_spool: CallEndSpool | None = None
    """Ends of calls (row + jobs) the database could not take when they happened, applied when it is back."""


def _archive(settings: Settings) -> Archive:
    if settings.aws_s3_bucket:
        return S3Archive(settings.aws_s3_bucket, region=settings.aws_region, endpoint_url=settings.aws_endpoint_url,
                         access_key=settings.aws_access_key_id,
                         secret_key=settings.aws_secret_access_key.reveal() if settings.aws_secret_access_key else None)
    return LocalArchive(settings.data_dir)  # recordings already live there: putting them is a no-op


async def build_post_call(settings: Settings, store: PgStore, stack: AsyncExitStack,
                          supervisor: Supervisor, *, segments_settled: Callable[[], bool] = lambda: True) -> PostCall:
    openai = None
    if settings.openai_api_key is not None:
        openai = OpenAIExtractor(settings.openai_api_key.reveal(), base_url=settings.openai_base_url)
    extractor = FallbackExtractor(openai, OfflineExtractor())
    stack.push_async_callback(extractor.close)

    archive = _archive(settings)
    stack.callback(archive.close)
    spool = ArchiveSpool(archive, settings.spool_dir / "archive", retry_max_s=settings.archive_retry_max_s)
    supervisor.start("archive-spool", spool.run)
    stack.push_async_callback(spool.aclose)

    alerts = None
    if settings.oncall_number and settings.twilio_phone_number:
        alerter = SmsAlerter(settings.twilio_account_sid, settings.twilio_auth_token.reveal(),
                             settings.twilio_phone_number, base_url=settings.twilio_api_url)
        stack.push_async_callback(alerter.close)
        alerts = AlertRoute(alerter, settings.oncall_number, f"{settings.public_base}/api/calls/{{call_sid}}")

    queue = JobQueue(store)
    handlers = PostCallHandlers(store, queue, extractor, spool, alerts)
    worker = JobWorker(queue, handlers.handlers(), lease_s=settings.job_lease_s)
    supervisor.start("job-worker", worker.run)
    stack.push_async_callback(worker.aclose)
    end_spool = CallEndSpool(settings.spool_dir / "call-ends", store, handlers, settled=segments_settled)
    supervisor.start("call-end-spool", end_spool.run)
    stack.push_async_callback(end_spool.aclose)
    return PostCall(extractor, archive, spool, queue, worker, handlers, end_spool)
