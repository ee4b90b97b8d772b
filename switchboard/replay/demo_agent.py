"""``switchboard demo --agent``: the whole voice-agent conversation with no keys, printed live.

A server on a free loopback port answers with the agent (offline voice, offline intake dialog, local Moonshine
transcription, embedded PostgreSQL); a scripted caller from ``fixtures/dialogs`` calls it over a bidirectional
stream. Both sides are printed as they happen (the caller's words as the server recognised them), then the stored
call: how it ended, the facts the agent took, the latencies and the usage.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from pathlib import Path
from typing import Any

import httpx

from switchboard.agent.answer import AnswerMode
from switchboard.config import Settings
from switchboard.replay.caller import call_agent, report
from switchboard.replay.script import load_dialogs
from switchboard.replay.twilio_fake import Target


def _show(event: dict[str, Any]) -> None:
    if event.get("type") == "transcript" and event.get("is_final"):
        print(f"{event['start_ms'] / 1000:7.2f}s {event['speaker']:>6}: {event['text']}", flush=True)
    elif event.get("type") == "agent.turn" and event.get("status") == "interrupted":
        print(f"{event['media_ms'] / 1000:7.2f}s  agent: (interrupted; the caller heard {event['text']!r})",
              flush=True)
    elif event.get("type") == "call.ended":
        print(f"--- call ended: {event['reason']} ---", flush=True)


async def demo_agent(settings: Settings, dialogs_path: Path, name: str, speed: float) -> int:
    import uvicorn

    from switchboard.app import create_app
    from switchboard.serving import uvicorn_config

    dialogs = {d.name: d for d in load_dialogs(dialogs_path)}
    if name not in dialogs:
        print(f"switchboard demo: no dialog {name!r}; known: {', '.join(dialogs)}", file=sys.stderr)
        return 2
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    base = f"http://127.0.0.1:{port}"
    settings = settings.with_overrides(host="127.0.0.1", port=port, public_url=base, answer=AnswerMode.AGENT)
    server = uvicorn.Server(uvicorn_config(create_app(settings), settings, log_level="warning"))
    async with asyncio.TaskGroup() as group:
        serving = group.create_task(server.serve())
        while not server.started:
            if serving.done():
                return 1
            await asyncio.sleep(0.05)
        print(f"switchboard serving on {base} (data in {settings.data_dir}); the agent answers the scripted "
              f"caller {name!r} at {speed:g}×", flush=True)
        try:
            target = Target(base, base, settings.twilio_auth_token.reveal(), settings.api_token.reveal())
            async with httpx.AsyncClient(timeout=60) as client:
                result = await call_agent(target, dialogs[name], client=client, speed=speed or 1.0, on_event=_show)
        finally:
            server.should_exit = True
    rep = report(result)
    print(json.dumps({k: rep[k] for k in ("call_sid", "ended_by", "end_reason", "facts", "latency_ms", "usage")},
                     indent=2))
    return 0 if result.stored is not None and result.ended_by in ("agent", "caller", "redirect") else 1


__all__ = ["demo_agent"]
