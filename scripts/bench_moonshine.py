#!/usr/bin/env python3
"""Moonshine engine benchmark: model load time, decode time per utterance length, and resident memory per engine.

Utterances are cut from the wheel's ``beckett.wav`` (real speech, 16 kHz) from 0.2 s on. Each length is decoded
``--runs`` times by one :class:`~switchboard.transcribe.moonshine.MoonshineEngine` (after one warm-up decode);
rows give wall and thread-CPU seconds (min/median/max; CPU time is what a busy shared machine distorts least) and
the real-time factor of the median. Memory: process RSS growth after loading each of ``--engines`` engines and
decoding the longest utterance on it (ONNX Runtime's arena keeps what the decoder's per-step weight
dequantisation needed).

    .venv/bin/python scripts/bench_moonshine.py [--lengths 2 5 8] [--runs 5] [--engines 2] [--beam N]
                                                [--bias-bonus X] [--json]

``--beam 1 --bias-bonus 0`` is upstream's greedy search; the defaults are the server's (beam search with the
context bias).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

import psutil

from switchboard.transcribe.bias import DEFAULT_BONUS
from switchboard.transcribe.moonshine import DEFAULT_BEAM, MoonshineEngine, moonshine_factory, read_wav_16k
from switchboard.transcribe.moonshine_ort import SAMPLE_RATE, wheel_model_dir

MB = 2**20


def spread(values: list[float]) -> dict[str, float]:
    return {"min": round(min(values), 3), "median": round(statistics.median(values), 3), "max": round(max(values), 3)}


def run(lengths: list[float], runs: int, engines: int, beam: int, bonus: float) -> dict[str, Any]:
    speech = read_wav_16k(wheel_model_dir().parent.parent / "test-data" / "beckett.wav")[int(0.2 * SAMPLE_RATE):]
    clips = {s: speech[: int(s * SAMPLE_RATE)] for s in lengths}
    if any(clip.size < s * SAMPLE_RATE for s, clip in clips.items()):
        raise SystemExit(f"the clip has {speech.size / SAMPLE_RATE:.1f} s of audio; lengths must not exceed it")
    process = psutil.Process()
    base = process.memory_info().rss
    loaded: list[MoonshineEngine] = []
    load_s: list[float] = []
    rss: list[dict[str, float]] = []
    for _ in range(engines):
        started = time.perf_counter()
        engine = moonshine_factory(beam, bias_bonus=bonus)()
        load_s.append(time.perf_counter() - started)
        after_load = process.memory_info().rss
        engine.transcribe(clips[max(lengths)])
        loaded.append(engine)
        rss.append({"after_load_mb": round((after_load - base) / MB), "after_decode_mb":
                    round((process.memory_info().rss - base) / MB)})
    engine = loaded[0]
    rows = []
    for seconds, clip in clips.items():
        walls, cpus, text = [], [], ""
        for _ in range(runs):
            wall, cpu = time.perf_counter(), time.thread_time()
            text = engine.transcribe(clip)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.thread_time() - cpu)
        rows.append({"audio_s": seconds, "wall_s": spread(walls), "cpu_s": spread(cpus),
                     "rtf_median": round(statistics.median(walls) / seconds, 3), "text": text})
    for loaded_engine in loaded:
        loaded_engine.close()
    return {"beam": beam, "bias_bonus": bonus, "load_s": spread(load_s), "rss_growth_per_engine": rss, "decode": rows,
            "load_average": [round(x, 1) for x in psutil.getloadavg()], "cpus": psutil.cpu_count()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=float, nargs="+", default=[2.0, 5.0, 8.0], help="utterance seconds")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--engines", type=int, default=2, help="engines loaded, for memory per engine")
    parser.add_argument("--beam", type=int, default=DEFAULT_BEAM, help="beam width (1 = greedy, as upstream)")
    parser.add_argument("--bias-bonus", type=float, default=DEFAULT_BONUS, help="context bias per letter (0 = off)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args()
    if args.runs < 1 or args.engines < 1:
        parser.error("--runs and --engines must be >= 1")
    report = run(args.lengths, args.runs, args.engines, args.beam, args.bias_bonus)
    if args.json:
        print(json.dumps(report, indent=1))
        return
    load = report["load_s"]
    print(f"beam {report['beam']}, bias {report['bias_bonus']}; load: {load['min']:.2f} / {load['median']:.2f} / "
          f"{load['max']:.2f} s (min/median/max); load average {report['load_average']} on {report['cpus']} CPUs")
    for i, row in enumerate(report["rss_growth_per_engine"], 1):
        print(f"engine {i}: RSS +{row['after_load_mb']} MB loaded, +{row['after_decode_mb']} MB after a decode "
              "(cumulative)")
    print(f"{'audio':>6} {'wall min/median/max s':>24} {'cpu min/median/max s':>24} {'RTF':>6}  text")
    for row in report["decode"]:
        w, c = row["wall_s"], row["cpu_s"]
        print(f"{row['audio_s']:>5.1f}s {w['min']:>8.2f}{w['median']:>8.2f}{w['max']:>8.2f} "
              f"{c['min']:>8.2f}{c['median']:>8.2f}{c['max']:>8.2f} {row['rtf_median']:>6.2f}  {row['text']}")


if __name__ == "__main__":
    main()
