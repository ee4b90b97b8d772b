"""Frame-level accuracy of the speech detectors on the call fixtures.

Each ``fixtures/NAME.wav`` is stereo μ-law 8 kHz (channel 0 = inbound/caller, 1 = outbound/agent) with a
``fixtures/NAME.json`` sidecar whose ``tracks.<track>.utterances[*].start_ms/end_ms`` are the ground truth:
speech = inside an utterance span. Every track is scored on a 10 ms grid (a grid point is the middle of its
10 ms step), for each detector both raw (``p ≥ 0.5`` per frame) and after the :class:`Endpointer` (speech =
inside an emitted utterance, the default 200 ms padding included, which the truth spans lack), and
"unpadded" (the same with ``padding_ms=0``). Silero is scored if ``switchboard.transcribe.vad`` imports.

    .venv/bin/python scripts/vad_accuracy.py [--fixtures DIR] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt

from audio import mulaw
from audio.detectors import EnergyDetector, SpeechDetector, WebRtcDetector, frames
from audio.endpoint import EndpointConfig, Endpointer
from audio.resample import StreamResampler
from audio.wav import read_tracks

GRID_MS = 10
TRACKS = ("inbound", "outbound")  # channel order in the fixture WAVs
RATE = 8000
Mask = npt.NDArray[np.bool_]


@dataclass
class Counts:
    """Confusion counts of speech (positive) against non-speech grid points."""

    tp: int = 0
    fp: int = 0
    fn: int = 0
    tn: int = 0

    def add(self, truth: Mask, pred: Mask) -> None:
        self.tp += int(np.sum(truth & pred))
        self.fp += int(np.sum(~truth & pred))
        self.fn += int(np.sum(truth & ~pred))
        self.tn += int(np.sum(~truth & ~pred))

    def metrics(self) -> dict[str, float]:
        precision = self.tp / max(self.tp + self.fp, 1)
        recall = self.tp / max(self.tp + self.fn, 1)
        f1 = 2 * precision * recall / max(precision + recall, 1e-12)
        false_alarm = self.fp / max(self.fp + self.tn, 1)
        return {"precision": precision, "recall": recall, "f1": f1, "false_alarm": false_alarm}


@dataclass
class Score:
    raw: Counts = field(default_factory=Counts)
    endpointed: Counts = field(default_factory=Counts)
    unpadded: Counts = field(default_factory=Counts)  # the Endpointer with padding_ms=0
    frames: int = 0
    seconds: float = 0.0  # CPU time in probability(), to report µs per frame


@dataclass(frozen=True)
class Track:
    name: str  # "fixture:track"
    pcm: npt.NDArray[np.int16]  # 8 kHz
    truth: Mask  # per grid point


@dataclass(frozen=True)
class DetectorSpec:
    name: str
    make: Callable[[], SpeechDetector]


def grid_centres(n_points: int, rate: int) -> npt.NDArray[np.int64]:
    """Sample index (at ``rate``) of the middle of each grid step."""
    return (np.arange(n_points, dtype=np.int64) * GRID_MS + GRID_MS // 2) * rate // 1000


def spans_mask(spans: Sequence[tuple[int, int]], centres: npt.NDArray[np.int64]) -> Mask:
    """True where a centre lies in some ``[start, end)`` span (same units as ``centres``)."""
    mask = np.zeros(len(centres), dtype=bool)
    for start, end in spans:
        mask[np.searchsorted(centres, start) : np.searchsorted(centres, end)] = True
    return mask


def load_tracks(wav: Path) -> list[Track]:
    sidecar = json.loads(wav.with_suffix(".json").read_text())
    channels = read_tracks(wav)
    tracks = []
    for name, ulaw in zip(TRACKS, channels, strict=False):
        pcm = mulaw.decode(ulaw)
        utterances = sidecar["tracks"].get(name, {}).get("utterances", [])
        spans = [(int(u["start_ms"]), int(u["end_ms"])) for u in utterances]
        n_points = len(pcm) * 1000 // RATE // GRID_MS
        truth = spans_mask(spans, grid_centres(n_points, 1000))
        tracks.append(Track(f"{wav.stem}:{name}", pcm, truth))
    return tracks


def detector_input(det: SpeechDetector, pcm8k: npt.NDArray[np.int16]) -> npt.NDArray[np.int16]:
    """The track at the detector's rate; 16 kHz goes through the same streaming resampler as live calls."""
    if det.sample_rate == RATE:
        return pcm8k
    resampler = StreamResampler(RATE, det.sample_rate)
    return np.concatenate([resampler.push(pcm8k), resampler.flush()])


def score_track(det: SpeechDetector, track: Track, score: Score) -> None:
    pcm = detector_input(det, track.pcm)
    started = time.process_time()
    probs = np.array([det.probability(f) for f in frames(pcm, det.frame_samples, pad=True)])
    score.seconds += time.process_time() - started
    score.frames += len(probs)
    centres = grid_centres(len(track.truth), det.sample_rate)
    index = np.minimum(centres // det.frame_samples, len(probs) - 1)
    score.raw.add(track.truth, probs[index] >= 0.5)
    for padding_ms, counts in ((200, score.endpointed), (0, score.unpadded)):
        endpointer = Endpointer(EndpointConfig(sample_rate=det.sample_rate, padding_ms=padding_ms))
        utterances = [u for p in probs for u in endpointer.push(float(p), det.frame_samples)]
        utterances += endpointer.flush()
        counts.add(track.truth, spans_mask([(u.start_sample, u.end_sample) for u in utterances], centres))


def silero_spec() -> tuple[DetectorSpec | None, str]:
    """Silero if the transcription package provides it; otherwise None and the reason."""
    try:
        from switchboard.transcribe.errors import ProviderUnavailable
        from switchboard.transcribe.vad import SileroDetector
    except ImportError as exc:
        return None, f"Silero skipped: {exc}"
    try:
        SileroDetector(16_000)
    except ProviderUnavailable as exc:
        return None, f"Silero skipped: {exc}"
    return DetectorSpec("silero-16k", lambda: SileroDetector(16_000)), ""


def detector_specs() -> tuple[list[DetectorSpec], list[str]]:
    specs = [DetectorSpec("energy", EnergyDetector)]
    specs += [DetectorSpec(f"webrtc-mode{m}", partial(WebRtcDetector, mode=m)) for m in range(4)]
    silero, note = silero_spec()
    return specs + ([silero] if silero else []), [note] if note else []


def evaluate(tracks: Sequence[Track], specs: Sequence[DetectorSpec]) -> dict[str, Score]:
    scores = {spec.name: Score() for spec in specs}
    for spec in specs:
        for track in tracks:
            score_track(spec.make(), track, scores[spec.name])  # fresh state per track, as per call
    return scores


def report(scores: dict[str, Score], specs: Sequence[DetectorSpec]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for spec in specs:
        score = scores[spec.name]
        us = 1e6 * score.seconds / max(score.frames, 1)
        for stage, counts in (("raw", score.raw), ("endpointed", score.endpointed), ("unpadded", score.unpadded)):
            rows.append({"detector": spec.name, "stage": stage, **counts.metrics(), "us_per_frame": us})
    return rows


def table(rows: Sequence[dict[str, object]]) -> str:
    names = ("precision", "recall", "F1", "false-alarm", "µs/frame")
    head = f"{'detector':<14} {'stage':<11} " + " ".join(f"{n:>{max(len(n), 6)}}" for n in names)
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['detector']:<14} {r['stage']:<11} {r['precision']:>9.3f} {r['recall']:>6.3f} {r['f1']:>6.3f}"
            f" {r['false_alarm']:>11.3f} {r['us_per_frame']:>8.1f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fixtures", type=Path, default=Path(__file__).resolve().parent.parent / "fixtures")
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    args = parser.parse_args(argv)
    wavs = sorted(w for w in args.fixtures.glob("*.wav") if w.with_suffix(".json").exists())
    if not wavs:
        print(f"no fixtures (NAME.wav + NAME.json) in {args.fixtures}", file=sys.stderr)
        return 1
    tracks = [t for w in wavs for t in load_tracks(w)]
    specs, notes = detector_specs()
    rows = report(evaluate(tracks, specs), specs)
    speech = sum(int(t.truth.sum()) for t in tracks)
    total = sum(len(t.truth) for t in tracks)
    if args.json:
        summary = {"fixtures": [w.stem for w in wavs], "grid_ms": GRID_MS, "speech_points": speech}
        print(json.dumps({**summary, "points": total, "notes": notes, "results": rows}, indent=2))
        return 0
    print(f"{len(wavs)} fixtures, {len(tracks)} tracks, {total * GRID_MS / 1000:.0f} s, {speech / total:.0%} speech")
    print(table(rows))
    for note in notes:
        print(note)
    return 0


if __name__ == "__main__":
    sys.exit(main())
