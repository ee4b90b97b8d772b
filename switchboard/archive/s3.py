"""``S3Archive``: recordings and transcripts in an S3 bucket (AWS or any S3-compatible server) through boto3.

boto3 blocks, so every call runs on a small executor owned by the archive, never on the event loop. Files go
through s3transfer: above ``multipart_threshold`` they are uploaded in ``multipart_chunksize`` parts read from disk
as they are sent, so memory stays at about ``max_concurrency`` parts whatever the recording's length.

botocore retries a few times itself (mode "standard": connection errors, 5xx, throttling) to ride out blips; the
long retries belong to :class:`~switchboard.archive.spool.ArchiveSpool`. Every botocore and boto3 error is translated
here into the :mod:`switchboard.archive.errors` tree.

Credentials: explicit keys when given, else botocore's usual chain (environment, config files) *without* the EC2 and
container metadata endpoints unless ``use_instance_credentials`` — a dev box must not probe link-local addresses.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final, TypeVar

import boto3
import botocore.session
from boto3.s3.transfer import TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ProfileNotFound,
    ValidationError,
)

from .base import ArchivedObject, validate_key
from .errors import ArchiveError, ArchiveRejected, ArchiveSourceError, ArchiveUnavailable

MiB: Final = 1 << 20
_T = TypeVar("_T")

# Error codes S3 returns with a 4xx status that still mean "try again later".
_RETRYABLE_CODES: Final = frozenset(
    {"RequestTimeout", "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded",
     "TooManyRequestsException", "BandwidthLimitExceeded", "OperationAborted", "RequestTimeTooSkewed"}
)  # fmt: skip
_NOT_FOUND: Final = frozenset({"404", "NoSuchKey", "NotFound"})
_NO_BUCKET: Final = frozenset({"404", "NoSuchBucket", "NotFound"})
_CONFIG_ERRORS: Final = (NoCredentialsError, PartialCredentialsError, NoRegionError, ProfileNotFound, ValidationError)


class S3Archive:
    """One bucket. ``close()`` when done: it owns an HTTP pool and threads."""

    name = "s3"

    def __init__(
        self,
        bucket: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        multipart_threshold: int = 8 * MiB,
        multipart_chunksize: int = 8 * MiB,
        max_concurrency: int = 4,
        connect_timeout: float = 5,
        read_timeout: float = 30,
        max_attempts: int = 3,
        create_bucket_if_missing: bool = False,
        use_instance_credentials: bool = False,
    ) -> None:
        self.bucket = bucket
        self.region = region
        self._create_bucket = create_bucket_if_missing
        self._bucket_ready = False
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "total_max_attempts": max_attempts},
            max_pool_connections=max_concurrency + 4,
            # S3-compatible servers rarely serve virtual-host buckets on an IP or localhost endpoint.
            s3={"addressing_style": "path"} if endpoint_url else None,
        )
        core = botocore.session.Session()
        if not use_instance_credentials:
            resolver = core.get_component("credential_provider")
            for provider in ("container-role", "iam-role"):
                resolver.remove(provider)
        self._client: Any = boto3.session.Session(botocore_session=core).client(
            "s3",
            region_name=region,
            endpoint_url=endpoint_url,
            aws_access_key_id=access_key,
            aws_secret_access_key=secret_key,
            config=config,
        )
        self._transfer = TransferConfig(
            multipart_threshold=multipart_threshold,
            multipart_chunksize=multipart_chunksize,
            max_concurrency=max_concurrency,
            use_threads=max_concurrency > 1,
            preferred_transfer_client="classic",
        )
        # Callers run one upload at a time per spool; a few workers let exists()/check() answer meanwhile.
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="s3-archive")

    def url_for(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    async def put_file(
        self, key: str, path: Path, content_type: str, *, metadata: Mapping[str, str] | None = None
    ) -> ArchivedObject:
        validate_key(key)
        return await self._run(self._put_file, key, path, content_type, dict(metadata or {}))

    async def put_bytes(
        self, key: str, data: bytes, content_type: str, *, metadata: Mapping[str, str] | None = None
    ) -> ArchivedObject:
        validate_key(key)
        return await self._run(self._put_bytes, key, data, content_type, dict(metadata or {}))

    async def exists(self, key: str) -> bool:
        validate_key(key)
        return await self._run(self._exists, key)

    async def check(self) -> None:
        """Raise :class:`ArchiveUnavailable` when unreachable, :class:`ArchiveRejected` for a missing bucket or
        refused credentials (configuration an operator must fix)."""
        await self._run(self._check)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._client.close()

    async def _run(self, fn: Callable[..., _T], *args: object) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(_translated, fn, *args))

    def _put_file(self, key: str, path: Path, content_type: str, metadata: dict[str, str]) -> ArchivedObject:
        try:
            size = os.stat(path).st_size
        except OSError as exc:
            raise ArchiveSourceError(f"cannot read {path} for {key!r}: {exc}") from exc
        self._ensure_bucket()
        extra = {"ContentType": content_type, "Metadata": metadata}
        with create_transfer_manager(self._client, self._transfer) as manager:
            try:
                manager.upload(str(path), self.bucket, key, extra_args=extra).result()
            except (BotoCoreError, ClientError):
                raise  # translated by _translated; some botocore errors are OSErrors too
            except OSError as exc:
                raise ArchiveSourceError(f"reading {path} failed during upload of {key!r}: {exc}") from exc
        return self._stored(key, size, content_type)

    def _put_bytes(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> ArchivedObject:
        self._ensure_bucket()
        self._client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, Metadata=metadata)
        return self._stored(key, len(data), content_type)

    def _stored(self, key: str, size: int, content_type: str) -> ArchivedObject:
        """HEAD the new object: its size must match what we sent, and the ETag tells a multipart upload (``-N``)."""
        head = self._client.head_object(Bucket=self.bucket, Key=key)
        if head["ContentLength"] != size:
            raise ArchiveUnavailable(f"{self.url_for(key)} holds {head['ContentLength']} bytes, sent {size}")
        return ArchivedObject(key, size, content_type, self.url_for(key), head.get("ETag", "").strip('"') or None)

    def _exists(self, key: str) -> bool:
        try:
            self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return False
            raise
        return True

    def _check(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            if _code(exc) not in _NO_BUCKET:
                raise
            if not self._create_bucket:  # HEAD has no body: name the problem ourselves
                raise ArchiveRejected(
                    f"bucket {self.bucket!r} does not exist", code="NoSuchBucket", status=404
                ) from exc
            self._create()
        self._bucket_ready = True

    def _ensure_bucket(self) -> None:
        """With ``create_bucket_if_missing``, create the bucket before the first upload; otherwise a missing
        bucket shows up as the upload's own ``NoSuchBucket``, without an extra request."""
        if self._create_bucket and not self._bucket_ready:
            self._check()

    def _create(self) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region and self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self._client.create_bucket(**kwargs)
        except ClientError as exc:
            if _code(exc) != "BucketAlreadyOwnedByYou":
                raise


def _translated(fn: Callable[..., _T], *args: object) -> _T:
    """Run ``fn`` (in a worker thread), turning botocore's errors into ours: the one place that knows boto."""
    try:
        return fn(*args)
    except ClientError as exc:
        raise translate_client_error(exc) from exc
    except _CONFIG_ERRORS as exc:
        raise ArchiveRejected(f"S3 client misconfigured: {exc}") from exc
    except BotoCoreError as exc:  # connection refused/reset, timeouts, truncated reads: the network's fault
        raise ArchiveUnavailable(f"S3 unreachable: {exc}") from exc


def translate_client_error(exc: ClientError) -> ArchiveError:
    """An answer from the server: 5xx, 429 and throttling codes are retryable, every other 4xx is a refusal."""
    code = _code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    message = exc.response.get("Error", {}).get("Message") or str(exc)
    text = f"S3 {exc.operation_name} failed: {code} (HTTP {status}): {message}"
    if status is None or status >= 500 or status == 429 or code in _RETRYABLE_CODES:
        return ArchiveUnavailable(text, code=code, status=status)
    return ArchiveRejected(text, code=code, status=status)


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
