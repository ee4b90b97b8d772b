#!/usr/bin/env python3
"""Dashboard benchmark: the live board in Chromium with N replayed calls live at once.

Three processes besides the browser, so no load generator steals time from a measurement:
- the server: ``scripts/bench_dashboard_server.py``, which is ``switchboard serve`` (embedded PostgreSQL, post-call
  jobs) with the fixture's sidecar as its recogniser (:mod:`switchboard.transcribe.sidecar`: a partial per word and
  a final per utterance at the media times the fixture gives them). What is measured is the way from a transcript
  event to the page; a real recogniser for 100 calls on two cores (or 200 Deepgram SDK sockets into an emulator:
  the earlier set-up) starved the server, whose handshakes then timed out, whose emulator sockets idled out, and
  whose failover then loaded the local recogniser: 0 to 31 of 100 calls completed.
- the callers: ``scripts/bench_loadgen.py``, 100 dual-track media streams at real time from one lean process (each
  20 ms tick writes every call's frames from one loop; its lateness is reported). The earlier four ``switchboard
  replay`` processes slept per frame per call (10 000 wake-ups a second) and lagged on a loaded machine.
- this script, which holds a bearer subscription to ``WS /api/live`` and drives the browser (Debian's Chromium
  via Playwright). A call completed when its ``call.ended`` (reason ``stop``: Twilio's stop was read and the
  transcript stored) reached that subscription.

Measured per run, on the board (``/``), which follows every call through one websocket:
- latency (p50/p95 over every final of every call): a final transcript event leaving the server (its
  ``sent_at``: when the server wrote it to the page's socket) → its line in the page (the page's ``sb:line``
  performance mark, set once the line is in the DOM, carries both), on this machine's wall clock. (A loopback
  client as the start mark, as before, was unusable on a loaded machine: the server writes each event to its
  subscribers one after the other, and saturated it wrote the page's copy hundreds of ms before or after that
  client's.) This script's own subscription only tells which calls completed;
- handler time: the page's websocket message handler starting (the event's ``timeStamp``; Chromium creates it
  when the task runs, so time queued behind other main-thread work is not in it) → the line in the DOM: the
  page's own script per line;
- main-thread busy time: Chromium's ``TaskDuration`` (CDP ``Performance.getMetrics``) over the run, per second;
- page weight: bytes of the document and every resource the board's load fetched (uncompressed, from the page's
  Resource Timing; the API's JSON excluded), and of everything the dashboard ships (any page loads a subset).
The server runs with ``SWITCHBOARD_LIVE_QUEUE=10000`` (as ``bench_server.py``), so the reference subscription is
not dropped while the loaded server bursts its backlog.
Prints numbers (min/median/max over ``--runs``), asserts nothing.

    .venv/bin/python scripts/bench_dashboard.py [--calls 100] [--runs 3] [--fixture F] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError

from switchboard.twilio.signature import sign_websocket, websocket_url

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
API_TOKEN, AUTH_TOKEN = "bench-api-token", "bench-twilio-auth-token"
END_WAIT_S = 300.0
"""After the last frame: how long the calls may take to end (the server reads what is left of their media, stores
their transcripts and publishes ``call.ended``). A server starved of CPU on a shared machine falls minutes behind
real time; its calls still complete, and how far behind it fell is reported (``drain_s``)."""
SUMMARISED = ("completed", "p50_ms", "p95_ms", "max_ms", "handler_p50_ms", "handler_p95_ms", "busy_ms_per_s",
              "page_bytes")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def start(cmd: list[str], env: dict[str, str], stack: AsyncExitStack, log: Path) -> asyncio.subprocess.Process:
    err = stack.enter_context(log.open("wb"))
    proc = await asyncio.create_subprocess_exec(*cmd, env=env, stdout=subprocess.PIPE, stderr=err)

    async def stop() -> None:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()

    stack.push_async_callback(stop)
    return proc


async def wait_ready(base: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(600):
            try:
                if (await client.get(f"{base}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise SystemExit(f"server at {base} never became ready")


@dataclass
class Seen:
    """What the bench's own subscription to ``WS /api/live`` received: when each final arrived, keyed by its hub
    ``id``, and how each call ended."""

    finals: dict[int, float] = field(default_factory=dict)
    ended: dict[str, str] = field(default_factory=dict)
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    an_end: asyncio.Event = field(default_factory=asyncio.Event)
    resumed: int = 0
    """Times the subscription overflowed and resumed (finals it then read late count as slower than they were)."""


async def watch(base: str, seen: Seen, stop: asyncio.Event) -> None:
    """Record when each final transcript event reaches a loopback client, and every ``call.ended``."""
    ws_base = base.replace("http://", "ws://")
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {API_TOKEN}"}) as client:
        listing = (await client.get(f"{base}/api/calls", params={"live": "true", "limit": 1})).json()
    after = listing["live_after"]  # from now on: earlier runs' events are still retained by the hub
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    while not stop.is_set():
        try:
            async with connect(f"{ws_base}/api/live?after={after}", max_size=2**24, additional_headers=headers) as ws:
                seen.subscribed.set()
                while not stop.is_set():
                    try:
                        async with asyncio.timeout(0.5):
                            raw = await ws.recv()
                    except TimeoutError:
                        continue
                    event = orjson.loads(raw)
                    after = event.get("id", after)
                    kind = event.get("type")
                    if kind == "transcript" and event.get("is_final") and event.get("text"):
                        seen.finals[event["id"]] = time.time()
                    elif kind == "call.ended":
                        seen.ended[event["call_sid"]] = event.get("reason", "")
                        seen.an_end.set()
        except ConnectionClosedError as exc:  # overflowed: resume where it stopped, and say so in the report
            seen.resumed += 1
            print(f"reference subscription: {exc}; resuming after {after}", file=sys.stderr)


async def load(base: str, server_pid: int, fixture: Path, calls: int, first: int, log: Path) -> dict[str, Any]:
    """``scripts/bench_loadgen.py``: ``calls`` media streams at real time from one lean process (every call's
    frames written in one loop tick every 20 ms); its JSON report."""
    port = int(base.rsplit(":", 1)[1])
    signature = sign_websocket(AUTH_TOKEN, websocket_url(base, "/api/twilio/media-stream"))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(ROOT / "scripts" / "bench_loadgen.py"), "--port", str(port), "--server-pid",
        str(server_pid), "--wav", str(fixture), "--calls", str(calls), "--first-index", str(first),
        "--token", AUTH_TOKEN, "--signature", signature, "--settle", str(max(1.0, calls / 50)),
        "--close-timeout", str(END_WAIT_S),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
    out, err = await proc.communicate()
    await asyncio.to_thread(log.write_bytes, err)
    if proc.returncode != 0 or not out.strip():
        raise SystemExit(f"load generator failed ({proc.returncode}); see {log}")
    report: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return report


async def one_run(browser: Any, base: str, server_pid: int, fixture: Path, calls: int, first: int,
                  log: Path) -> dict[str, Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{base}/signin")
    await page.fill("#token", API_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")
    weight = await board_weight(page)
    cdp = await context.new_cdp_session(page)
    await cdp.send("Performance.enable")
    seen, stop = Seen(), asyncio.Event()
    watcher = asyncio.create_task(watch(base, seen, stop))
    await seen.subscribed.wait()
    busy0 = await task_duration(cdp)
    t0 = time.monotonic()
    report = await load(base, server_pid, fixture, calls, first, log)
    wall = time.monotonic() - t0
    busy = await task_duration(cdp) - busy0
    ours = {f"CA{first + i:032x}" for i in range(calls)}
    with contextlib.suppress(TimeoutError):  # the last calls' ends (transcripts stored) reach the subscription
        async with asyncio.timeout(END_WAIT_S):
            while not ours <= seen.ended.keys():
                seen.an_end.clear()
                await seen.an_end.wait()
    await asyncio.sleep(1.0)  # the last lines reach the page
    stop.set()
    await watcher
    marks = await page.evaluate("""() => performance.getEntriesByName('sb:line').map(
        m => [m.detail.id, m.detail.at, m.detail.sentAt, m.detail.inPage])""")
    ours_marks = [m for m in marks if int(m[0]) in seen.finals]  # this run's finals (not a resync's replay)
    latencies = [float(at - sent) for _, at, sent, _ in ours_marks]
    handler = [float(ms) for *_, ms in ours_marks]
    await context.close()
    return {
        "calls": calls, "completed": sum(seen.ended.get(sid) == "stop" for sid in ours),
        "streams_closed_cleanly": report["closed_cleanly"], "close_codes": report["close_codes"],
        "drain_s": report["drain_s"], "wall_s": round(wall, 1), "reference_resumed": seen.resumed,
        "finals": len(seen.finals), "finals_shown": len(ours_marks),
        "p50_ms": round(quantile(latencies, 0.50), 1), "p95_ms": round(quantile(latencies, 0.95), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
        "handler_p50_ms": round(quantile(handler, 0.50), 2), "handler_p95_ms": round(quantile(handler, 0.95), 2),
        "busy_ms_per_s": round(busy * 1000 / wall, 1), "page_bytes": weight, "all_static_bytes": static_bytes(),
        "server_cpu_ms_per_call_s": report["cpu_ms_per_call_s"],
        "loadgen_late_p99_ms": report["gen_late_end_ms"]["p99"],
    }


def static_bytes() -> int:
    """Every template and static file the dashboard ships (any page loads a subset of these)."""
    web = ROOT / "switchboard" / "web"
    return sum(p.stat().st_size for p in [*web.glob("static/*"), *web.glob("templates/*")])


async def board_weight(page: Any) -> int:
    """Bytes (uncompressed bodies) of the document and every resource one load of the board fetched, from the
    page's own Resource Timing (the API's JSON excluded: it is data; the favicon is the browser's, not the
    page's, and is not listed)."""
    await page.reload()
    await page.wait_for_selector("#conn[data-state=live]")
    total = await page.evaluate("""() => [...performance.getEntriesByType('navigation'),
        ...performance.getEntriesByType('resource')]
        .filter(e => !new URL(e.name).pathname.startsWith('/api/'))
        .reduce((n, e) => n + e.decodedBodySize, 0)""")
    return int(total)


async def task_duration(cdp: Any) -> float:
    metrics = (await cdp.send("Performance.getMetrics"))["metrics"]
    return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    from playwright.async_api import async_playwright

    tmp = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MALLOC_ARENA_MAX": "2", "SWITCHBOARD_DATA_DIR": str(tmp / "data"),
           "SWITCHBOARD_PORT": str(port), "PUBLIC_URL": base, "SWITCHBOARD_API_TOKEN": API_TOKEN,
           "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "SWITCHBOARD_MAX_CALLS": "1000", "SWITCHBOARD_LIVE_QUEUE": "10000",
           "SWITCHBOARD_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
           "SWITCHBOARD_MAX_CONNECTIONS": "2000", "SWITCHBOARD_BREAKER_FAILURES": "100000"}
    async with AsyncExitStack() as stack:
        print(f"logs in {tmp}", file=sys.stderr)
        server = await start([sys.executable, str(ROOT / "scripts" / "bench_dashboard_server.py"),
                              str(args.fixture.with_suffix(".json"))], env, stack, tmp / "server.log")
        await wait_ready(base)
        pw = await stack.enter_async_context(async_playwright())
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        stack.push_async_callback(browser.close)
        runs = []
        for i in range(args.runs):
            result = await one_run(browser, base, server.pid, args.fixture, args.calls, i * args.calls,
                                   tmp / f"loadgen-{i + 1}.log")
            result["load_avg_1m"] = round(os.getloadavg()[0], 2)
            if not args.json:
                print(f"run {i + 1}: {result}", flush=True)
            runs.append(result)
    return runs


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": runs}
    for key in SUMMARISED:
        values = [r[key] for r in runs]
        out[key] = {"min": min(values), "median": statistics.median(values), "max": max(values)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fixture", type=Path, default=ROOT / "fixtures" / "tts_leak_emergency_leeds.wav")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = summary(asyncio.run(main_async(args)))
    if args.json:
        print(json.dumps(result))
        return
    for key in SUMMARISED:
        s = result[key]
        print(f"{key:>14}: min {s['min']}  median {s['median']}  max {s['max']}")


if __name__ == "__main__":
    main()
