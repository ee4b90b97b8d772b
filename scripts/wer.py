"""Word error rate of the offline transcriber on every call fixture.

Each ``fixtures/NAME.wav`` (stereo μ-law 8 kHz, left = caller/inbound, right = agent/outbound) is run through
:func:`switchboard.transcribe.offline.transcribe_file` (the live audio path: μ-law decode, stream resampling,
Silero + endpointer, Moonshine) and compared with its ``fixtures/NAME.json`` sidecar
(``tracks.inbound.text``, ``tracks.outbound.text``) after :func:`switchboard.transcribe.wer.normalise`
(case, punctuation, hesitations and number formats do not count). Results are given per fixture and track,
and pooled (errors / reference words) separately for ``kind`` "real" (human speech) and "tts".

    .venv/bin/python scripts/wer.py [--fixtures DIR] [--only SUBSTRING] [--workers N] [--beam N]
                                    [--bias-bonus X] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from switchboard.transcribe.bias import DEFAULT_BONUS
from switchboard.transcribe.moonshine import DEFAULT_BEAM, RecognizerPool, moonshine_factory
from switchboard.transcribe.offline import transcribe_file
from switchboard.transcribe.wer import WerResult, total, word_errors

SPEAKER_OF = {"inbound": "caller", "outbound": "agent"}


@dataclass(frozen=True)
class FixtureScore:
    name: str
    kind: str
    duration_s: float
    wall_s: float
    tracks: dict[str, WerResult]
    hypotheses: dict[str, str]

    @property
    def pooled(self) -> WerResult:
        return total(self.tracks.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "kind": self.kind, "duration_s": round(self.duration_s, 2),
            "wall_s": round(self.wall_s, 2), "wer": round(self.pooled.wer, 4),
            "tracks": {t: _result_dict(r) | {"hypothesis": self.hypotheses[t]} for t, r in self.tracks.items()},
        }


def _result_dict(result: WerResult) -> dict[str, Any]:
    return {"wer": round(result.wer, 4), "substitutions": result.substitutions, "deletions": result.deletions,
            "insertions": result.insertions, "reference_words": result.reference_words}


async def score(wav: Path, pool: RecognizerPool) -> FixtureScore:
    sidecar = json.loads(wav.with_suffix(".json").read_text())
    started = time.perf_counter()
    result = await transcribe_file(wav, pool)
    wall = time.perf_counter() - started
    tracks, hypotheses = {}, {}
    for track, info in sidecar["tracks"].items():
        hypotheses[track] = result.text(SPEAKER_OF[track])
        tracks[track] = word_errors(info["text"], hypotheses[track])
    return FixtureScore(wav.stem, sidecar.get("kind", "unknown"), result.duration_ms / 1000, wall, tracks,
                        hypotheses)


def summary(scores: list[FixtureScore], pool: RecognizerPool) -> dict[str, Any]:
    kinds = sorted({s.kind for s in scores})
    stats = pool.stats()
    audio_s = sum(s.duration_s * len(s.tracks) for s in scores)
    return {
        "fixtures": [s.to_dict() for s in scores],
        "by_kind": {k: _result_dict(total(s.pooled for s in scores if s.kind == k)) for k in kinds},
        "by_kind_and_track": {
            f"{k}/{t}": _result_dict(total(s.tracks[t] for s in scores if s.kind == k and t in s.tracks))
            for k in kinds for t in SPEAKER_OF
        },
        "cost": {
            "track_audio_s": round(audio_s, 1), "speech_decoded_s": round(stats.audio_s, 1),
            "decode_busy_s": round(stats.busy_s, 1),
            "rtf_of_decoded_speech": round(stats.busy_s / stats.audio_s, 3) if stats.audio_s else None,
            "decode_s_per_track_s": round(stats.busy_s / audio_s, 3) if audio_s else None,
        },
    }


def print_table(report: dict[str, Any]) -> None:
    print(f"{'fixture':40} {'kind':5} {'caller':>7} {'agent':>7} {'both':>7} {'audio s':>8} {'wall s':>7}")
    for f in report["fixtures"]:
        cells = [f"{f['tracks'][t]['wer']:7.1%}" if t in f["tracks"] else f"{'-':>7}" for t in SPEAKER_OF]
        print(f"{f['name']:40} {f['kind']:5} {cells[0]} {cells[1]} {f['wer']:7.1%} {f['duration_s']:8.1f} "
              f"{f['wall_s']:7.1f}")
    print()
    for kind, r in report["by_kind"].items():
        print(f"{kind:5} pooled WER {r['wer']:6.1%}  ({r['substitutions']} sub, {r['deletions']} del, "
              f"{r['insertions']} ins / {r['reference_words']} words)")
    cost = report["cost"]
    print(f"decode: {cost['decode_busy_s']} s for {cost['speech_decoded_s']} s of speech "
          f"(RTF {cost['rtf_of_decoded_speech']}); {cost['decode_s_per_track_s']} s per track-second")


async def run(paths: list[Path], workers: int, beam: int, bonus: float) -> dict[str, Any]:
    pool = RecognizerPool(workers, engine_factory=moonshine_factory(beam, bias_bonus=bonus))
    try:
        scores = [await score(path, pool) for path in paths]
        return summary(scores, pool)
    finally:
        await pool.aclose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--fixtures", type=Path, default=Path(__file__).resolve().parent.parent / "fixtures")
    parser.add_argument("--only", default="", help="score only fixtures whose name contains this")
    parser.add_argument("--workers", type=int, default=1, help="recogniser threads (≈560 MB each)")
    parser.add_argument("--beam", type=int, default=DEFAULT_BEAM, help="beam width (1 = greedy, as upstream)")
    parser.add_argument("--bias-bonus", type=float, default=DEFAULT_BONUS, help="context bias per letter (0 = off)")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    args = parser.parse_args(argv)
    paths = sorted(p for p in args.fixtures.glob("*.wav")
                   if args.only in p.stem and p.with_suffix(".json").exists())
    if not paths:
        print(f"no fixtures with JSON sidecars in {args.fixtures}", file=sys.stderr)
        return 2
    report = asyncio.run(run(paths, args.workers, args.beam, args.bias_bonus))
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
