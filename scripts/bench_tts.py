#!/usr/bin/env python3
"""Voice latency benchmark: first audio of a turn, per voice, against the ElevenLabs emulator on loopback.

Rows (each over ``--turns`` turns, min / median / max in ms):
- ``elevenlabs +Xms``: ``flush`` of a turn pushed word by word → its first chunk out of our client, with the
  emulator's model latency set to X (``--model-ms``, 0 and 150 by default; its espeak-ng synthesis adds ~10–30 ms).
- ``greeting cached``: ``say`` of a prompt in the :class:`PromptCache` → first chunk (the ≤ 300 ms goal).
- ``piper`` / ``espeak``: ``say`` of a one-sentence turn → first chunk.
- ``failover KIND → VOICE``: ElevenLabs fails (drop, close 1011, error message, garbage, stall after two audio
  messages; first audio 5 s late; auth refused by message) → the first chunk of the offline voice: from the
  primary's last chunk, or from ``say`` when the primary sent none (``--failover-turns`` per row). The caller
  hears less silence: Twilio still plays what was queued.

    .venv/bin/python scripts/bench_tts.py [--turns 20] [--model-ms 0 150] [--failover-only] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from switchboard.tts.base import AudioChunk, TurnEnd, Voice, VoiceStream
from switchboard.tts.elevenlabs import ElevenLabsSettings, ElevenLabsVoice
from switchboard.tts.espeak import EspeakEngine
from switchboard.tts.fallback import FallbackVoice
from switchboard.tts.offline import OfflineVoice
from switchboard.tts.piper import PiperEngine
from tests.emulators.elevenlabs_server import ElevenLabsEmulator, Fault, FaultKind

TEXT = "Thanks for calling. Could you tell me the address of the property, please?"
GREETING = "Thanks for calling Acme Plumbing, this is the assistant. How can I help?"


async def _first_audio(stream: VoiceStream, start: float) -> float:
    first = None
    async for event in stream:
        if isinstance(event, AudioChunk) and first is None:
            first = time.perf_counter() - start
        if isinstance(event, TurnEnd):
            break
    assert first is not None
    return first * 1000


async def _turns(voice: Voice, turns: int, word_by_word: bool) -> list[float]:
    stream = await voice.open()
    out = []
    try:
        for _ in range(turns):
            if word_by_word:
                for word in TEXT.split(" "):
                    stream.push_text(word + " ")
            start = time.perf_counter()
            stream.flush() if word_by_word else stream.say(TEXT)
            out.append(await _first_audio(stream, start))
    finally:
        await stream.aclose()
    return out


async def _greeting(voice: FallbackVoice, turns: int) -> list[float]:
    await voice.warm(GREETING)
    out = []
    for _ in range(turns):
        stream = await voice.open()
        try:
            start = time.perf_counter()
            stream.say(GREETING)
            out.append(await _first_audio(stream, start))
        finally:
            await stream.aclose()
    return out


FAULTS = {
    "drop": Fault(FaultKind.DROP, after_messages=2),
    "close_1011": Fault(FaultKind.CLOSE, after_messages=2),
    "error_message": Fault(FaultKind.ERROR_MESSAGE, after_messages=2),
    "garbage": Fault(FaultKind.GARBAGE, after_messages=2),
    "stall": Fault(FaultKind.STALL, after_messages=2),
    "slow_first_byte": Fault(FaultKind.SLOW_FIRST_BYTE, delay_s=5.0),
    "refused_by_message": Fault(FaultKind.REFUSE_MESSAGE),
}


async def _failover(el: ElevenLabsEmulator, settings: ElevenLabsSettings, fallback: Voice, kind: str,
                    turns: int) -> list[float]:
    """Fault → the fallback voice's first chunk out of the stream. The fault's moment is the primary's last chunk
    (mid-turn faults come right after it) or, when the primary sent nothing, the turn's ``say``."""
    out = []
    for _ in range(turns):
        el.inject(FAULTS[kind])
        stream = await FallbackVoice([ElevenLabsVoice(settings), fallback]).open()
        try:
            fault_at = time.perf_counter()
            stream.say(TEXT)
            first = None
            async for event in stream:
                if isinstance(event, TurnEnd):
                    break
                if event.provider == "elevenlabs":
                    fault_at = time.perf_counter()
                elif first is None:
                    first = (time.perf_counter() - fault_at) * 1000
            assert first is not None, f"{kind}: the fallback voice never spoke"
            out.append(first)
        finally:
            el.clear_faults()
            await stream.aclose()
    return out


def _row(name: str, values: list[float]) -> dict[str, float | str | int]:
    ordered = sorted(values)
    return {"row": name, "n": len(values), "min_ms": round(min(values), 1),
            "median_ms": round(statistics.median(values), 1),
            "p95_ms": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 1),
            "max_ms": round(max(values), 1)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--model-ms", type=int, nargs="+", default=[0, 150])
    parser.add_argument("--failover-turns", type=int, default=5, help="turns per failover row")
    parser.add_argument("--failover-only", action="store_true", help="only the failover rows")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    piper, espeak = OfflineVoice(PiperEngine()), OfflineVoice(EspeakEngine())
    for model_ms in args.model_ms:
        async with ElevenLabsEmulator(first_audio_delay_s=model_ms / 1000) as el:
            settings = ElevenLabsSettings(api_key=el.api_key, voice_id="bench", ws_url=el.ws_url, base_url=el.base_url)
            if not args.failover_only:
                rows.append(_row(f"elevenlabs +{model_ms}ms",
                                 await _turns(ElevenLabsVoice(settings), args.turns, True)))
            if model_ms == args.model_ms[-1]:
                if not args.failover_only:
                    cached = FallbackVoice([ElevenLabsVoice(settings), piper, espeak])
                    rows.append(_row("greeting cached", await _greeting(cached, args.turns)))
                for name, fallback in (("piper", piper), ("espeak", espeak)):
                    for kind in FAULTS:
                        values = await _failover(el, settings, fallback, kind, args.failover_turns)
                        rows.append(_row(f"failover {kind} → {name}", values))
    if not args.failover_only:
        rows.append(_row("piper", await _turns(piper, args.turns, False)))
        rows.append(_row("espeak", await _turns(espeak, args.turns, False)))
    if args.json:
        print(json.dumps({"load_average": os.getloadavg()[0], "rows": rows}, indent=2))
        return
    print(f"load average {os.getloadavg()[0]:.1f}")
    print(f"{'row':<36}{'n':>4}{'min ms':>10}{'median ms':>12}{'p95 ms':>10}{'max ms':>10}")
    for row in rows:
        print(f"{row['row']:<36}{row['n']:>4}{row['min_ms']:>10}{row['median_ms']:>12}{row['p95_ms']:>10}"
              f"{row['max_ms']:>10}")


if __name__ == "__main__":
    asyncio.run(main())
