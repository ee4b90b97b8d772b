#!/usr/bin/env python3
"""Fuzz the Media Streams parser and the sans-I/O chain behind it (guard → jitter buffer → aligner) with mutated
Twilio messages; report the count, crashes and peak RSS. The CI test (tests/twilio/test_media_fuzz.py) runs 100 000.

Run: .venv/bin/python scripts/fuzz_media_stream.py [--messages 1000000] [--seed 1] [--json]
A crash is any exception other than the ProtocolViolation the server closes the socket with; the first few are
printed with the stream that caused them. Exit status 1 if there was any crash.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
import traceback
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.twilio.media_fuzz import Fuzzer, run_stream


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    fuzzer = Fuzzer(args.seed)
    sent = streams = crashes = 0
    codes: Counter[str] = Counter()
    slowest_stream_s = 0.0
    rss_samples: list[float] = []
    started = time.perf_counter()
    next_sample = 0
    while sent < args.messages:
        stream = fuzzer.stream(token="tok")
        t = time.perf_counter()
        try:
            outcome = run_stream(stream.frames, token="tok")
            codes[str(outcome.code)] += 1
        except Exception:
            crashes += 1
            if crashes <= 5:
                print(traceback.format_exc()[-2000:], file=sys.stderr)
                print(f"stream frames: {[f[:120] for f in stream.frames]!r}"[:6000], file=sys.stderr)
        slowest_stream_s = max(slowest_stream_s, time.perf_counter() - t)
        sent += len(stream.frames)
        streams += 1
        if sent >= next_sample:
            rss_samples.append(rss_mib())
            next_sample += max(1, args.messages // 20)
    elapsed = time.perf_counter() - started
    report = {
        "messages": sent, "streams": streams, "crashes": crashes, "seed": args.seed,
        "endings": dict(codes), "seconds": round(elapsed, 1), "messages_per_s": round(sent / elapsed),
        "slowest_stream_ms": round(slowest_stream_s * 1000, 2),
        "rss_mib_first_last": [round(rss_samples[0], 1), round(rss_samples[-1], 1)],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if args.json:
        print(json.dumps(report))
    else:
        for key, value in report.items():
            print(f"{key:>20}: {value}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
