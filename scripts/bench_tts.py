#!/usr/bin/env python3
"""Voice latency benchmark: first audio of a turn, per voice, against the ElevenLabs emulator on loopback.

Rows (each over ``--turns`` turns, min / median / max in ms):
- ``elevenlabs +Xms``: ``flush`` of a turn pushed word by word → its first chunk out of our client, with the
  emulator's model latency set to X (``--model-ms``, 0 and 150 by default; its espeak-ng synthesis adds ~10–30 ms).
- ``greeting cached``: ``say`` of a prompt in the :class:`PromptCache` → first chunk (the ≤ 300 ms goal).
- ``piper`` / ``espeak``: ``say`` of a one-sentence turn → first chunk.
- ``failover gap``: ElevenLabs stalls mid-turn (stall limit 0.6 s) → the gap between its last chunk and the first
  chunk of the next voice (espeak-ng). The caller hears less silence: Twilio still plays what was queued.

    .venv/bin/python scripts/bench_tts.py [--turns 20] [--model-ms 0 150] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
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


async def _failover_gap(el: ElevenLabsEmulator, settings: ElevenLabsSettings, turns: int) -> list[float]:
    out = []
    for _ in range(turns):
        el.inject(Fault(FaultKind.STALL, after_messages=2))
        stream = await FallbackVoice([ElevenLabsVoice(settings), OfflineVoice(EspeakEngine())]).open()
        try:
            stream.say(TEXT)
            last_primary = gap = None
            async for event in stream:
                if isinstance(event, TurnEnd):
                    break
                now = time.perf_counter()
                if event.provider == "elevenlabs":
                    last_primary = now
                elif gap is None and last_primary is not None:
                    gap = (now - last_primary) * 1000
            assert gap is not None
            out.append(gap)
        finally:
            await stream.aclose()
    return out


def _row(name: str, values: list[float]) -> dict[str, float | str | int]:
    return {"row": name, "n": len(values), "min_ms": round(min(values), 1),
            "median_ms": round(statistics.median(values), 1), "max_ms": round(max(values), 1)}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--model-ms", type=int, nargs="+", default=[0, 150])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    piper, espeak = OfflineVoice(PiperEngine()), OfflineVoice(EspeakEngine())
    for model_ms in args.model_ms:
        async with ElevenLabsEmulator(first_audio_delay_s=model_ms / 1000) as el:
            settings = ElevenLabsSettings(api_key=el.api_key, voice_id="bench", ws_url=el.ws_url, base_url=el.base_url)
            rows.append(_row(f"elevenlabs +{model_ms}ms", await _turns(ElevenLabsVoice(settings), args.turns, True)))
            if model_ms == args.model_ms[-1]:
                cached = FallbackVoice([ElevenLabsVoice(settings), piper, espeak])
                rows.append(_row("greeting cached", await _greeting(cached, args.turns)))
                rows.append(_row("failover gap", await _failover_gap(el, settings, max(3, args.turns // 4))))
    rows.append(_row("piper", await _turns(piper, args.turns, False)))
    rows.append(_row("espeak", await _turns(espeak, args.turns, False)))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'row':<22}{'n':>4}{'min ms':>10}{'median ms':>12}{'max ms':>10}")
    for row in rows:
        print(f"{row['row']:<22}{row['n']:>4}{row['min_ms']:>10}{row['median_ms']:>12}{row['max_ms']:>10}")


if __name__ == "__main__":
    asyncio.run(main())
