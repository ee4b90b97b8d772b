#!/usr/bin/env python3
"""The agent's own decision cost, without any I/O: the turn-taking core per event, and the offline intake script
per reply as the conversation grows (it re-reads the whole conversation each turn).

Prints numbers, asserts nothing (machines are noisy). Run: .venv/bin/python scripts/bench_agent_core.py [--json]

    core event    TurnTaker.handle for one event of a synthetic call: VAD start/stop, an interim every 100 ms of
                  caller speech, a final, the reply's text, one 100 ms audio chunk (AudioQueued) and its mark echo
    core per s    core CPU per second of call (all events of one call-second)
    intake reply  intake.respond at turn N of a routine dialog (N = 1 ... 6)
These bound the agent's own share of the voice-to-voice latency (the goal for all of our overhead is p95 ≤ 50 ms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Any

from switchboard.agent import intake
from switchboard.agent.dialog import DialogContext
from switchboard.agent.events import (
    AudioDone,
    AudioQueued,
    CallStarted,
    Event,
    Heard,
    MarkPlayed,
    ReplyDone,
    ReplyText,
    SendMark,
    SpeechStarted,
    SpeechStopped,
    StartReply,
)
from switchboard.agent.intake import respond
from switchboard.agent.profile import load_profile
from switchboard.agent.turns import TurnTaker
from switchboard.extract.schema import Transcript, Turn

PROFILE = load_profile()
CALLER = ["Hi, my kitchen tap is dripping, no rush.", "It's Dave Kowalski.", "14 Harehills Lane, Leeds, LS9 6AB.",
          "oh seven seven double oh nine double oh one two three", "Yes, that's right.", "Thanks, bye."]
REPLY = "Thanks. Could you tell me the full address of the property, with the postcode, please?"
CHUNK_MS = 100
MS_PER_CHAR = 60  # speech at about 15 characters a second


def one_call(turns: int) -> tuple[list[float], int]:
    """Drive one synthetic call through the core; returns seconds per handle() call and the call's length in ms."""
    core = TurnTaker(PROFILE.core_lines())
    costs: list[float] = []
    now = 0

    def feed(event: Event) -> list[Any]:
        started = time.perf_counter()
        actions = core.handle(event, now)
        costs.append(time.perf_counter() - started)
        return actions

    def play(reply_id: int, text: str) -> None:
        nonlocal now
        chars_per_chunk = max(1, round(CHUNK_MS / MS_PER_CHAR))
        for end in range(chars_per_chunk, len(text) + chars_per_chunk, chars_per_chunk):
            marks = [a for a in feed(AudioQueued(reply_id, min(end, len(text)), CHUNK_MS, -18.0))
                     if isinstance(a, SendMark)]
            now += CHUNK_MS
            for mark in marks:
                feed(MarkPlayed(mark.name))
        feed(AudioDone(reply_id))

    greeting = feed(CallStarted())
    play(1, PROFILE.core_lines().greeting if greeting else "")
    for turn in range(turns):
        line = CALLER[turn % len(CALLER)]
        now += 700
        feed(SpeechStarted(-20.0))
        words = line.split()
        for count in range(1, len(words) + 1):
            now += CHUNK_MS * 3
            feed(Heard(" ".join(words[:count]), final=False))
        feed(SpeechStopped())
        now += 150
        feed(Heard(line, final=True))
        now += 350
        started = [a for a in core.on_timer(now) if isinstance(a, StartReply)]
        if not started:
            continue
        reply_id = started[0].reply_id
        for piece in range(0, len(REPLY), 12):
            feed(ReplyText(reply_id, REPLY[piece:piece + 12]))
        feed(ReplyDone(reply_id))
        play(reply_id, REPLY)
    return costs, now


def intake_costs(repeats: int) -> dict[int, float]:
    """Median ms of respond() at each turn of the routine dialog, as in a call: the earlier answers are already
    read (cached), the new one is not."""
    result: dict[int, float] = {}
    turns = [Turn("agent", PROFILE.line("greeting"))]
    respond(DialogContext(Transcript((*turns, Turn("caller", "warm up the regular expressions")))), PROFILE)
    for index, line in enumerate(CALLER, start=1):
        before = DialogContext(Transcript(tuple(turns)))
        turns.append(Turn("caller", line))
        context = DialogContext(Transcript(tuple(turns)))
        samples = []
        for _ in range(repeats):
            intake._answer.cache_clear()  # the script's memo of answers already read
            respond(before, PROFILE)
            started = time.perf_counter()
            outputs = respond(context, PROFILE)
            samples.append(time.perf_counter() - started)
        result[index] = statistics.median(samples) * 1000
        turns.append(Turn("agent", " ".join(getattr(o, "text", "") for o in outputs).strip()))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=200, help="synthetic calls through the core")
    parser.add_argument("--turns", type=int, default=6, help="caller turns per call")
    parser.add_argument("--repeats", type=int, default=20, help="runs of the intake script per turn")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    args = parser.parse_args()
    costs: list[float] = []
    call_ms = 0
    for _ in range(args.calls):
        call_costs, length = one_call(args.turns)
        costs += call_costs
        call_ms += length
    costs.sort()
    us = [c * 1e6 for c in costs]
    report = {
        "core_event_us": {"min": round(us[0], 2), "median": round(statistics.median(us), 2),
                          "p95": round(us[int(len(us) * 0.95)], 2), "max": round(us[-1], 2)},
        "core_events": len(us),
        "core_cpu_ms_per_call_second": round(sum(costs) * 1000 / (call_ms / 1000), 4),
        "intake_reply_ms_by_turn": {str(k): round(v, 2) for k, v in intake_costs(args.repeats).items()},
    }
    if args.json:
        print(json.dumps(report))
        return
    event = report["core_event_us"]
    print(f"core event ({report['core_events']} events, {args.calls} calls): min {event['min']} µs, "
          f"median {event['median']} µs, p95 {event['p95']} µs, max {event['max']} µs")
    print(f"core CPU per call-second: {report['core_cpu_ms_per_call_second']} ms")
    for turn, ms in report["intake_reply_ms_by_turn"].items():
        print(f"intake reply at turn {turn}: median {ms} ms")


if __name__ == "__main__":
    main()
