"""The voice agent's speed through the real server, with provider latencies injected explicitly.

Three processes, so the server is what is measured: this one runs the server (agent mode, the local recogniser
with the dialog-line oracle as its engine plus ``--stt-ms`` per final, embedded/real PostgreSQL); a second runs the
OpenAI emulator (streamed chat, first token held ``--model-ms``) and the ElevenLabs emulator (first audio of each
generation ``--tts-ms`` after it was asked for); a third runs the scripted callers of ``fixtures/dialogs`` at real
time. Reported over ``--runs`` runs (min / median / max of each run's figure):

- voice-to-voice p50/p95: the end of the speech in a caller line (its last voiced sample) → the agent's first
  audio arriving at the caller (wall clock, ``time.monotonic``, stamped on arrival);
- the stages of each turn (p50/p95), from the server's own stamps (``stats.agent.turns.stages_ms``, the same
  monotonic clock): ``stt`` speech end → final at the agent; ``endpoint`` final → the core ends the turn;
  ``start`` → the reply's task asks the dialog; ``model`` → first words; ``to_voice`` → first words pushed to the
  voice; ``tts`` → first audio back; ``send`` → first frame written to the socket; ``deliver`` → at the caller;
- overhead p50/p95: voice-to-voice minus what is injected or designed. Injected: the recogniser's final
  (its endpointer's ``HANGOVER_MS`` after the speech, then ``--stt-ms``), ``--model-ms``, ``--tts-ms``. Designed:
  the turn-taking core's endpoint wait, ``min_endpoint_ms`` after the speech end, which only counts where it ends
  later than the final (it runs concurrently with the recogniser). So the designed turn end is
  ``max(min_endpoint_ms, HANGOVER_MS + stt_ms)`` after the speech; anything beyond it is overhead;
- barge-in reaction p95: start of a barge-in line → ``clear`` received; greeting: stream start → first audio;
- CPU-ms per agent-call-second at ``--calls`` concurrent calls: the server process only (the callers' process is
  reported apart); the offline dialog and voice (espeak-ng), so no emulator runs.

Usage: ``python scripts/bench_agent.py [--runs 3] [--calls 20] [--json]`` (needs the ``[voice]`` extra and
PostgreSQL: ``DATABASE_URL`` or the embedded one). ``--profile DIR`` writes a py-spy profile of the server process
per run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing.connection import Connection
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
from tests.emulators.line_oracle import LineOracle, LineOracleEngine  # noqa: E402

DIALOGS = ROOT / "fixtures" / "dialogs" / "dialogs.json"
HANGOVER_MS = 500
"""The local recogniser's endpointer hangover: its final comes at least this long after the speech ends."""
PROVIDER_STAGES = ("model_out", "model_held", "model_in", "tts_out", "tts_held", "tts_in")
"""The model and tts stages cut at the emulators' own stamps: ``*_held`` is the provider's time."""
STAGES = (("stt", None, "final"), ("endpoint", "final", "endpoint"), ("start", "endpoint", "request"),
          ("model", "request", "first_token"), ("to_voice", "first_token", "first_text"),
          ("tts", "first_text", "first_audio"), ("send", "first_audio", "first_sent"), ("deliver", "first_sent", None))
"""(name, from stamp, to stamp): None is the caller's side (its speech end, its receipt of the first audio)."""


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


# -- the other processes ---------------------------------------------------------------------------------------

def _emulators(conn: Connection, model_ms: int, tts_ms: int) -> None:
    """Child process: the OpenAI and ElevenLabs emulators until the parent says stop; sends back their CPU time."""
    from tests.emulators.elevenlabs_server import ElevenLabsEmulator
    from tests.emulators.openai_server import Fault, OpenAIEmulator

    async def run() -> None:
        async with OpenAIEmulator() as openai, ElevenLabsEmulator(first_audio_delay_s=tts_ms / 1000) as el:
            openai.inject(Fault.first_token_delay(model_ms / 1000), times=None)
            conn.send({"openai_key": openai.api_key, "openai_url": openai.base_url, "el_key": el.api_key,
                       "el_ws": el.ws_url, "el_http": el.base_url})
            await asyncio.get_running_loop().run_in_executor(None, conn.recv)
            conn.send({"model": openai.held, "tts": [t for s in el.sessions for t in s.timings],
                       "cpu_s": time.process_time()})

    asyncio.run(run())


def _callers(base_url: str, names: list[str], timeout_s: float) -> tuple[list[DialogResult], float]:
    """Child process: the scripted callers, concurrently, at real time; with this process's CPU seconds."""
    dialogs = {d.name: d for d in load_dialogs(DIALOGS)}

    async def run() -> list[DialogResult]:
        target = Target(base_url, base_url, "bench", "bench-api")
        async with httpx.AsyncClient(timeout=120) as client:
            return list(await asyncio.gather(*(call_agent(target, dialogs[n], client=client, speed=1.0,
                                                          timeout_s=timeout_s) for n in names)))

    results = asyncio.run(run())
    return results, time.process_time()


async def in_callers_process(base_url: str, names: list[str], timeout_s: float = 600) -> tuple[list[DialogResult],
                                                                                             float]:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return await asyncio.get_running_loop().run_in_executor(pool, _callers, base_url, names, timeout_s)


# -- the server ------------------------------------------------------------------------------------------------

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


class Profiler:
    """``py-spy record`` of this process while a run lasts (``--profile DIR``); nothing without a directory."""

    def __init__(self, directory: str | None, name: str) -> None:
        self._path = None if directory is None else Path(directory) / f"{name}.txt"
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Profiler:
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            spy = Path(sys.executable).with_name("py-spy")
            self._proc = subprocess.Popen([str(spy), "record", "--pid", str(os.getpid()), "--format", "raw",
                                           "--rate", "200", "--threads", "--output", str(self._path)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.send_signal(2)  # SIGINT: py-spy writes its file and exits
            self._proc.wait(timeout=60)


async def latency_run(dsn: str, args: argparse.Namespace, names: list[str], index: int) -> dict[str, Any]:
    oracle = LineOracle(DIALOGS)
    pool = RecognizerPool(workers=2, engine_factory=lambda: SlowOracle(oracle, args.stt_ms / 1000))
    ctx = multiprocessing.get_context("spawn")
    parent, child = ctx.Pipe()
    emulators = ctx.Process(target=_emulators, args=(child, args.model_ms, args.tts_ms), daemon=True)
    emulators.start()
    try:
        urls = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
        voices = VoiceConfig(ElevenLabsSettings(api_key=urls["el_key"], voice_id="bench",
                                                model_id="eleven_flash_v2_5", ws_url=urls["el_ws"],
                                                base_url=urls["el_http"]), ("espeak",))
        with tempfile.TemporaryDirectory() as data:
            port = _port()
            settings = settings_for(Path(data), dsn, port, openai_api_key=Secret(urls["openai_key"]),
                                    openai_base_url=urls["openai_url"])
            server, task = await serve(settings, pool, voices)
            try:
                with Profiler(args.profile, f"latency-{index}"):
                    results, _ = await in_callers_process(f"http://127.0.0.1:{port}", names)
            finally:
                server.should_exit = True
                await task
                await pool.aclose()
        parent.send("stop")
        held = await asyncio.get_running_loop().run_in_executor(None, parent.recv)
    finally:
        emulators.join(timeout=10)
        if emulators.is_alive():
            emulators.kill()
    return latency_figures(results, args, held)


def latency_figures(results: list[DialogResult], args: argparse.Namespace,
                    held: dict[str, Any]) -> dict[str, Any]:
    timing = TurnTiming()
    stt_nominal = HANGOVER_MS + args.stt_ms
    designed = max(timing.min_endpoint_ms, stt_nominal) + args.model_ms + args.tts_ms
    v2v = [v for r in results for v in r.voice_to_voice_ms]
    stages: dict[str, list[float]] = {name: [] for name in (*(n for n, _, _ in STAGES), *PROVIDER_STAGES)}
    server_overhead: list[float] = []
    detail: list[dict[str, Any]] = []
    for result in results:
        rows = (((result.stored or {}).get("stats") or {}).get("agent") or {}).get("turns", {}).get("stages_ms", [])
        for speech_end, received in result.turns_wall:
            row = _row_for(rows, speech_end * 1000, received * 1000)
            turn: dict[str, Any] = {"dialog": result.name, "v2v": round((received - speech_end) * 1000, 1)}
            detail.append(turn)
            if row is None:
                turn["unmatched"] = [(r.get("reply"), {k: round(v - speech_end * 1000) for k, v in r.items()
                                                      if k != "reply"}) for r in rows]
                continue
            for name, start, stop in STAGES:
                a = speech_end * 1000 if start is None else row.get(start)
                b = received * 1000 if stop is None else row.get(stop)
                if a is not None and b is not None:
                    stages[name].append(b - a)
                    turn[name] = round(b - a, 1)
            provider = _provider_split(row, held)
            for name, value in provider.items():
                stages[name].append(value)
                turn[name] = round(value, 1)
            if "final" in row and "model_held" in provider and "tts_held" in provider:
                # Ours: what is left once the providers' own times (as they saw them) and the designed wait are
                # taken out; the recogniser stands in for a provider, so its final's arrival is the STT time.
                stt = row["final"] - speech_end * 1000
                wait = max(0.0, timing.min_endpoint_ms - stt)
                ours = (received - speech_end) * 1000 - stt - wait - provider["model_held"] - provider["tts_held"]
                server_overhead.append(ours)
                turn["server_overhead"] = round(ours, 1)
    return {"voice_to_voice_p50": pct(v2v, 0.5), "voice_to_voice_p95": pct(v2v, 0.95),
            "overhead_p50": None if not v2v else pct([v - designed for v in v2v], 0.5),
            "overhead_p95": None if not v2v else pct([v - designed for v in v2v], 0.95),
            "server_overhead_p50": pct(server_overhead, 0.5), "server_overhead_p95": pct(server_overhead, 0.95),
            "designed_ms": designed,
            "stages": {name: {"p50": _r(pct(values, 0.5)), "p95": _r(pct(values, 0.95)), "n": len(values)}
                       for name, values in stages.items()},
            "barge_in_p95": pct([b for r in results for b in r.barge_in_ms], 0.95),
            "greeting": pct([r.greeting_ms for r in results if r.greeting_ms is not None], 0.5),
            "turns": len(v2v), "matched": len(stages["stt"]), "ended": [r.ended_by for r in results],
            "turn_detail": detail}


def _provider_split(row: dict[str, float], held: dict[str, Any]) -> dict[str, float]:
    """The model and voice stages cut where the emulators saw them: out to the provider, held there, back in."""
    out: dict[str, float] = {}
    for prefix, start, stop, key in (("model", "request", "first_token", "model"),
                                     ("tts", "first_text", "first_audio", "tts")):
        a, b = row.get(start), row.get(stop)
        if a is None or b is None:
            continue
        seen = [(r * 1000, s * 1000) for r, s in held[key] if a <= r * 1000 and s * 1000 <= b]
        if seen:
            received, sent = max(seen)
            out |= {f"{prefix}_out": received - a, f"{prefix}_held": sent - received, f"{prefix}_in": b - sent}
    return out


def _row_for(rows: list[dict[str, float]], speech_end_ms: float, received_ms: float) -> dict[str, float] | None:
    """The server's reply to this line: the last one whose turn ended between the caller's speech end and the
    arrival of the agent's first audio, and whose first frame went out in that time."""
    replies = [row for row in rows if "first_sent" in row and speech_end_ms <= row.get("endpoint", row["first_sent"])
               and row["first_sent"] <= received_ms]
    return max(replies, key=lambda row: row["first_sent"]) if replies else None


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


async def cpu_run(dsn: str, calls: int, profile: str | None, index: int) -> dict[str, Any]:
    """``calls`` concurrent routine calls, offline dialog and espeak-ng voice, oracle STT (no injected delays)."""
    oracle = LineOracle(DIALOGS)
    pool = RecognizerPool(workers=2, engine_factory=lambda: LineOracleEngine(oracle))
    with tempfile.TemporaryDirectory() as data:
        port = _port()
        server, task = await serve(settings_for(Path(data), dsn, port, max_calls=calls + 5), pool,
                                   VoiceConfig(None, ("espeak",)))
        try:
            with Profiler(profile, f"cpu-{index}"):
                cpu0 = time.process_time()
                results, caller_cpu = await in_callers_process(f"http://127.0.0.1:{port}",
                                                               ["routine_repair"] * calls)
                cpu = time.process_time() - cpu0
        finally:
            server.should_exit = True
            await task
            await pool.aclose()
    media_s = sum((r.stored or {}).get("media_ms") or 0 for r in results) / 1000
    return {"calls": calls, "agent_call_seconds": round(media_s, 1), "cpu_s": round(cpu, 2),
            "cpu_ms_per_call_second": round(cpu * 1000 / media_s, 1) if media_s else None,
            "callers_cpu_ms_per_call_second": round(caller_cpu * 1000 / media_s, 1) if media_s else None,
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


def stage_summary(runs: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per stage: the median over runs of each run's p50 and p95."""
    out: dict[str, dict[str, float | None]] = {}
    for name in (*(n for n, _, _ in STAGES), *PROVIDER_STAGES):
        row: dict[str, float | None] = {}
        for q in ("p50", "p95"):
            values = [r["stages"][name][q] for r in runs if r["stages"][name][q] is not None]
            row[q] = round(statistics.median(values), 1) if values else None
        out[name] = row
    return out


async def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--dialogs", default="routine_repair,interrupter")
    p.add_argument("--stt-ms", type=int, default=150)
    p.add_argument("--model-ms", type=int, default=300)
    p.add_argument("--tts-ms", type=int, default=150)
    p.add_argument("--profile", metavar="DIR", help="py-spy raw stacks of the server process per run")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()

    load = os.getloadavg()
    dsn = os.environ.get("DATABASE_URL")
    embedded = None
    if not dsn:
        embedded = EmbeddedPostgres(Path(tempfile.mkdtemp()) / "pg")
        dsn = await embedded.start()
    try:
        runs = [await latency_run(dsn, args, args.dialogs.split(","), i) for i in range(args.runs)]
        cpu = [await cpu_run(dsn, args.calls, args.profile, i) for i in range(args.runs)] if args.calls else []
    finally:
        if embedded is not None:
            await embedded.stop()
    keys = ("voice_to_voice_p50", "voice_to_voice_p95", "overhead_p50", "overhead_p95", "server_overhead_p50",
            "server_overhead_p95", "barge_in_p95", "greeting")
    report: dict[str, Any] = {"injected_ms": {"stt": args.stt_ms, "model": args.model_ms, "tts": args.tts_ms},
              "designed_ms": runs[0]["designed_ms"] if runs else None,
              "load_average": {"start": [round(x, 2) for x in load], "end": [round(x, 2) for x in os.getloadavg()]},
              **{k: summary(runs, k) for k in keys},
              "stages": stage_summary(runs) if runs else {},
              "cpu_ms_per_call_second": summary(cpu, "cpu_ms_per_call_second") if cpu else None,
              "callers_cpu_ms_per_call_second": summary(cpu, "callers_cpu_ms_per_call_second") if cpu else None,
              "runs": runs, "cpu_runs": cpu}
    if args.json:
        print(json.dumps(report))
        return
    print(f"injected: STT +{args.stt_ms} ms per final (after the recogniser's {HANGOVER_MS} ms hangover), model "
          f"first token {args.model_ms} ms, TTS first audio {args.tts_ms} ms; designed voice-to-voice "
          f"{report['designed_ms']} ms; {args.runs} runs of {args.dialogs}; load average "
          f"{report['load_average']['start']} -> {report['load_average']['end']}")
    print(f"{'figure (ms)':<34}{'min':>8}{'median':>8}{'max':>8}")
    for key in (*keys, "cpu_ms_per_call_second", "callers_cpu_ms_per_call_second"):
        row = report[key] or {}
        print(f"{key:<34}" + "".join(f"{row.get(s)!s:>8}" for s in ("min", "median", "max")))
    print(f"{'stage (ms, median of runs)':<34}{'p50':>8}{'p95':>8}")
    for name, row in report["stages"].items():
        print(f"{name:<34}{row['p50']!s:>8}{row['p95']!s:>8}")


if __name__ == "__main__":
    asyncio.run(main())
