#!/usr/bin/env python3
"""Server benchmark: CPU-ms per call-second, RSS per call and hand-off lag at N concurrent dual-track calls, side by
side with a floor server.

Starts ``switchboard serve`` (embedded PostgreSQL, null transcriber unless --transcriber is given, jitter buffering
and stereo recording on) and, with ``--floor``, the floor server of ``scripts/bench_floor.py`` (uvicorn and the same
websocket library; it parses and decodes the same messages and does nothing else). Both are driven, back to back
for each run, by the same load generator (``scripts/bench_loadgen.py``) with the same traffic. With two or more
cores the servers are pinned to core 0 and the generator to core 1 (``taskset``). The generator reports its own
lateness and CPU, so a slow generator shows instead of flattering the server.

Per run: server CPU from the first frame until every stream has closed, per call-second of media, peak RSS growth
per call, hand-off lag p50/p99 (from /metrics, buckets fine enough to read 1, 2, 5, 10, 20 ms), ``drain`` (from the
last frame sent to the last stream closed after ``stop``: a server that falls behind shows its backlog here) and the
generator's lateness (p99 of how late its ticks finished). A run is real-time when every stream closed cleanly
within 0.5 s of the last frame. On a shared machine a pinned server competes for its core with whatever else runs
there: compare the core share it got with its CPU cost (1000 / CPU-ms per call-second = calls a whole core would
carry at that cost, also printed).

    .venv/bin/python scripts/bench_server.py --floor [--calls 10 50 100 200 300] [--runs 3] [--seconds 20]
        [--profile prof.txt] [--json]

``--profile FILE`` adds one unmeasured run at ``--profile-calls`` (100) under py-spy and prints where each server's
CPU went, grouped (transport, parsing, audio, jitter/alignment, recording, metrics/logging, asyncio scheduling, our
glue); FILE-switchboard and FILE-floor keep the collapsed stacks. ``--json`` prints, as the last line, the headline
figures at ``--headline`` calls (100) as medians over the runs, with the curve and the largest real-time N.

``measure`` (one run through the full replay tool: webhooks, live subscription, post-call work) is kept for
``scripts/bench_failover.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from switchboard.config import load_local_secrets
from switchboard.replay.runner import ReplayOptions, run_replay
from switchboard.replay.twilio_fake import Target
from switchboard.twilio.signature import sign_websocket, websocket_url

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



REALTIME_DRAIN_S = 0.5
GROUPS = [  # (group, substrings of a frame "function (file:line)"), matched from the leaf up
    ("metrics/logging", ("switchboard/metrics.py", "/logging/", "log_scrub")),
    ("recording", ("audio/wav.py", "switchboard/call/recorder.py")),
    ("jitter/alignment", ("audio/jitter.py", "audio/align.py", "media_bounds.py")),
    ("audio", ("audio/mulaw.py", "audio/resample.py", "soxr", "audio/cutter.py", "audio/detectors.py",
               "audio/endpoint.py")),
    ("parsing", ("switchboard/twilio/", "orjson", "pybase64", "bench_floor.py:5", "json")),
    ("transport", ("uvicorn/protocols", "websockets/", "wsproto", "starlette/websockets", "selector_events",
                   "uvloop", "transports", "socket")),
    ("glue", ("switchboard/", "starlette/", "bench_floor.py")),
    ("asyncio scheduling", ("asyncio/", "<frozen", "threading")),
]


def group_stacks(collapsed: str) -> dict[str, int]:
    """Samples per group from py-spy's collapsed stacks (``frame;frame;... count``), each stack given to the group
    of the frame nearest its leaf that matches one (so numpy under resample.py counts as audio)."""
    totals: dict[str, int] = {}
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        group = "other"
        for frame in reversed(stack.split(";")):
            hit = next((g for g, keys in GROUPS if any(k in frame for k in keys)), None)
            if hit is not None:
                group = hit
                break
        totals[group] = totals.get(group, 0) + int(count)
    return totals


def lag_ms(before: str, after: str) -> tuple[float, float]:
    p50, p99, _ = lag_quantiles(lag_buckets(before), lag_buckets(after))
    return p50 * 1000, p99 * 1000


def pin(core: int | None) -> list[str]:
    return [] if core is None else ["taskset", "-c", str(core)]


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    token: str = ""
    signature: str | None = None
    calls_made: int = 0
    """Calls started on this server so far: each run's CallSids are new (a reused one records under another key)."""

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def start_ours(args: argparse.Namespace, tmp: Path) -> Server:
    data, port = tmp / "data", free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(data), "SWITCHBOARD_PORT": str(port),
           "SWITCHBOARD_TRANSCRIBER": args.transcriber, "SWITCHBOARD_LOG_LEVEL": "WARNING", "PUBLIC_URL": base,
           "SWITCHBOARD_LIVE_QUEUE": "10000", "SWITCHBOARD_MAX_CALLS": str(max(args.calls) + 10),
           "SWITCHBOARD_MAX_CONNECTIONS": str(2 * max(args.calls) + 100)}
    proc = subprocess.Popen([*pin(args.server_core), sys.executable, "-m", "switchboard.cli", "serve"], env=env,
                            cwd=ROOT)
    asyncio.run(wait_ready(base))
    token = load_local_secrets(data, create=False)["twilio_auth_token"]
    signature = sign_websocket(token, websocket_url(base, "/api/twilio/media-stream"))
    return Server("switchboard", proc, port, token, signature)


def start_floor(args: argparse.Namespace) -> Server:
    port = free_port()
    proc = subprocess.Popen([*pin(args.server_core), sys.executable, str(ROOT / "scripts" / "bench_floor.py"),
                             "--port", str(port), "--stage", args.floor_stage], cwd=ROOT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return Server("floor", proc, port)
        time.sleep(0.1)
    raise RuntimeError("floor server did not start")


def generate(args: argparse.Namespace, server: Server, n: int, audio: Path) -> dict[str, Any]:
    """One run of the load generator against ``server``; its JSON result, with hand-off lag for ours."""
    metrics = server.name == "switchboard"
    before = httpx.get(server.base + "/metrics", timeout=120).text if metrics else ""
    cmd = [*pin(args.generator_core), sys.executable, str(ROOT / "scripts" / "bench_loadgen.py"),
           "--port", str(server.port), "--server-pid", str(server.proc.pid), "--wav", str(audio),
           "--calls", str(n), "--token", server.token, "--settle", str(max(1.0, n / 50)),
           "--first-index", str(server.calls_made)]
    server.calls_made += n
    if server.signature:
        cmd += ["--signature", server.signature]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"load generator failed: {out.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    if os.environ.get("BENCH_DEBUG"):
        print(result, file=sys.stderr)
    if metrics:
        after = httpx.get(server.base + "/metrics", timeout=120).text
        result["handoff_p50_ms"], result["handoff_p99_ms"] = lag_ms(before, after)
    result["realtime"] = (result["drain_s"] is not None and result["drain_s"] <= REALTIME_DRAIN_S
                          and result["closed_cleanly"] == n)
    return result


def settle(server: Server, limit_s: float = 120.0) -> None:
    """Wait until the last run's calls have all ended (sessions finalised), then a second for post-call work."""
    deadline = time.monotonic() + limit_s
    while server.name == "switchboard" and time.monotonic() < deadline:
        text = httpx.get(server.base + "/metrics", timeout=120).text
        counts = dict(re.findall(r"^switchboard_calls_(started|ended)_total (\d+)", text, re.M))
        if counts.get("started") == counts.get("ended"):
            break
        time.sleep(0.5)
    time.sleep(1.0)


def row(label: str, n: int, r: dict[str, Any]) -> str:
    lag = (f"{r['handoff_p50_ms']:>6g} {r['handoff_p99_ms']:>6g}" if "handoff_p99_ms" in r else f"{'—':>6} {'—':>6}")
    return (f"{label:<11} {n:>5} {r['cpu_ms_per_call_s']:>8.2f} {r['server_core_util'] * 100:>5.0f}% "
            f"{r['rss_kb_per_call']:>8.0f} {lag} {r['drain_s'] if r['drain_s'] is not None else 'open':>7} "
            f"{'yes' if r['realtime'] else 'NO':>4}   gen late p99 {r['gen_late_end_ms']['p99']:>6.1f} ms "
            f"max {r['gen_late_end_ms']['max']:>6.1f} ms, gen CPU {r['gen_core_util'] * 100:.0f}%")


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}" if values else "—"


def profile(args: argparse.Namespace, server: Server, audio: Path) -> dict[str, int]:
    """One extra run under py-spy (not counted in the figures); samples per group."""
    out = Path(args.profile)
    out = out.with_name(f"{out.stem}-{server.name}{out.suffix}")  # one file per server
    spy = subprocess.Popen([*pin(args.generator_core), str(Path(sys.executable).parent / "py-spy"), "record",
                            "--pid", str(server.proc.pid), "--format", "raw", "--nonblocking", "--rate", "200",
                            "--duration", str(int(args.seconds) + 2), "--output", str(out)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        generate(args, server, args.profile_calls, audio)
    finally:
        spy.wait(timeout=120)
    return group_stacks(out.read_text()) if out.exists() else {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, nargs="+", default=[10, 50, 100, 200, 300])
    parser.add_argument("--seconds", type=float, default=20.0, help="call length")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--floor", action="store_true", help="also run the floor server, back to back")
    parser.add_argument("--floor-stage", choices=["receive", "decode", "resample"], default="resample")
    parser.add_argument("--fixture", default="tts_leak_emergency_leeds.wav")
    parser.add_argument("--transcriber", default="null", choices=["null", "local"])
    parser.add_argument("--profile", help="py-spy collapsed stacks of one extra run go here")
    parser.add_argument("--profile-calls", type=int, default=100)
    parser.add_argument("--headline", type=int, default=100, help="calls for the --json headline")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    two = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
    args.server_core, args.generator_core = (0, 1) if two else (None, None)
    load0 = os.getloadavg()
    print(f"{os.cpu_count()} cores; servers on core {args.server_core}, generator on core {args.generator_core}; "
          f"load average {load0[0]:.1f} {load0[1]:.1f} {load0[2]:.1f}; {args.seconds:g} s dual-track calls at real "
          f"time; transcriber={args.transcriber}; floor stage={args.floor_stage if args.floor else 'off'}\n",
          flush=True)
    print(f"{'server':<11} {'calls':>5} {'CPU-ms':>8} {'core':>6} {'KB/call':>8} {'lag50':>6} {'lag99':>6} "
          f"{'drain s':>7} {'RT':>4}   (CPU-ms per call-second; lag in ms, bucket upper bounds)", flush=True)
    results: dict[int, dict[str, list[dict[str, Any]]]] = {}
    groups: dict[str, dict[str, int]] = {}
    with tempfile.TemporaryDirectory(prefix="sb-bench-") as tmp_name:
        tmp = Path(tmp_name)
        audio = clip(ROOT / "fixtures" / args.fixture, args.seconds, tmp / "clip.wav")
        servers = [start_ours(args, tmp)]
        try:
            if args.floor:
                servers.append(start_floor(args))
            for n in args.calls:
                for _ in range(args.runs):
                    for server in servers:
                        settle(server)
                        r = generate(args, server, n, audio)
                        results.setdefault(n, {}).setdefault(server.name, []).append(r)
                        print(row(server.name, n, r), flush=True)
            if args.profile:
                for server in servers:
                    settle(server)
                    groups[server.name] = profile(args, server, audio)
        finally:
            for server in servers:
                server.proc.terminate()
                server.proc.wait(timeout=120)
    summary = summarise(args, results, groups, load0)
    if args.json:
        print(json.dumps(summary))


def summarise(args: argparse.Namespace, results: dict[int, dict[str, list[dict[str, Any]]]],
              groups: dict[str, dict[str, int]], load0: tuple[float, float, float]) -> dict[str, Any]:
    print(f"\nmin / median / max over {args.runs} runs")
    curve: dict[str, Any] = {}
    largest = 0
    for n, by in results.items():
        ours, floor = by["switchboard"], by.get("floor", [])
        ratios = [o["cpu_ms_per_call_s"] / f["cpu_ms_per_call_s"] for o, f in zip(ours, floor, strict=False)
                  if f["cpu_ms_per_call_s"] > 0]
        realtime = all(r["realtime"] for r in ours)
        if realtime:
            largest = max(largest, n)
        entry = {k: statistics.median(r[k] for r in ours) for k in
                 ("cpu_ms_per_call_s", "rss_kb_per_call", "handoff_p50_ms", "handoff_p99_ms")}
        entry["realtime"] = realtime
        if floor:
            entry["floor_cpu_ms_per_call_s"] = statistics.median(f["cpu_ms_per_call_s"] for f in floor)
            entry["floor_rss_kb_per_call"] = statistics.median(f["rss_kb_per_call"] for f in floor)
            entry["ratio_to_floor"] = round(statistics.median(ratios), 3)
        curve[str(n)] = entry
        print(f"N={n:<4} CPU-ms/call-s {spread([r['cpu_ms_per_call_s'] for r in ours])}"
              + (f"  floor {spread([f['cpu_ms_per_call_s'] for f in floor])}  ratio {spread(ratios)}" if floor else "")
              + f"\n       KB/call {spread([r['rss_kb_per_call'] for r in ours])}"
              + (f"  floor {spread([f['rss_kb_per_call'] for f in floor])}" if floor else "")
              + f"\n       hand-off p99 ms {spread([r['handoff_p99_ms'] for r in ours])}"
              f"  drain s {spread([r['drain_s'] if r['drain_s'] is not None else 99.0 for r in ours])}"
              f"  generator late p99 ms {spread([r['gen_late_end_ms']['p99'] for r in ours + floor])}"
              f"  real-time {'yes' if realtime else 'NO'}"
              f"\n       calls per core at this CPU cost (1000 / median CPU-ms): "
              f"{1000 / entry['cpu_ms_per_call_s']:.0f}")
    print(f"\nlargest N real-time in every run (of those tried): {largest or 'none'}")
    for name, totals in groups.items():
        total = sum(totals.values()) or 1
        parts = ", ".join(f"{g} {c * 100 / total:.0f}%" for g, c in sorted(totals.items(), key=lambda kv: -kv[1]))
        print(f"profile ({name}, N={args.profile_calls}, {total} samples): {parts}")
    load1 = os.getloadavg()
    print(f"load average at the end {load1[0]:.1f} {load1[1]:.1f} {load1[2]:.1f}")
    head = curve.get(str(args.headline)) or next(iter(curve.values()), {})
    return {"calls": args.headline if str(args.headline) in curve else next(iter(results), 0),
            "cpu_ms_per_call_s": head.get("cpu_ms_per_call_s"),
            "floor_cpu_ms_per_call_s": head.get("floor_cpu_ms_per_call_s"),
            "ratio_to_floor": head.get("ratio_to_floor"), "rss_kb_per_call": head.get("rss_kb_per_call"),
            "handoff_p99_ms": head.get("handoff_p99_ms"), "largest_realtime_calls": largest, "curve": curve,
            "profile": groups, "cores": os.cpu_count(), "loadavg": [round(x, 2) for x in (*load0, *load1)]}


if __name__ == "__main__":
    main()
