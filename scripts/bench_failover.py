#!/usr/bin/env python3
"""Failover benchmark: time from a provider fault to the first backup result, and server CPU with cloud providers.

1. Latency (in process, both emulators on loopback with scripted words): the configured chain
   (:func:`switchboard.transcribe.factory.build_transcriber`) transcribes the caller track of
   ``real_beckett_short`` at real time while WisprFlow is faulted; per fault kind it reports *detect* (fault onset →
   switch), *recover* (switch → first result from the backup) and *fault→result* (their sum). Onset: the upgrade
   for ``auth`` (or, if later, when the first result was due: the end of the audio it covers, since a refusal
   cannot delay words not yet spoken), WisprFlow's receipt of the first packet for ``close``, of the commit for the
   others (the final is due then). Two clean runs first, unmeasured: the deadlines follow observed latency. A last
   row fails Deepgram too, so the local recogniser (Moonshine) is the backup.
2. CPU (separate processes): ``switchboard serve`` with the null transcriber, with Deepgram only, and with
   WisprFlow → Deepgram, each streaming N real-time calls to both emulators running in another process
   (``bench_failover.py serve-emulators``, scripted words); rows as in ``scripts/bench_server.py``, whose helpers
   this reuses. The null row is the media-server baseline the issue compares with.

    .venv/bin/python scripts/bench_failover.py [--runs 3] [--calls 20 50] [--seconds 20] 
        [--cloud-vad webrtc silero] [--skip-latency] [--skip-cpu]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from bench_server import clip, free_port, measure, wait_ready

from switchboard.config import Secret, Settings, load_local_secrets
from switchboard.replay.runner import ReplayOptions, run_replay
from switchboard.replay.twilio_fake import Target
from switchboard.transcribe.base import ProviderSwitched
from switchboard.transcribe.errors import ProviderUnavailable

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "real_beckett_short.wav"
LINES = ["ever tried", "ever failed", "no matter", "try again", "fail again", "fail better"]
CHUNK = 320  # 20 ms at 16 kHz, as the media path pushes
SECONDS = 6.5  # the first three phrases of the caller track


@dataclass
class Run:
    onset: float | None = None
    switched: float | None = None
    first_backup: float | None = None
    lag: float | None = None
    """First backup result's time behind the end of the audio it covers (endpointing + recognition)."""


def _emulator_modules() -> tuple[Any, Any, Any]:
    sys.path.insert(0, str(ROOT))  # the emulators live under tests/
    from tests.emulators import deepgram_server, recognizer, wisprflow_server

    return wisprflow_server, deepgram_server, recognizer


@asynccontextmanager
async def emulators() -> AsyncIterator[tuple[Any, Any]]:
    """Both emulators with scripted words; WisprFlow's notes when packets and commits arrive (fault onsets)."""
    wf, dg, rec = _emulator_modules()

    class TimedWispr(wf.WisprFlowEmulator):  # type: ignore[misc, name-defined]
        def __init__(self, **kw: Any) -> None:
            super().__init__(**kw)
            self.appends: list[float] = []
            self.commits: list[float] = []

        async def _append(self, ws: Any, record: Any, message: Any) -> None:
            self.appends.append(time.monotonic())
            await super()._append(ws, record, message)

        async def _commit(self, ws: Any, record: Any, message: Any) -> None:
            self.commits.append(time.monotonic())
            await super()._commit(ws, record, message)

    async with TimedWispr(recognizer=rec.ScriptedRecognizer(LINES)) as wispr, \
            dg.DeepgramEmulator(recognizer=rec.ScriptedRecognizer(LINES)) as deepgram:
        yield wispr, deepgram


def caller_audio() -> np.ndarray:
    from audio import mulaw
    from audio.resample import StreamResampler
    from audio.wav import read_tracks

    resampler = StreamResampler(8000, 16_000)
    pcm = np.concatenate([resampler.push(mulaw.decode(read_tracks(FIXTURE)[0])), resampler.flush()])
    return pcm[: int(SECONDS * 16_000)]


async def one_run(chain: Any, wispr: Any, kind: str, pcm: np.ndarray, track: str) -> Run:
    """Stream ``pcm`` at real time through ``chain``; time the fault, the switch and the first backup result."""
    run = Run()
    switches: list[float] = []  # when each switch was announced (the backup is open by then)
    appends, commits = len(wispr.appends), len(wispr.commits)
    opened = time.monotonic()
    stream = await chain.open(track, 16_000)

    async def feed() -> None:
        t0 = time.monotonic()
        for i in range(0, len(pcm), CHUNK):
            await asyncio.sleep(max(0.0, t0 + i / 16_000 - time.monotonic()))
            stream.push(pcm[i : i + CHUNK], i * 1000 // 16_000)
        stream.end()

    started = time.monotonic()
    feeder = asyncio.create_task(feed())
    try:
        async with asyncio.timeout(SECONDS + 30):
            async for event in stream:
                if isinstance(event, ProviderSwitched):
                    switches.append(time.monotonic())
                elif event.provider != "wisprflow":
                    run.first_backup = time.monotonic()
                    run.lag = run.first_backup - (started + event.end_ms / 1000)
                    break
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await stream.aclose()
    run.switched = switches[-1] if switches else None
    marks = {"auth": [opened], "close": wispr.appends[appends:]}.get(kind, wispr.commits[commits:])
    run.onset = marks[0] if marks else run.switched
    if kind == "auth" and run.onset is not None and run.lag is not None and run.first_backup is not None:
        # A refusal at the upgrade cannot delay a result before its words are spoken: the fault costs the time
        # from when the result was due (the end of the audio it covers) to when the backup delivered it.
        run.onset = max(run.onset, run.first_backup - run.lag)
    return run


async def latency(runs: int) -> dict[str, float]:
    """Per fault kind, p95 (nearest rank) of fault → first backup result over the runs, in seconds."""
    from switchboard.transcribe.breaker import BreakerConfig, CircuitBreakerBoard
    from switchboard.transcribe.factory import build_transcriber
    from switchboard.transcribe.fallback import FallbackTranscriber

    wf, dg, _ = _emulator_modules()
    faults = {
        "auth (401 at upgrade)": (wf.Fault(wf.FaultKind.REJECT_HTTP), None),
        "close mid-utterance (1011)": (wf.Fault(wf.FaultKind.CLOSE_MID_STREAM, after_packets=1), None),
        "malformed final": (wf.Fault(wf.FaultKind.MALFORMED), None),
        "no final after commit": (wf.Fault(wf.FaultKind.NO_FINAL), None),
        "stall (final 30 s late)": (wf.Fault(wf.FaultKind.SLOW_FINAL, delay_s=30), None),
        "both clouds close → local": (wf.Fault(wf.FaultKind.CLOSE_MID_STREAM, after_packets=1),
                                      dg.Fault(dg.FaultKind.CLOSE, after_ms=500)),
    }
    pcm = caller_audio()
    p95: dict[str, float] = {}
    print(f"fault → first backup result, {runs} runs each, {SECONDS} s of real speech at real time "
          "(min / median / max)\n")
    print(f"{'fault':<28} {'detect s':>18} {'recover s':>18} {'fault→result s':>18} {'result lag s':>18}")
    with tempfile.TemporaryDirectory(prefix="sb-failover-") as tmp:
        async with emulators() as (wispr, deepgram), AsyncExitStack() as stack:
            settings = Settings(data_dir=Path(tmp), wisprflow_api_key=Secret("test-key"), wispr_ws_url=wispr.url,
                                deepgram_api_key=Secret("test-key"), deepgram_url=deepgram.url, stt_workers=1)
            chain = build_transcriber(settings, stack, CircuitBreakerBoard())
            assert isinstance(chain, FallbackTranscriber)
            # Unmeasured clean runs: the deadlines follow each provider's observed latency, which a server in
            # service has (the first five answers after a process starts get the configured limits).
            for i in range(2):
                await one_run(chain, wispr, "clean", pcm, f"warm{i}")
            for name, (wispr_fault, deepgram_fault) in faults.items():
                measured = []
                for i in range(runs + (deepgram_fault is not None)):  # a local row warms Moonshine up first
                    # A fresh board per run: an auth refusal opens the breaker, and each run must meet the fault.
                    chain.breaker = CircuitBreakerBoard(BreakerConfig(failure_threshold=1000))
                    wispr.clear_faults()
                    deepgram.clear_faults()
                    wispr.inject(wispr_fault, connections=None)
                    if deepgram_fault is not None:
                        deepgram.inject(deepgram_fault, connections=None)
                    try:
                        measured.append(await one_run(chain, wispr, name.split()[0], pcm, f"run{i}"))
                    except ProviderUnavailable as exc:  # every provider failed: a missing result, reported
                        print(f"{name}: run {i} failed: {exc}", flush=True)
                        measured.append(Run())
                wispr.clear_faults()
                deepgram.clear_faults()
                measured = measured[-runs:]
                to_result = sorted(r.first_backup - r.onset for r in measured if r.first_backup and r.onset)
                p95[name] = round(to_result[min(len(to_result) - 1, int(0.95 * len(to_result)))], 3) \
                    if len(to_result) == len(measured) else float("inf")
                print(f"{name:<28} {_stat([r.switched - r.onset for r in measured if r.switched and r.onset]):>18} "
                      f"{_stat([r.first_backup - r.switched for r in measured if r.first_backup and r.switched]):>18} "
                      f"{_stat([r.first_backup - r.onset for r in measured if r.first_backup and r.onset]):>18} "
                      f"{_stat([r.lag for r in measured if r.lag is not None]):>18}", flush=True)
    return p95


def _stat(values: list[float]) -> str:
    """min / median / max"""
    return f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}" if values else "—"


# -- CPU per call-second ----------------------------------------------------------------------------------------

async def serve_emulators() -> None:
    """Child process: both emulators, scripted; prints their URLs as one JSON line, then serves until killed."""
    async with emulators() as (wispr, deepgram):
        print(json.dumps({"wispr": wispr.url, "deepgram": deepgram.url}), flush=True)
        await asyncio.Event().wait()


async def cpu_row(label: str, extra_env: dict[str, str], args: argparse.Namespace, audio: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="sb-failover-cpu-") as tmp:
        data, port = Path(tmp) / "data", free_port()
        base = f"http://127.0.0.1:{port}"
        env = {**os.environ, "SWITCHBOARD_DATA_DIR": str(data), "SWITCHBOARD_PORT": str(port),
               "SWITCHBOARD_LOG_LEVEL": "WARNING", "PUBLIC_URL": base, "SWITCHBOARD_LIVE_QUEUE": "10000",
               **extra_env}
        server = await asyncio.create_subprocess_exec(sys.executable, "-m", "switchboard.cli", "serve", env=env,
                                                      cwd=ROOT)
        try:
            await wait_ready(base)
            secrets = load_local_secrets(data, create=False)
            target = Target(base, base, secrets["twilio_auth_token"], secrets["api_token"])
            print(f"\n{label}")
            print(f"{'calls':>5} {'CPU-ms per call-s':>18} {'RSS per call':>13} {'lag p50':>9} {'lag p99':>9} "
                  f"{'hand-offs':>9} {'ok':>4}")
            # Warm-up (not measured): SDK import, Silero sessions, first sockets.
            await run_replay(target, audio, ReplayOptions(speed=0, calls=2, quiet=True))
            for n in [n for n in args.calls for _ in range(args.repeat)]:
                await asyncio.sleep(1.0)
                try:
                    await measure(server.pid, base, target, audio, n, args.seconds)
                except* (httpx.HTTPError, OSError, TimeoutError) as failed:  # an overloaded server is a result too
                    print(f"{n:>5}  run failed: {failed.exceptions[0]!r} (server overloaded?)", flush=True)
                print(f"{'':>5}  {await served_by(base)}", flush=True)
        finally:
            server.terminate()
            async with asyncio.timeout(120):
                await server.wait()


async def served_by(base: str) -> str:
    """Breaker states and switches so far: a row only counts for a provider that really served the calls."""
    async with httpx.AsyncClient(base_url=base) as client:
        providers = (await client.get("/readyz")).json()["checks"].get("providers", {})
        metrics = (await client.get("/metrics")).text
    switches = sum(int(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith("switchboard_provider_switches_total{"))
    states = ", ".join(f"{name} {p['state']} ({p['failures']} failures)" for name, p in providers.items())
    return f"breakers: {states or 'none'}; provider switches so far: {switches}"


async def cpu(args: argparse.Namespace) -> None:
    child = await asyncio.create_subprocess_exec(sys.executable, __file__, "serve-emulators",
                                                 stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    try:
        assert child.stdout is not None
        urls = json.loads(await child.stdout.readline())
        keys = {"WISPRFLOW_API_KEY": "test-key", "WISPR_WS_URL": urls["wispr"]}
        deepgram = {"DEEPGRAM_API_KEY": "test-key", "DEEPGRAM_URL": urls["deepgram"]}
        with tempfile.TemporaryDirectory(prefix="sb-failover-clip-") as tmp:
            audio = clip(ROOT / "fixtures" / args.fixture, args.seconds, Path(tmp) / "clip.wav")
            print(f"server CPU, {args.seconds:.0f} s dual-track calls at real time, emulators in process {child.pid}")
            await cpu_row("null transcriber (media-server baseline)", {"SWITCHBOARD_TRANSCRIBER": "null"}, args,
                          audio)
            await cpu_row("Deepgram → local (SDK socket per track)", deepgram, args, audio)
            for vad in args.cloud_vad:
                await cpu_row(f"WisprFlow → Deepgram → local ({vad} VAD per track on the server)",
                              {**keys, **deepgram, "SWITCHBOARD_CLOUD_VAD": vad}, args, audio)
    finally:
        child.terminate()
        async with asyncio.timeout(30):
            await child.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", choices=["bench", "serve-emulators"], default="bench")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--calls", type=int, nargs="+", default=[50])
    parser.add_argument("--seconds", type=float, default=20.0, help="call length for the CPU rows")
    parser.add_argument("--repeat", type=int, default=1, help="runs per call count in the CPU rows")
    parser.add_argument("--fixture", default="tts_leak_emergency_leeds.wav")
    parser.add_argument("--cloud-vad", nargs="+", default=["webrtc"], choices=["webrtc", "silero"],
                        help="WisprFlow rows, one per detector that cuts its utterances")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-cpu", action="store_true")
    parser.add_argument("--json", action="store_true",
                        help='last line: {"fault_to_result_s": {"<fault kind>": <p95 seconds>, ...}}')
    args = parser.parse_args()
    logging.getLogger("switchboard").setLevel(logging.ERROR)  # each injected fault logs a warning by design
    with contextlib.suppress(KeyboardInterrupt):
        if args.mode == "serve-emulators":
            asyncio.run(serve_emulators())
            return
        p95 = {} if args.skip_latency else asyncio.run(latency(args.runs))
        if not args.skip_cpu:
            asyncio.run(cpu(args))
        if args.json:
            print(json.dumps({"fault_to_result_s": p95, "runs": args.runs, "cores": os.cpu_count(),
                              "loadavg": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
