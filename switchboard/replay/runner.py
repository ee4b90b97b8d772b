"""Run one or many replayed calls concurrently and report them (text for people, JSON for machines)."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import httpx

from switchboard.replay.fixture import Impairments, build_schedule
from switchboard.replay.twilio_fake import CallResult, Target, replay_call


@dataclass(frozen=True, slots=True)
class ReplayOptions:
    speed: float = 1.0
    calls: int = 1
    impairments: Impairments = field(default_factory=Impairments)
    show_partials: bool = False
    quiet: bool = False


class Printer:
    """Live transcript lines on stdout, a progress bar on stderr (only on a terminal)."""

    def __init__(self, out: TextIO, err: TextIO, *, many: bool, partials: bool, quiet: bool) -> None:
        self._out, self._err = out, err
        self._many, self._partials, self._quiet = many, partials, quiet
        self._bar = err.isatty() and not quiet

    def event(self, call: CallResult, event: dict[str, Any]) -> None:
        if self._quiet or event.get("type") != "transcript":
            return
        if not event.get("is_final") and not self._partials:
            return
        prefix = f"[{call.call_sid[-6:]}] " if self._many else ""
        mark = "" if event.get("is_final") else "… "
        start = event.get("start_ms", 0) / 1000
        self._clear_bar()
        print(f"{prefix}{start:7.2f}s {event.get('speaker', '?'):>6}: {mark}{event.get('text', '')}", file=self._out,
              flush=True)

    def progress(self, call: CallResult, fraction: float) -> None:
        if not self._bar or self._many:
            return
        width = 30
        done = int(width * min(1.0, fraction))
        print(f"\r[{'#' * done}{'.' * (width - done)}] {fraction * 100:5.1f}%", end="", file=self._err, flush=True)

    def _clear_bar(self) -> None:
        if self._bar and not self._many:
            print("\r" + " " * 45 + "\r", end="", file=self._err, flush=True)


async def run_replay(target: Target, path: Path, options: ReplayOptions, *, out: TextIO = sys.stdout,
                     err: TextIO = sys.stderr) -> list[CallResult]:
    printer = Printer(out, err, many=options.calls > 1, partials=options.show_partials, quiet=options.quiet)
    limits = httpx.Limits(max_connections=max(10, options.calls * 2))
    async with httpx.AsyncClient(timeout=60.0, limits=limits) as client:
        async with asyncio.TaskGroup() as group:
            tasks = []
            for i in range(options.calls):
                imp = options.impairments
                schedule = build_schedule(path, Impairments(imp.jitter_ms, imp.loss_pct, imp.reorder_pct,
                                                            imp.seed + i))
                tasks.append(group.create_task(replay_call(target, schedule, speed=options.speed, client=client,
                                                           on_event=printer.event,
                                                           on_progress=printer.progress)))
    printer._clear_bar()
    return [t.result() for t in tasks]


def summary(results: list[CallResult]) -> dict[str, Any]:
    return {
        "ok": all(completed(r) for r in results),
        "calls": [{
            "call_sid": r.call_sid,
            "stream_sid": r.stream_sid,
            "completed": completed(r),
            "frames_sent": r.frames_sent,
            "frames_lost": r.frames_lost,
            "end_reason": (r.ended or {}).get("reason"),
            "media_ms": (r.ended or {}).get("media_ms"),
            "transcript": r.transcript(),
        } for r in results],
    }


def completed(result: CallResult) -> bool:
    return result.ended is not None and result.ended.get("reason") == "stop" and result.stored is not None
