#!/usr/bin/env python3
"""Dashboard benchmark: the live board in Chromium with N replayed calls live at once.

Three processes besides the browser, so no load generator steals time from a measurement: ``switchboard serve``
(embedded PostgreSQL) transcribing through the Deepgram emulator (scripted words, interims and finals: the
recogniser costs nothing, the event flow is real), ``switchboard replay --calls N`` at real time, and this script,
which holds a bearer subscription to ``WS /api/live`` and drives the browser (Debian's Chromium via Playwright).

Measured per run, on the board (``/``), which follows every call through one websocket:
- latency: a final transcript event reaching a loopback client (this script's subscription: "leaving the server")
  → its line in the page (the page's ``sb:line`` performance mark, set once the line is in the DOM), both on this
  machine's wall clock; p50 and p95 over every final of every call;
- main-thread busy time: Chromium's ``TaskDuration`` (CDP ``Performance.getMetrics``) over the run, per second;
- page weight: bytes of every response the board's load fetched (HTML, CSS, JS, icon; uncompressed), and of
  everything the dashboard ships (any page loads a subset).
Prints numbers (min/median/max over ``--runs``), asserts nothing.

    .venv/bin/python scripts/bench_dashboard.py [--calls 100] [--runs 3] [--ramp-s 8] [--fixture F] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson
from websockets.asyncio.client import connect

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
API_TOKEN, AUTH_TOKEN = "bench-api-token", "bench-twilio-auth-token"
BATCHES = 4
"""Replay processes: the calls start in four waves over ``--ramp-s`` (a single burst of 100 webhooks at one
instant times out on a 2-core machine), then all are live at once for the rest of the fixture."""


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


async def watch(base: str, sent: dict[int, float], stop: asyncio.Event) -> None:
    """Record when each final transcript event reaches a loopback client (keyed by its hub ``id``)."""
    ws_base = base.replace("http://", "ws://")
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {API_TOKEN}"}) as client:
        listing = (await client.get(f"{base}/api/calls", params={"live": "true", "limit": 1})).json()
    after = listing["live_after"]  # from now on: earlier runs' events are still retained by the hub
    async with connect(f"{ws_base}/api/live?after={after}", max_size=2**24,
                       additional_headers={"Authorization": f"Bearer {API_TOKEN}"}) as ws:
        while not stop.is_set():
            try:
                async with asyncio.timeout(0.5):
                    raw = await ws.recv()
            except TimeoutError:
                continue
            event = orjson.loads(raw)
            if event.get("type") == "transcript" and event.get("is_final") and event.get("text"):
                sent[event["id"]] = time.time()


async def replay_batch(base: str, env: dict[str, str], fixture: Path, calls: int, delay_s: float, log: Path,
                       ) -> dict[str, Any]:
    """One ``switchboard replay --calls N`` process, started after ``delay_s``; its JSON report."""
    await asyncio.sleep(delay_s)
    replay = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "switchboard.cli", "replay", str(fixture), "--url", base, "--calls", str(calls),
        "--speed", "1", "--json", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await replay.communicate()
    await asyncio.to_thread(log.write_bytes, err)
    report: dict[str, Any] = json.loads(out) if out else {"ok": False, "calls": []}
    return report


async def one_run(browser: Any, base: str, env: dict[str, str], fixture: Path, calls: int, log: Path,
                  ramp_s: float) -> dict[str, Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{base}/signin")
    await page.fill("#token", API_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")
    weight = await board_weight(page, base)
    cdp = await context.new_cdp_session(page)
    await cdp.send("Performance.enable")
    sent: dict[int, float] = {}
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch(base, sent, stop))
    await asyncio.sleep(0.5)
    busy0 = await task_duration(cdp)
    t0 = time.monotonic()
    reports = await asyncio.gather(*(replay_batch(base, env, fixture, calls // BATCHES + (b < calls % BATCHES),
                                                  b * ramp_s / BATCHES, log.with_suffix(f".{b}.log"))
                                     for b in range(BATCHES)))
    wall = time.monotonic() - t0
    busy = await task_duration(cdp) - busy0
    await asyncio.sleep(1.0)  # the last lines reach the page
    stop.set()
    await watcher
    marks = await page.evaluate("""() => performance.getEntriesByName('sb:line').map(
        m => [m.detail.id, m.detail.at])""")
    shown = {int(i): at / 1000 for i, at in marks}
    latencies = [(shown[i] - t) * 1000 for i, t in sent.items() if i in shown]
    await context.close()
    return {
        "calls": calls, "completed": sum(c["completed"] for r in reports for c in r["calls"]), "wall_s": round(wall, 1),
        "finals": len(sent), "finals_shown": len(latencies),
        "p50_ms": round(quantile(latencies, 0.50), 1), "p95_ms": round(quantile(latencies, 0.95), 1),
        "max_ms": round(max(latencies, default=float("nan")), 1),
        "busy_ms_per_s": round(busy * 1000 / wall, 1), "page_bytes": weight, "all_static_bytes": static_bytes(),
    }


def static_bytes() -> int:
    """Every template and static file the dashboard ships (any page loads a subset of these)."""
    web = ROOT / "switchboard" / "web"
    return sum(p.stat().st_size for p in [*web.glob("static/*"), *web.glob("templates/*")])


async def board_weight(page: Any, base: str) -> int:
    """Bytes of every response one load of the board fetches (the API's JSON excluded: it is data)."""
    from playwright.async_api import Error as PlaywrightError

    sizes: dict[str, int] = {}

    async def size_of(response: Any) -> None:
        if response.status == 200 and not response.url.startswith(f"{base}/api/"):
            try:
                sizes[response.url] = len(await response.body())
            except PlaywrightError as exc:  # a response without a body to read: say so, count nothing
                print(f"page weight: {response.url}: {exc}", file=sys.stderr)

    pending: list[asyncio.Future[None]] = []

    def on_response(response: Any) -> None:
        pending.append(asyncio.ensure_future(size_of(response)))

    page.on("response", on_response)
    await page.reload()
    await page.wait_for_selector("#conn[data-state=live]")
    page.remove_listener("response", on_response)
    await asyncio.gather(*pending)
    return sum(sizes.values())


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
           "TWILIO_AUTH_TOKEN": AUTH_TOKEN, "SWITCHBOARD_LOG_LEVEL": "WARNING", "SWITCHBOARD_MAX_CALLS": "1000",
           "SWITCHBOARD_MAX_CONNECTIONS": "2000", "SWITCHBOARD_BREAKER_FAILURES": "100000"}
    async with AsyncExitStack() as stack:
        print(f"logs in {tmp}", file=sys.stderr)
        emulator = await start([sys.executable, "-m", "tests.emulators.deepgram_server"], env, stack,
                               tmp / "deepgram.log")
        assert emulator.stdout is not None
        env["DEEPGRAM_URL"] = (await emulator.stdout.readline()).decode().strip()
        env["DEEPGRAM_API_KEY"] = "test-key"
        await start([sys.executable, "-m", "switchboard.cli", "serve"], env, stack, tmp / "server.log")
        await wait_ready(base)
        pw = await stack.enter_async_context(async_playwright())
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        stack.push_async_callback(browser.close)
        runs = []
        for i in range(args.runs):
            result = await one_run(browser, base, env, args.fixture, args.calls, tmp / f"replay-{i + 1}.log",
                                   args.ramp_s)
            if not args.json:
                print(f"run {i + 1}: {result}", flush=True)
            runs.append(result)
    return runs


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"runs": runs}
    for key in ("p50_ms", "p95_ms", "busy_ms_per_s", "page_bytes"):
        values = [r[key] for r in runs]
        out[key] = {"min": min(values), "median": statistics.median(values), "max": max(values)}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fixture", type=Path, default=ROOT / "fixtures" / "tts_leak_emergency_leeds.wav")
    parser.add_argument("--ramp-s", type=float, default=8.0, help="spread the calls' starts over this long")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = summary(asyncio.run(main_async(args)))
    if args.json:
        print(json.dumps(result))
        return
    for key in ("p50_ms", "p95_ms", "busy_ms_per_s", "page_bytes"):
        s = result[key]
        print(f"{key:>14}: min {s['min']}  median {s['median']}  max {s['max']}")


if __name__ == "__main__":
    main()
