"""The voice agent's speed through the real server, with provider latencies injected explicitly.

Setup (one process): the server in agent mode with the OpenAI emulator (streamed chat, first token held
``--model-ms``), the ElevenLabs emulator (first audio of each turn held ``--tts-ms``), the local recogniser with
the dialog-line oracle as its engine plus ``--stt-ms`` per final, embedded/real PostgreSQL; the scripted callers of
``fixtures/dialogs`` at real time. Reported over ``--runs`` runs (min / median / max of each run's figure):

- voice-to-voice p50/p95: the end of a caller line → the agent's first audio received (caller side, wall clock);
- overhead p95: voice-to-voice minus what is injected or by design: the turn ends at the later of the speech
  gate's stop (300 ms after the speech) + ``min_endpoint_ms`` and the recogniser's final (its utterance hangover
  + ``--stt-ms``), then ``--model-ms`` and ``--tts-ms``;
- barge-in reaction p95: start of a barge-in line → ``clear`` received;
- greeting: stream start → first audio;
- CPU-ms per agent-call-second at ``--calls`` concurrent calls (this whole process: server, emulators and the
  simulated callers; the offline dialog and voice, so no emulator synthesis is counted twice).

Usage: ``python scripts/bench_agent.py [--runs 3] [--calls 20] [--json]`` (needs the ``[voice]`` extra and
PostgreSQL: ``DATABASE_URL`` or the embedded one).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the emulators live under tests/

from switchboard.agent.answer import AnswerMode  # noqa: E402
from switchboard.agent.timing import TurnTiming  # noqa: E402
from switchboard.app import create_app  # noqa: E402
from switchboard.config import Secret, Settings  # noqa: E402
from switchboard.replay.caller import DialogResult, call_agent  # noqa: E402
from switchboard.replay.script import load_dialogs  # noqa: E402
from switchboard.replay.twilio_fake import Target  # noqa: E402
from switchboard.serving import uvicorn_config  # noqa: E402
from switchboard.store.embedded import EmbeddedPostgres  # noqa: E402
from switchboard.transcribe.moonshine import RecognizerPool  # noqa: E402
from switchboard.tts.elevenlabs import ElevenLabsSettings  # noqa: E402
from switchboard.tts.factory import VoiceConfig  # noqa: E402
from tests.emulators.elevenlabs_server import ElevenLabsEmulator  # noqa: E402
from tests.emulators.line_oracle import LineOracle, LineOracleEngine  # noqa: E402
from tests.emulators.openai_server import Fault, OpenAIEmulator  # noqa: E402

DIALOGS = ROOT / "fixtures" / "dialogs" / "dialogs.json"
HANGOVER_MS = 500
"""The local recogniser's endpointer hangover: its final comes at least this long after the speech ends."""
GATE_STOP_MS = 300
"""The agent's speech gate reports the end of speech this long after it (``SpeechGate(stop_ms=300)``)."""


class SlowOracle(LineOracleEngine):
    def __init__(self, oracle: LineOracle, delay_s: float) -> None:
        super().__init__(oracle)
        self._delay_s = delay_s

    def transcribe(self, samples: Any) -> str:
        time.sleep(self._delay_s)  # a worker thread: the injected recognition time
        return super().transcribe(samples)


def pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def serve(settings: Settings, pool: RecognizerPool, voices: VoiceConfig) -> tuple[Any, asyncio.Task[None]]:
    import uvicorn

    server = uvicorn.Server(uvicorn_config(create_app(settings, recognizers=pool, voices=voices), settings,
                                           log_level="warning"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.05)
    return server, task


def settings_for(data: Path, dsn: str, port: int, **extra: Any) -> Settings:
    base = f"http://127.0.0.1:{port}"
    return Settings(data_dir=data, public_url=base, port=port, twilio_auth_token=Secret("bench"),
                    api_token=Secret("bench-api"), database_url=Secret(dsn), answer=AnswerMode.AGENT,
                    stt_workers=2, **extra)


async def latency_run(dsn: str, args: argparse.Namespace, names: list[str]) -> dict[str, Any]:
    dialogs = {d.name: d for d in load_dialogs(DIALOGS)}
    oracle = LineOracle(DIALOGS)
    pool = RecognizerPool(workers=2, engine_factory=lambda: SlowOracle(oracle, args.stt_ms / 1000))
    results: list[DialogResult] = []
    async with OpenAIEmulator() as openai, ElevenLabsEmulator(first_audio_delay_s=args.tts_ms / 1000) as el:
        openai.inject(Fault.first_token_delay(args.model_ms / 1000), times=None)
        voices = VoiceConfig(ElevenLabsSettings(api_key=el.api_key, voice_id="bench", model_id="eleven_flash_v2_5",
                                                ws_url=el.ws_url, base_url=el.base_url), ("espeak",))
        with tempfile.TemporaryDirectory() as data:
            port = _port()
            settings = settings_for(Path(data), dsn, port, openai_api_key=Secret(openai.api_key),
                                    openai_base_url=openai.base_url)
            server, task = await serve(settings, pool, voices)
            try:
                target = Target(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}", "bench", "bench-api")
                async with httpx.AsyncClient(timeout=60) as client:
                    results = list(await asyncio.gather(*(call_agent(target, dialogs[n], client=client, speed=1.0)
                                                          for n in names)))
            finally:
                server.should_exit = True
                await task
                await pool.aclose()
    v2v = [v for r in results for v in r.voice_to_voice_ms]
    turn_end = max(GATE_STOP_MS + TurnTiming().min_endpoint_ms, HANGOVER_MS + args.stt_ms)
    designed = turn_end + args.model_ms + args.tts_ms
    return {"voice_to_voice_p50": pct(v2v, 0.5), "voice_to_voice_p95": pct(v2v, 0.95),
            "overhead_p95": None if not v2v else pct([v - designed for v in v2v], 0.95),
            "barge_in_p95": pct([b for r in results for b in r.barge_in_ms], 0.95),
            "greeting": pct([r.greeting_ms for r in results if r.greeting_ms is not None], 0.5),
            "turns": len(v2v), "ended": [r.ended_by for r in results]}


async def cpu_run(dsn: str, calls: int) -> dict[str, Any]:
    """``calls`` concurrent routine calls, offline dialog and espeak-ng voice, oracle STT (no injected delays)."""
    dialog = next(d for d in load_dialogs(DIALOGS) if d.name == "routine_repair")
    oracle = LineOracle(DIALOGS)
    pool = RecognizerPool(workers=2, engine_factory=lambda: LineOracleEngine(oracle))
    with tempfile.TemporaryDirectory() as data:
        port = _port()
        server, task = await serve(settings_for(Path(data), dsn, port, max_calls=calls + 5), pool,
                                   VoiceConfig(None, ("espeak",)))
        try:
            target = Target(f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}", "bench", "bench-api")
            async with httpx.AsyncClient(timeout=120) as client:
                cpu0 = time.process_time()
                results = await asyncio.gather(*(call_agent(target, dialog, client=client, speed=1.0, timeout_s=600)
                                                 for _ in range(calls)))
                cpu = time.process_time() - cpu0
        finally:
            server.should_exit = True
            await task
            await pool.aclose()
    media_s = sum((r.stored or {}).get("media_ms") or 0 for r in results) / 1000
    return {"calls": calls, "agent_call_seconds": round(media_s, 1), "cpu_s": round(cpu, 2),
            "cpu_ms_per_call_second": round(cpu * 1000 / media_s, 1) if media_s else None,
            "ended": sorted({r.ended_by for r in results})}


def _port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def summary(runs: list[dict[str, Any]], key: str) -> dict[str, float | None]:
    values = [r[key] for r in runs if r.get(key) is not None]
    if not values:
        return {"min": None, "median": None, "max": None}
    return {"min": round(min(values)), "median": round(statistics.median(values)), "max": round(max(values))}


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--dialogs", default="routine_repair,interrupter")
    p.add_argument("--stt-ms", type=int, default=150)
    p.add_argument("--model-ms", type=int, default=300)
    p.add_argument("--tts-ms", type=int, default=150)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    import os

    dsn = os.environ.get("DATABASE_URL")
    embedded = None
    if not dsn:
        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp()) / "pg")
        dsn = await embedded.start()
    try:
        runs = [await latency_run(dsn, args, args.dialogs.split(",")) for _ in range(args.runs)]
        cpu = [await cpu_run(dsn, args.calls) for _ in range(args.runs)] if args.calls else []
    finally:
        if embedded is not None:
            await embedded.stop()
    keys = ("voice_to_voice_p50", "voice_to_voice_p95", "overhead_p95", "barge_in_p95", "greeting")
    report = {"injected_ms": {"stt": args.stt_ms, "model": args.model_ms, "tts": args.tts_ms},
              **{k: summary(runs, k) for k in keys},
              "cpu_ms_per_call_second": summary(cpu, "cpu_ms_per_call_second") if cpu else None,
              "runs": runs, "cpu_runs": cpu}
    if args.json:
        print(json.dumps(report))
        return
    print(f"injected: STT +{args.stt_ms} ms per final, model first token {args.model_ms} ms, TTS first audio "
          f"{args.tts_ms} ms; {args.runs} runs of {args.dialogs}")
    print(f"{'figure (ms)':<28}{'min':>8}{'median':>8}{'max':>8}")
    for key in (*keys, "cpu_ms_per_call_second"):
        row = report[key] or {}
        print(f"{key:<28}" + "".join(f"{row.get(s)!s:>8}" for s in ("min", "median", "max")))


if __name__ == "__main__":
    asyncio.run(main())
