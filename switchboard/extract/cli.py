"""``switchboard extract FILE [--json]``: the lead fields of a recorded call or a text transcript.

A ``.txt`` file is a transcript (``caller: …`` / ``agent: …``, one turn a line); anything else is read as a
call recording (stereo WAV: caller left, agent right) and transcribed first with the local recogniser, exactly as
``switchboard transcribe`` does. OpenAI is used when ``OPENAI_API_KEY`` is set (``OPENAI_BASE_URL`` overrides the
endpoint), falling back to the offline extractor if it fails; with no key the offline extractor runs.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from pathlib import Path

from audio.errors import AudioError, UnsupportedRateError
from audio.resample import SUPPORTED_RATES
from audio.wav import WavReader
from switchboard.extract.errors import InvalidTranscript
from switchboard.extract.extractor import FallbackExtractor
from switchboard.extract.offline import OfflineExtractor
from switchboard.extract.schema import Extraction, Transcript


async def run_extract(path: Path, *, as_json: bool, settings_env: Mapping[str, str]) -> int:
    """Print the extraction of ``path``; 0 on success, 2 when the file cannot be read as a call."""
    try:
        transcript = await load_transcript(path)
    except UnicodeDecodeError as exc:
        print(f"switchboard extract: {path}: not UTF-8 text (byte {exc.start}); save the transcript as UTF-8",
              file=sys.stderr)
        return 2
    except (OSError, InvalidTranscript, AudioError) as exc:
        print(f"switchboard extract: {path}: {exc}", file=sys.stderr)
        return 2
    extractor = build_extractor(settings_env)
    try:
        result = await extractor.extract(transcript)
    finally:
        await extractor.close()
    print(json.dumps(result.model_dump(mode="json"), indent=2) if as_json else format_extraction(result))
    return 0


async def load_transcript(path: Path) -> Transcript:
    """A transcript from a ``.txt`` file, or from a recording through the local recogniser."""
    if path.suffix.lower() == ".txt":
        return Transcript.from_text(await asyncio.to_thread(path.read_text, encoding="utf-8"))
    await asyncio.to_thread(_check_wav, path)  # fail on a bad file before loading the recogniser
    # loads the native recogniser: only when needed
    from switchboard.transcribe.moonshine import RecognizerPool, moonshine_factory
    from switchboard.transcribe.offline import transcribe_file

    pool = RecognizerPool(workers=1, engine_factory=moonshine_factory())  # the server's default decoding
    try:
        result = await transcribe_file(path, pool)
    finally:
        pool.close()
    return Transcript.from_segments(
        ("caller" if seg.speaker == "caller" else "agent", seg.text, seg.start_ms, seg.alternatives)
        for seg in result.segments)


def _check_wav(path: Path) -> None:
    """Refuse what the transcription path cannot take, before the recogniser loads (its errors would surface from
    inside a task group as a traceback)."""
    with WavReader(path) as wav:
        if wav.sample_rate not in SUPPORTED_RATES:
            rates = ", ".join(map(str, sorted(SUPPORTED_RATES)))
            raise UnsupportedRateError(f"{wav.sample_rate} Hz recordings are not supported (rates: {rates} Hz); "
                                       f"convert it first, e.g. sox {path.name} -r 16000 converted.wav")


def build_extractor(env: Mapping[str, str]) -> FallbackExtractor:
    """OpenAI (with offline fallback) when ``OPENAI_API_KEY`` is set, else offline only."""
    key = env.get("OPENAI_API_KEY", "").strip()
    if not key:
        return FallbackExtractor(None, OfflineExtractor())
    from switchboard.extract.openai_client import OpenAIExtractor  # the SDK is only imported when used

    return FallbackExtractor(OpenAIExtractor(key, base_url=env.get("OPENAI_BASE_URL") or None), OfflineExtractor())


def format_extraction(result: Extraction) -> str:
    """Aligned ``field: value`` lines, then where the result came from."""
    facts = result.facts
    lines = []
    for name, value in facts.model_dump(exclude={"evidence", "needs_confirmation"}).items():
        line = f"{name:>16}: {'-' if value is None else value}"
        evidence = getattr(facts.evidence, name, None) if value is not None else None
        if evidence is not None:
            line += f"  ({evidence.source}, {evidence.confidence:.2f}"
            line += f"; or {', '.join(evidence.alternatives)})" if evidence.alternatives else ")"
            line += "  confirm!" if name in facts.needs_confirmation else ""
        lines.append(line)
    origin = result.source + (f" ({result.model})" if result.model else "")
    if result.fallback_reason:
        origin += f", OpenAI failed: {result.fallback_reason}"
    lines.append(f"{'source':>16}: {origin}")
    return "\n".join(lines)


__all__ = ["build_extractor", "format_extraction", "load_transcript", "run_extract"]
