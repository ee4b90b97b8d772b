"""Where one agent turn's voice-to-voice time goes: a wall-clock stamp at each stage of each reply (sans-I/O: the
time is an argument).

The stages, in the order a reply passes them (:data:`STAGES`):

- ``final``: the caller's last final transcript before the turn ended arrived at the agent;
- ``endpoint``: the turn-taking core ended the caller's turn (``StartReply``);
- ``request``: the reply's task started and asked the dialog (the model request goes out from here);
- ``first_token``: the dialog's first words;
- ``first_text``: the first words pushed to the voice;
- ``flush``: the reply's text ended (``flush``: the voice generates whatever it still buffers);
- ``first_audio``: the voice's first audio for the reply reached the call;
- ``first_sent``: its first ``media`` frame is being written to Twilio's socket (stamped as the write starts).

Stamps are milliseconds on ``time.monotonic()`` (``CLOCK_MONOTONIC`` on Linux: one clock for every process on
the host, so ``scripts/bench_agent.py`` sets them against its simulated caller's own stamps in another process).
The first stamp of a stage wins; only the last :data:`MAX_TURNS` replies are kept.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

STAGES: Final = ("final", "endpoint", "request", "first_token", "first_text", "flush", "first_audio", "first_sent")
MAX_TURNS: Final = 64


class TurnTrace:
    def __init__(self) -> None:
        self._turns: OrderedDict[int, dict[str, float]] = OrderedDict()

    def stamp(self, reply_id: int, stage: str, at_ms: float) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r} (known: {', '.join(STAGES)})")
        stages = self._turns.get(reply_id)
        if stages is None:
            stages = self._turns[reply_id] = {}
            while len(self._turns) > MAX_TURNS:
                self._turns.popitem(last=False)
        stages.setdefault(stage, round(at_ms, 2))

    def has(self, reply_id: int, stage: str) -> bool:
        return stage in self._turns.get(reply_id, {})

    def rows(self) -> list[dict[str, float | int]]:
        """One row per reply that reached the voice (``reply`` = its id), for the call's stored stats."""
        return [{"reply": rid, **stages} for rid, stages in self._turns.items() if "first_text" in stages
                or "first_audio" in stages]


__all__ = ["MAX_TURNS", "STAGES", "TurnTrace"]
