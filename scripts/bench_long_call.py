#!/usr/bin/env python3
"""Long-call benchmark: one call of ``--minutes`` (60) replayed at ``--speed`` (8, under the server's media pace
limit, SWITCHBOARD_MAX_MEDIA_SPEED = 20) through ``switchboard serve``; the server's RSS is sampled throughout.

Reports RSS at the start, the end and its peak (flat = no per-call-second growth), the recording's length against
the call's (complete = every millisecond recorded) and, with ``--transcriber local``, the stored transcript's
segments and where the last one ends (complete = transcripts reach the end of the call). A benchmark, not a test:
it prints numbers and asserts nothing.

    .venv/bin/python scripts/bench_long_call.py [--minutes 60] [--speed 8] [--transcriber null|local] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_server import ROOT, clip, free_port, rss_mb, wait_ready

from switchboard.config import load_local_secrets
from switchboard.replay.runner import ReplayOptions, run_replay
from switchboard.replay.twilio_fake import Target


async def run(args: argparse.Namespace, pid: int, base: str, data: Path, audio: Path) -> dict[str, object]:
    await wait_ready(base)
    secrets = load_local_secrets(data, create=False)
    target = Target(base, base, secrets["twilio_auth_token"], secrets["api_token"])
    samples: list[tuple[float, float]] = []
    done = asyncio.Event()

    async def sample() -> None:
        t0 = time.monotonic()
        while not done.is_set():
            samples.append((time.monotonic() - t0, rss_mb(pid)))
            await asyncio.sleep(5.0)

    sampler = asyncio.create_task(sample())
    t0 = time.monotonic()
    try:
        [result] = await run_replay(target, audio, ReplayOptions(speed=args.speed, calls=1, quiet=True))
    finally:
        done.set()
        await sampler
    wall = time.monotonic() - t0
    samples.append((wall, rss_mb(pid)))
    media_ms = (result.ended or {}).get("media_ms")
    segments = (result.stored or {}).get("transcript", [])
    out = {"minutes": args.minutes, "speed": args.speed, "wall_s": round(wall, 1),
           "rss_mb_start": samples[0][1], "rss_mb_end": samples[-1][1], "rss_mb_peak": max(r for _, r in samples),
           "rss_mb_after_1min_media": next((r for t, r in samples if t * args.speed >= 60), samples[0][1]),
           "call_ms": args.minutes * 60_000, "recording_ms": media_ms, "end_reason": (result.ended or {}).get("reason"),
           "segments": len(segments), "last_segment_end_ms": max((s["end_ms"] for s in segments), default=None),
           "frames_sent": result.frames_sent}
    for t, r in samples[:: max(1, len(samples) // 12)]:
        print(f"  {t:7.1f} s wall ({t * args.speed / 60:5.1f} min of call): RSS {r:7.1f} MB")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--speed", type=float, default=8.0)
    parser.add_argument("--fixture", default="tts_leak_emergency_leeds.wav")
    parser.add_argument("--transcriber", default="null", choices=["null", "local"])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sb-long-") as tmp_name:
        tmp = Path(tmp_name)
        audio = clip(ROOT / "fixtures" / args.fixture, args.minutes * 60, tmp / "long.wav")
        data, port = tmp / "data", free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(data), "SWITCHBOARD_PORT": str(port),
               "SWITCHBOARD_TRANSCRIBER": args.transcriber, "SWITCHBOARD_LOG_LEVEL": "WARNING", "PUBLIC_URL": base}
        server = subprocess.Popen([sys.executable, "-m", "switchboard.cli", "serve"], env=env, cwd=ROOT)
        try:
            out = asyncio.run(run(args, server.pid, base, data, audio))
        finally:
            server.terminate()
            server.wait(timeout=120)
    print(f"RSS start {out['rss_mb_start']:.1f} MB, after 1 min of call {out['rss_mb_after_1min_media']:.1f} MB, "
          f"end {out['rss_mb_end']:.1f} MB, peak {out['rss_mb_peak']:.1f} MB; recording {out['recording_ms']} of "
          f"{out['call_ms']} ms ({out['end_reason']}); {out['segments']} transcript segments, last ends at "
          f"{out['last_segment_end_ms']} ms; wall {out['wall_s']} s")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
