"""S3Archive against a real SeaweedFS: small and multipart uploads, metadata, errors mapped at the boundary."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from switchboard.archive import ArchiveRejected, ArchiveSourceError, ArchiveUnavailable
from switchboard.archive.s3 import MiB, S3Archive, translate_client_error
from tests.s3_plugin import SeaweedFS, free_ports

KEY = "recordings/2026/01/31/CA0123.wav"


def make_archive(server: SeaweedFS, bucket: str, **kwargs: Any) -> S3Archive:
    options: dict[str, Any] = {
        "endpoint_url": server.endpoint_url,
        "access_key": server.access_key,
        "secret_key": server.secret_key,
        "region": "us-east-1",
        "max_attempts": 1,
        "connect_timeout": 2,
        "read_timeout": 10,
    }
    return S3Archive(bucket, **(options | kwargs))


@pytest.fixture
def archive(seaweedfs: SeaweedFS, s3_bucket: str) -> Iterator[S3Archive]:
    arch = make_archive(seaweedfs, s3_bucket, multipart_threshold=5 * MiB, multipart_chunksize=5 * MiB)
    yield arch
    arch.close()


def write(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


async def test_small_file_with_content_type_and_metadata(
    archive: S3Archive, seaweedfs: SeaweedFS, s3_bucket: str, tmp_path: Path
) -> None:
    data = write(tmp_path / "CA0123.wav", 40_000)
    stored = await archive.put_file(KEY, tmp_path / "CA0123.wav", "audio/wav", metadata={"call-sid": "CA0123"})
    assert (stored.size, stored.url) == (40_000, f"s3://{s3_bucket}/{KEY}")
    assert stored.etag is not None and "-" not in stored.etag  # a single PUT
    head = seaweedfs.client().head_object(Bucket=s3_bucket, Key=KEY)
    assert head["ContentType"] == "audio/wav"
    assert head["Metadata"] == {"call-sid": "CA0123"}
    body = seaweedfs.client().get_object(Bucket=s3_bucket, Key=KEY)["Body"].read()
    assert body == data
    assert await archive.exists(KEY)
    assert not await archive.exists("recordings/2026/01/31/CA0124.wav")


async def test_large_file_goes_up_in_parts(
    archive: S3Archive, seaweedfs: SeaweedFS, s3_bucket: str, tmp_path: Path
) -> None:
    data = write(tmp_path / "long.wav", 12 * MiB + 123)
    stored = await archive.put_file(KEY, tmp_path / "long.wav", "audio/wav")
    assert stored.etag is not None and stored.etag.endswith("-3")  # 5 + 5 + 2 MiB parts
    client = seaweedfs.client()
    part = client.head_object(Bucket=s3_bucket, Key=KEY, PartNumber=1)
    assert part["ContentLength"] == 5 * MiB
    assert client.get_object(Bucket=s3_bucket, Key=KEY)["Body"].read() == data


async def test_put_bytes_and_calls_run_off_the_event_loop(archive: S3Archive, seaweedfs: SeaweedFS) -> None:
    threads: list[int] = []
    real_put = archive._client.put_object

    def spy(**kwargs: Any) -> Any:
        threads.append(threading.get_ident())
        return real_put(**kwargs)

    archive._client.put_object = spy
    stored = await archive.put_bytes("recordings/2026/01/31/CA0123.json", b'{"a": 1}', "application/json")
    assert stored.size == 8
    assert threads and threading.get_ident() not in threads


async def test_wrong_bucket_is_rejected(seaweedfs: SeaweedFS, tmp_path: Path) -> None:
    write(tmp_path / "x.wav", 100)
    archive = make_archive(seaweedfs, "no-such-bucket-here")
    try:
        with pytest.raises(ArchiveRejected) as info:
            await archive.put_file(KEY, tmp_path / "x.wav", "audio/wav")
        assert (info.value.code, info.value.status, info.value.retryable) == ("NoSuchBucket", 404, False)
        with pytest.raises(ArchiveRejected):
            await archive.check()
    finally:
        archive.close()


async def test_bad_credentials_are_rejected(seaweedfs: SeaweedFS, s3_bucket: str) -> None:
    archive = make_archive(seaweedfs, s3_bucket, secret_key="not-the-secret")
    try:
        with pytest.raises(ArchiveRejected) as info:
            await archive.put_bytes(KEY, b"x", "audio/wav")
        assert info.value.status == 403
    finally:
        archive.close()


async def test_server_down_is_unavailable(tmp_path: Path) -> None:
    write(tmp_path / "x.wav", 100)
    (port,) = free_ports(1)  # nothing listens there: connection refused
    archive = S3Archive(
        "bucket", endpoint_url=f"http://127.0.0.1:{port}", access_key="k", secret_key="s", max_attempts=1
    )
    try:
        with pytest.raises(ArchiveUnavailable) as info:
            await archive.put_file(KEY, tmp_path / "x.wav", "audio/wav")
        assert info.value.retryable
        with pytest.raises(ArchiveUnavailable):
            await archive.check()
        with pytest.raises(ArchiveUnavailable):
            await archive.exists(KEY)
    finally:
        archive.close()


async def test_missing_source_file(archive: S3Archive, tmp_path: Path) -> None:
    with pytest.raises(ArchiveSourceError):
        await archive.put_file(KEY, tmp_path / "never-written.wav", "audio/wav")


async def test_create_bucket_if_missing(seaweedfs: SeaweedFS) -> None:
    archive = make_archive(seaweedfs, f"created-{os.urandom(4).hex()}", create_bucket_if_missing=True)
    try:
        await archive.check()
        await archive.put_bytes(KEY, b"x", "audio/wav")
        assert await archive.exists(KEY)
    finally:
        archive.close()


async def test_no_credentials_never_probes_instance_metadata(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Without keys the chain stops at env and files: a refusal, not a request to 169.254.169.254."""
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    (port,) = free_ports(1)
    archive = S3Archive("bucket", endpoint_url=f"http://127.0.0.1:{port}", region="us-east-1")
    try:
        with pytest.raises(ArchiveRejected, match="misconfigured"):
            await archive.put_bytes(KEY, b"x", "audio/wav")
    finally:
        archive.close()


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (500, "InternalError", True),
        (503, "SlowDown", True),
        (429, "TooManyRequests", True),
        (400, "RequestTimeout", True),
        (403, "AccessDenied", False),
        (404, "NoSuchBucket", False),
        (400, "InvalidArgument", False),
    ],
)
def test_client_errors_are_classified(status: int, code: str, retryable: bool) -> None:
    exc = ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Put")
    err = translate_client_error(exc)
    assert err.retryable is retryable
    assert isinstance(err, ArchiveUnavailable if retryable else ArchiveRejected)
    assert (err.code, err.status) == (code, status)
