"""Field accuracy of the offline extractor on the domain fixtures (``fixtures/*.json`` with ``facts``).

    .venv/bin/python scripts/extract_accuracy.py [--asr] [--save-asr FILE | --asr-from FILE] [--json]
                                                 [--fixtures DIR] [--beam N] [--bias-bonus X] [--no-alternatives]

The reference transcript is the fixture's own utterance text, both tracks interleaved by start time. With
``--asr`` each fixture's WAV is also transcribed by the local recogniser (``transcribe_file``) and scored the same
way; ``--save-asr`` keeps those transcripts in a JSON file and ``--asr-from`` scores a saved one (to compare two
extractors on the same recognition without recognising twice). ``--beam``/``--bias-bonus`` set the local decoder
(the server's defaults unless given; ``--beam 1 --bias-bonus 0`` is upstream's greedy search); the beam's
alternative readings reach the extractor unless ``--no-alternatives``. Exact match for caller_name (case and spacing
ignored), callback_number, postcode, urgency, issue_category and lead_segment; ``address`` is fuzzy (see
:func:`address_matches`). An expected null in a field that cannot be null (category, segment) is not scored.

A **false fill** is a value where the fixture's facts say nothing was said (expected null): counted per field,
apart from the misses, because inventing a value is worse than missing one. Fields marked for confirmation
(``needs_confirmation``) are counted too, split by whether the value was right.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from switchboard.extract.offline import extract_facts
from switchboard.extract.patterns import numerals
from switchboard.extract.schema import Speaker, Transcript
from switchboard.transcribe.bias import DEFAULT_BONUS
from switchboard.transcribe.moonshine import DEFAULT_BEAM

FIELDS = ("caller_name", "callback_number", "address", "postcode", "urgency", "issue_category", "lead_segment")
NON_NULLABLE = {"urgency", "issue_category", "lead_segment"}
SPEAKERS: dict[str, Speaker] = {"inbound": "caller", "outbound": "agent"}


def reference_transcript(fixture: dict[str, Any]) -> Transcript:
    """Both tracks' utterances interleaved by start time."""
    return Transcript.from_segments(
        (SPEAKERS[track], utt["text"], int(utt["start_ms"]))
        for track, data in fixture["tracks"].items() if track in SPEAKERS for utt in data["utterances"])


def _tokens(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", numerals(text).lower())


def address_matches(predicted: str | None, expected: str | None) -> bool:
    """Fuzzy address match: every predicted word is in the expected address, the numbers agree, and at least
    half of the expected words were found (so "312 Stratford Road, Birmingham" matches "The Copper Kettle cafe,
    312 Stratford Road, Birmingham")."""
    if predicted is None or expected is None:
        return predicted is expected
    got, want = _tokens(predicted), _tokens(expected)
    numbers = sorted(t for t in got if t.isdigit()) == sorted(t for t in want if t.isdigit())
    return numbers and set(got) <= set(want) and len(set(got)) * 2 >= len(set(want))


def field_matches(name: str, predicted: Any, expected: Any) -> bool | None:
    """True/False, or None when the field is not scored."""
    if expected is None and name in NON_NULLABLE:
        return None
    if name == "address":
        return address_matches(predicted, expected)
    if name == "caller_name" and predicted is not None and expected is not None:
        return " ".join(predicted.lower().split()) == " ".join(expected.lower().split())
    return bool(predicted == expected)


def score(cases: Iterable[tuple[str, Transcript, dict[str, Any]]]) -> dict[str, Any]:
    """Per-field ``{"correct", "scored", "false_fills", "flagged_right", "flagged_wrong"}`` and the misses."""
    fields = {name: {"correct": 0, "scored": 0, "false_fills": 0, "flagged_right": 0, "flagged_wrong": 0}
              for name in FIELDS}
    misses = []
    for fixture_id, transcript, expected in cases:
        got = extract_facts(transcript).model_dump()
        flagged = set(got.get("needs_confirmation") or ())
        for name in FIELDS:
            ok = field_matches(name, got[name], expected.get(name))
            if ok is None:
                continue
            cell = fields[name]
            cell["scored"] += 1
            cell["correct"] += int(ok)
            cell["false_fills"] += int(expected.get(name) is None and got[name] is not None)
            if name in flagged:
                cell["flagged_right" if ok else "flagged_wrong"] += 1
            if not ok:
                misses.append({"fixture": fixture_id, "field": name, "got": got[name], "expected": expected[name],
                               "flagged": name in flagged})
    return {"fields": fields, "misses": misses}


Segments = list[tuple[Speaker, str, int, list[str]]]


async def asr_segments(paths: list[Path], beam: int, bonus: float) -> list[Segments]:
    from switchboard.transcribe.moonshine import RecognizerPool, moonshine_factory
    from switchboard.transcribe.offline import transcribe_file

    pool = RecognizerPool(workers=1, engine_factory=moonshine_factory(beam, bias_bonus=bonus))
    try:
        results = [await transcribe_file(path, pool) for path in paths]
    finally:
        pool.close()
    return [[(SPEAKERS[s.track], s.text, s.start_ms, list(s.alternatives)) for s in r.segments] for r in results]


def word_error_rates(recognised: list[tuple[dict[str, Any], list[Any]]]) -> dict[str, Any]:
    """Per fixture and track, and pooled by kind (real/tts), as ``scripts/wer.py`` reports them."""
    from switchboard.transcribe.wer import total, word_errors

    per_fixture: dict[str, dict[str, float]] = {}
    pooled: dict[str, list[Any]] = {}
    for fixture, segments in recognised:
        for track, speaker in SPEAKERS.items():
            hypothesis = " ".join(s[1] for s in sorted(segments, key=lambda s: s[2]) if s[0] == speaker)
            result = word_errors(fixture["tracks"][track]["text"], hypothesis)
            per_fixture.setdefault(fixture["id"], {})[speaker] = round(result.wer, 4)
            pooled.setdefault(fixture["kind"], []).append(result)
    return {"fixtures": per_fixture, "pooled": {kind: round(total(rs).wer, 4) for kind, rs in pooled.items()}}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fixtures", type=Path, default=Path(__file__).resolve().parents[1] / "fixtures")
    parser.add_argument("--asr", action="store_true", help="also score the local recogniser's transcripts")
    parser.add_argument("--save-asr", type=Path, help="write the recognised segments to this JSON file")
    parser.add_argument("--asr-from", type=Path, nargs="+", help="score recognised segments saved by --save-asr "
                        "(several files are merged: recognise parts of the set in parallel with --only)")
    parser.add_argument("--only", nargs="+", metavar="SUBSTRING", help="recognise only fixtures whose id has one")
    parser.add_argument("--beam", type=int, default=DEFAULT_BEAM, help="beam width (1: greedy, as upstream)")
    parser.add_argument("--bias-bonus", type=float, default=DEFAULT_BONUS,
                        help="context-bias bonus per letter (0: no biasing)")
    parser.add_argument("--no-alternatives", action="store_true",
                        help="score the best transcript only (ignore the beam's other readings)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    every = [(p, json.loads(p.read_text())) for p in sorted(args.fixtures.glob("*.json"))]
    fixtures = [(p, f) for p, f in every if f.get("facts")]
    report: dict[str, Any] = {"fixtures": [f["id"] for _, f in fixtures],
              "reference": score((f["id"], reference_transcript(f), f["facts"]) for _, f in fixtures)}
    if args.asr or args.asr_from:
        if args.asr_from:
            saved = {k: v for path in args.asr_from for k, v in json.loads(path.read_text()).items()}
        else:  # every fixture, so the same recognition also gives the word error rates
            chosen = [(p, f) for p, f in every if not args.only or any(o in f["id"] for o in args.only)]
            recognised = asyncio.run(asr_segments([p.with_suffix(".wav") for p, _ in chosen], args.beam,
                                                  args.bias_bonus))
            saved = {f["id"]: s for (_, f), s in zip(chosen, recognised, strict=True)}
        fixtures = [(p, f) for p, f in fixtures if f["id"] in saved]
        if args.save_asr:
            args.save_asr.write_text(json.dumps(saved, indent=1))
        segments = [[(s[0], s[1], s[2], [] if args.no_alternatives or len(s) < 4 else s[3])
                     for s in saved[f["id"]]] for _, f in fixtures]
        transcripts = [Transcript.from_segments(s) for s in segments]
        report["wer"] = word_error_rates([(f, saved[f["id"]]) for _, f in every if f["id"] in saved])
        report["asr"] = score((f["id"], t, f["facts"]) for (_, f), t in zip(fixtures, transcripts, strict=True))
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    sources = [s for s in ("reference", "asr") if s in report]
    print(f"{len(fixtures)} domain fixtures (right/scored, false fills, flagged for confirmation right/wrong)")
    print(f"{'field':<16}" + "".join(f"{s:>26}" for s in sources))
    for name in FIELDS:
        cells = [report[s]["fields"][name] for s in sources]
        print(f"{name:<16}" + "".join(f"{c['correct']:>6}/{c['scored']:<2} {_pct(c):>4}  ff {c['false_fills']}"
                                      f"  ?{c['flagged_right']}/{c['flagged_wrong']}" for c in cells))
    if "wer" in report:
        print("word error rate (caller / agent): " + ", ".join(
            f"{k} {v:.1%}" for k, v in report["wer"]["pooled"].items()))
        for fixture_id, rates in report["wer"]["fixtures"].items():
            print(f"  {fixture_id:<36} {rates['caller']:>6.1%} {rates['agent']:>6.1%}")
    for source in sources:
        for miss in report[source]["misses"]:
            print(f"  {source} miss {miss['fixture']} {miss['field']}: got {miss['got']!r}, "
                  f"expected {miss['expected']!r}{' (flagged)' if miss['flagged'] else ''}")
    return 0


def _pct(cell: dict[str, int]) -> str:
    return f"{100 * cell['correct'] // cell['scored']}%" if cell["scored"] else "-"


if __name__ == "__main__":
    raise SystemExit(main())
