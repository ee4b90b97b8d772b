#!/usr/bin/env python3
"""Server benchmark: CPU-ms per call-second, RSS per call and hand-off lag at N concurrent dual-track calls.

Starts ``switchboard serve`` as a separate process (embedded PostgreSQL, null transcriber unless --transcriber is
given, jitter buffering and stereo recording on), drives it with the replay tool at real time, and reads the server
process's CPU time and RSS from /proc and its hand-off lag histogram from /metrics. Prints numbers, asserts nothing.

    .venv/bin/python scripts/bench_server.py [--calls 25 50 100] [--seconds 20]

With two or more ``--seconds`` values (e.g. ``--seconds 10 40``) it also fits CPU per call against call length and
prints the two parts: a fixed cost per call (webhooks, database rows, post-call jobs, live subscription) and the
marginal cost per call-second of streaming. Real calls last minutes, so the marginal figure is what a long call
costs; the per-call-second figure of a short bench call carries the fixed part too.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from switchboard.config import load_local_secrets
from switchboard.replay.runner import ReplayOptions, run_replay
from switchboard.replay.twilio_fake import Target

ROOT = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime


def rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def clip(fixture: Path, seconds: float, out: Path) -> Path:
    """``seconds`` of a fixture (stereo μ-law), looped if it is shorter, so each run is identical."""
    from audio.wav import WavReader, WavWriter

    with WavReader(fixture) as src:
        audio = src.read()
    wanted = int(seconds * 8000) * 2
    with WavWriter(out, channels=2) as dst:
        dst.write((audio * (wanted // len(audio) + 1))[:wanted])
    return out


def lag_buckets(metrics: str) -> list[tuple[float, int]]:
    """Cumulative (upper bound, count) pairs of the hand-off lag histogram."""
    return [(float(le.replace("+Inf", "inf")), int(n)) for le, n in
            re.findall(r'switchboard_handoff_lag_seconds_bucket\{le="([^"]+)"\} (\d+)', metrics)]


def lag_quantiles(before: list[tuple[float, int]], after: list[tuple[float, int]]) -> tuple[float, float, int]:
    """p50 and p99 (bucket upper bounds) of the observations made between two scrapes."""
    old = dict(before)
    delta = [(bound, n - old.get(bound, 0)) for bound, n in after]
    count = delta[-1][1] if delta else 0

    def q(p: float) -> float:
        for bound, n in delta:
            if count and n >= p * count:
                return bound
        return float("inf")

    return q(0.5), q(0.99), count


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            try:
                if (await client.get(base + "/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("server did not become ready")


async def measure(pid: int, base: str, target: Target, audio: Path, n: int, seconds: float) -> float:
    """One run of n concurrent calls; prints one row and returns the server's CPU seconds."""
    rss0, cpu0 = rss_mb(pid), cpu_seconds(pid)
    async with httpx.AsyncClient() as client:
        before = lag_buckets((await client.get(base + "/metrics")).text)
    peak = rss0
    done = asyncio.Event()

    async def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, rss_mb(pid))
            await asyncio.sleep(0.25)

    sampler = asyncio.create_task(sample())
    t0 = time.monotonic()
    try:
        results = await run_replay(target, audio, ReplayOptions(speed=1.0, calls=n, quiet=True))
    finally:
        done.set()
        await sampler
    wall = time.monotonic() - t0
    cpu = cpu_seconds(pid) - cpu0
    async with httpx.AsyncClient() as client:
        after = lag_buckets((await client.get(base + "/metrics")).text)
    p50, p99, count = lag_quantiles(before, after)
    ok = sum(1 for r in results if r.ended is not None)
    print(f"{n:>5} {seconds:>5.0f} {cpu * 1000 / (n * seconds):>18.2f} {(peak - rss0) * 1024 / n:>10.0f} KB "
          f"{p50 * 1000:>6.0f} ms {p99 * 1000:>6.0f} ms {count:>9} {ok:>4}   "
          f"(wall {wall:.1f} s, server CPU {cpu:.1f} s)", flush=True)
    return cpu


def fit(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares line through (call seconds, CPU-ms per call): (fixed CPU-ms per call, CPU-ms per call-s)."""
    n = len(points)
    mx, my = sum(x for x, _ in points) / n, sum(y for _, y in points) / n
    slope = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x, _ in points)
    return my - slope * mx, slope


async def run(args: argparse.Namespace, pid: int, base: str, data: Path, tmp: Path) -> None:
    await wait_ready(base)
    secrets = load_local_secrets(data, create=False)
    target = Target(base, base, secrets["twilio_auth_token"], secrets["api_token"])
    clips = {s: clip(ROOT / "fixtures" / args.fixture, s, tmp / f"clip-{s:g}.wav") for s in args.seconds}
    print(f"server pid {pid}; dual-track calls at real time; transcriber={args.transcriber}\n")
    print(f"{'calls':>5} {'s':>5} {'CPU-ms per call-s':>18} {'RSS per call':>13} {'lag p50':>9} {'lag p99':>9} "
          f"{'hand-offs':>9} {'ok':>4}")
    per_call: dict[int, list[tuple[float, float]]] = {}
    for n in args.calls:
        for seconds, audio in clips.items():
            await asyncio.sleep(2.0)  # the last run's post-call jobs finish outside the next window
            cpu = await measure(pid, base, target, audio, n, seconds)
            per_call.setdefault(n, []).append((seconds, cpu * 1000 / n))
    if len(clips) >= 2:
        print(f"\n{'calls':>5} {'fixed CPU-ms per call':>22} {'marginal CPU-ms per call-s':>27}")
        for n, points in per_call.items():
            fixed, marginal = fit(points)
            print(f"{n:>5} {fixed:>22.1f} {marginal:>27.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[25, 50, 100])
    parser.add_argument("--seconds", type=float, nargs="+", default=[20.0],
                        help="call length(s); two or more also split fixed and marginal cost")
    parser.add_argument("--fixture", default="tts_leak_emergency_leeds.wav")
    parser.add_argument("--transcriber", default="null", choices=["null", "local"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp:
        data = Path(tmp) / "data"
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(data), "SWITCHBOARD_PORT": str(port),
               "SWITCHBOARD_TRANSCRIBER": args.transcriber, "SWITCHBOARD_LOG_LEVEL": "WARNING",
               "PUBLIC_URL": base, "SWITCHBOARD_LIVE_QUEUE": "10000"}
        server = subprocess.Popen([sys.executable, "-m", "switchboard.cli", "serve"], env=env, cwd=ROOT)
        try:
            asyncio.run(run(args, server.pid, base, data, Path(tmp)))
        finally:
            server.terminate()
            server.wait(timeout=120)


if __name__ == "__main__":
    main()
