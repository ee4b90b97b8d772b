#!/usr/bin/env python3
"""Audio-path benchmark: microseconds per 20 ms frame of one track, and memory over a 1-hour simulated call.

Prints numbers, asserts nothing (machines are noisy). Run: .venv/bin/python scripts/bench_audio.py [--minutes 60]

    decode        μ-law → int16 (table lookup)
    resample      8 kHz → 16 kHz on one soxr stream, every frame (StreamResampler) and as the server does it
                  (MulawResampler: μ-law kept until soxr has a block to give; same output, same push)
    whole         the server's per-track media path (call/pipeline.py): jitter buffer → stereo aligner → WAV write,
                  and μ-law → 16 kHz (MulawResampler); this is all of it with the null or Deepgram transcriber
    whole + vad   and the utterance cutter with webrtcvad (16 kHz, 30 ms windows) + endpointer, as WisprFlow's chain
    silero        the model detector, per 20 ms of audio
Each path is measured per 20 ms frame and batched (100 ms handed over at once), reported per 20 ms of audio as the
median and the mean (soxr's block work lands on one frame in five or six: the median is the typical frame, the mean
the CPU cost).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from audio import FRAME_SAMPLES, STT_RATE, TWILIO_RATE
from audio.align import TrackAligner
from audio.cutter import UtteranceCutter
from audio.detectors import EnergyDetector, WebRtcDetector
from audio.endpoint import EndpointConfig
from audio.jitter import JitterBuffer
from audio.mulaw import decode, encode
from audio.mulaw_resample import MulawResampler
from audio.resample import StreamResampler
from audio.wav import WavWriter


def speechlike(seconds: float, seed: int = 7) -> bytes:
    """μ-law audio with speech-like bursts and pauses, so detectors and the endpointer change state."""
    rng = np.random.default_rng(seed)
    n = int(seconds * TWILIO_RATE)
    t = np.arange(n) / TWILIO_RATE
    envelope = (np.sin(2 * np.pi * 0.25 * t) > 0).astype(np.float64)
    voice = np.sin(2 * np.pi * 180 * t) * 0.5 + np.sin(2 * np.pi * 720 * t) * 0.3
    pcm = (envelope * voice * 9000 + rng.normal(0, 60, n)).astype(np.int16)
    return encode(pcm)


@dataclass
class Timing:
    """Wall µs of each call, and the process CPU µs per call over the whole loop (steady under machine load: a
    mean of wall times counts every time the process was descheduled)."""

    samples: list[float]
    cpu_us: float

    def per(self, n: float) -> Timing:
        return Timing([s / n for s in self.samples], self.cpu_us / n)


def timed(step: Callable[[int], object], frames: int) -> Timing:
    """µs per call of step(i) for i in range(frames)."""
    out = []
    clock = time.perf_counter_ns
    cpu0 = time.process_time_ns()
    for i in range(frames):
        t0 = clock()
        step(i)
        out.append((clock() - t0) / 1000)
    return Timing(out, (time.process_time_ns() - cpu0) / 1000 / max(frames, 1))


def report(name: str, timing: Timing, per: float = 1) -> tuple[float, float]:
    """Print median, p99 (wall) and CPU mean per 20 ms of audio; ``per`` = frames covered by one call.

    Returns (median, CPU mean)."""
    timing = timing.per(per)
    scaled = sorted(timing.samples)
    median = statistics.median(scaled)
    p99 = scaled[min(len(scaled) - 1, int(len(scaled) * 0.99))]
    print(f"{name:<36} median {median:7.2f} µs   p99 {p99:7.2f} µs   CPU mean {timing.cpu_us:7.2f} µs  per 20 ms frame")
    return median, timing.cpu_us


class WholePath:
    """One track's media path as TrackPipeline runs it (a hand-off per ``batch_frames``), sharing a recorder."""

    def __init__(self, aligner: TrackAligner, writer: WavWriter, track: str, batch_frames: int, vad: bool) -> None:
        self.jitter = JitterBuffer()
        self.resampler = MulawResampler(STT_RATE)
        self.cutter = UtteranceCutter(WebRtcDetector(STT_RATE, 30, 2), EndpointConfig(sample_rate=STT_RATE),
                                      60_000) if vad else None
        self.aligner, self.writer, self.track = aligner, writer, track
        self.batch = batch_frames
        self.pending: list[bytes] = []
        self.pts = 0

    def push(self, chunk: int, ts: int, payload: bytes) -> None:
        for frame in self.jitter.push(chunk, ts, payload):
            stereo = self.aligner.push(self.track, frame.timestamp_ms, frame.payload)
            if stereo:
                self.writer.write(stereo)
            self.pending.append(frame.payload)
            if len(self.pending) >= self.batch:
                ulaw = b"".join(self.pending) if self.batch > 1 else self.pending[0]
                self.pending.clear()
                pcm = self.resampler.push(ulaw)
                if pcm.size:
                    if self.cutter is not None:
                        self.cutter.push(pcm, self.pts)
                        self.cutter.step()
                    self.pts += pcm.size // 16


def bench_whole(audio: bytes, batch: int, out: Path, vad: bool = False) -> Timing:
    aligner = TrackAligner()
    with WavWriter(out, channels=2) as writer:
        a = WholePath(aligner, writer, "inbound", batch, vad)
        b = WholePath(aligner, writer, "outbound", batch, vad)
        frames = len(audio) // FRAME_SAMPLES
        payloads = [audio[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES] for i in range(frames)]

        def step(g: int) -> None:  # one batch cycle: `batch` frames on both tracks
            for i in range(g * batch, (g + 1) * batch):
                a.push(i + 1, i * 20, payloads[i])
                b.push(i + 1, i * 20, payloads[i])

        # per 20 ms frame of one track: a cycle covers `batch` frames on two tracks
        return timed(step, frames // batch).per(2 * batch)


def memory_over_call(minutes: int, out: Path) -> list[tuple[int, float]]:
    """RSS (MB) every 10 simulated minutes of a two-track call through the whole path."""
    chunk = speechlike(60)
    frames_per_min = len(chunk) // FRAME_SAMPLES
    aligner = TrackAligner()
    points = []
    with WavWriter(out, channels=2) as writer:
        a = WholePath(aligner, writer, "inbound", 5, True)
        b = WholePath(aligner, writer, "outbound", 5, True)
        for minute in range(minutes):
            base = minute * frames_per_min
            for i in range(frames_per_min):
                payload = chunk[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES]
                n = base + i
                a.push(n + 1, n * 20, payload)
                b.push(n + 1, n * 20, payload)
            if minute % 10 == 0 or minute == minutes - 1:
                gc.collect()
                points.append((minute + 1, _rss_mb()))
    return points


def spread(values: list[float]) -> str:
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}"


def _rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=120, help="audio per timing run")
    parser.add_argument("--minutes", type=int, default=60, help="length of the simulated call for memory")
    parser.add_argument("--runs", type=int, default=3, help="whole-path runs (min/median/max reported)")
    parser.add_argument("--json", action="store_true", help='last line: {"whole_path_us_median": ...}')
    args = parser.parse_args()
    audio = speechlike(args.seconds)
    frames = len(audio) // FRAME_SAMPLES
    chunks = [audio[i * FRAME_SAMPLES:(i + 1) * FRAME_SAMPLES] for i in range(frames)]
    batches = [audio[i:i + 5 * FRAME_SAMPLES] for i in range(0, len(audio) - 5 * FRAME_SAMPLES + 1, 5 * FRAME_SAMPLES)]
    print(f"{frames} frames of 20 ms per run ({args.seconds:.0f} s of one track)\n")

    report("decode (per frame)", timed(lambda i: decode(chunks[i]), frames))
    report("decode (100 ms batches)", timed(lambda i: decode(batches[i]), len(batches)), per=5)
    pcm_frames = [decode(c) for c in chunks]
    pcm_batches = [decode(b) for b in batches]
    rs = StreamResampler(TWILIO_RATE, STT_RATE)
    report("resample (per frame)", timed(lambda i: rs.push(pcm_frames[i]), frames))
    rs = StreamResampler(TWILIO_RATE, STT_RATE)
    report("resample (100 ms batches)", timed(lambda i: rs.push(pcm_batches[i]), len(batches)), per=5)
    mrs = MulawResampler(STT_RATE)
    report("decode+resample, server (per frame)", timed(lambda i: mrs.push(chunks[i]), frames))
    energy = EnergyDetector(sample_rate=TWILIO_RATE, frame_ms=20)
    report("energy detector (per frame)", timed(lambda i: energy.probability(pcm_frames[i]), frames))
    webrtc = WebRtcDetector(sample_rate=TWILIO_RATE, frame_ms=20, mode=2)
    report("webrtc detector (per frame)", timed(lambda i: webrtc.probability(pcm_frames[i]), frames))

    with tempfile.TemporaryDirectory() as tmp:
        whole: dict[str, list[tuple[float, float]]] = {}
        for run in range(args.runs):
            for vad in (False, True):
                for label, batch in (("per frame", 1), ("100 ms batches", 5)):
                    name = f"{label}, vad" if vad else label
                    samples = bench_whole(audio, batch, Path(tmp) / f"{batch}{vad}{run}.wav", vad)
                    title = f"whole path{' + vad' if vad else ''} ({label})"
                    whole.setdefault(name, []).append(report(title, samples))
        print()
        for label, runs in whole.items():
            medians, means = [m for m, _ in runs], [c for _, c in runs]
            calls = 1e6 / (statistics.median(means) * 2 * 50)
            print(f"whole path ({label}), min/median/max of {len(runs)} runs: median {spread(medians)} µs, "
                  f"CPU mean {spread(means)} µs; implied calls per core {calls:,.0f} (two tracks × 50 frames/s)")
        print()
        try:
            from switchboard.transcribe.vad import SileroDetector
        except ImportError as exc:  # the model detector lives with the server; audio/ stands alone
            print(f"silero: not available ({exc})")
        else:
            silero = SileroDetector()
            rs16 = StreamResampler(TWILIO_RATE, STT_RATE)
            pcm16 = np.concatenate([rs16.push(p) for p in pcm_batches] + [rs16.flush()])
            windows = [pcm16[i:i + 512] for i in range(0, pcm16.size - 512, 512)]
            samples = timed(lambda i: silero.probability(windows[i]), len(windows))
            report("silero detector (per 20 ms)", samples.per(32 / 20))  # a window is 32 ms
        print()
        points = memory_over_call(args.minutes, Path(tmp) / "long.wav")
        for minute, rss in points:
            print(f"memory after {minute:3d} simulated minutes: RSS {rss:7.1f} MB")
        print(f"memory growth over the call: {points[-1][1] - points[0][1]:+.1f} MB")
    if args.json:
        figures: dict[str, object] = {}
        for suffix, label in (("", "per frame"), ("_batched", "100 ms batches"), ("_vad", "per frame, vad"),
                              ("_vad_batched", "100 ms batches, vad")):
            for k, stat in ((0, "median"), (1, "cpu_mean")):
                values = sorted(run[k] for run in whole[label])
                figures[f"whole_path{suffix}_us_{stat}"] = round(statistics.median(values), 3)
                figures[f"whole_path{suffix}_us_{stat}_min_median_max"] = [
                    round(values[0], 3), round(statistics.median(values), 3), round(values[-1], 3)]
        print(json.dumps({**figures, "rss_growth_mb": round(points[-1][1] - points[0][1], 1),
                          "loadavg": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
