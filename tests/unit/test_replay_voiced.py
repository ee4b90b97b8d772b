"""Where a scripted caller's line stops being speech: voice-to-voice is measured from there, not from the end of
the line's audio file (whose quiet tail the caller is not speaking in)."""

from __future__ import annotations

import numpy as np

from audio import mulaw
from switchboard.replay.script import ScriptedCaller, Step, voiced_ms


def _line(speech_ms: int, tail_ms: int) -> bytes:
    t = np.arange(speech_ms * 8) / 8000
    tone = (3000 * np.sin(2 * np.pi * 440 * t)).astype(np.int16)
    return mulaw.encode(np.concatenate([tone, np.full(tail_ms * 8, 20, np.int16)]))


def test_the_quiet_tail_is_not_speech() -> None:
    assert voiced_ms(_line(730, 65)) in (729, 730)
    assert voiced_ms(_line(0, 100)) == 0


def test_the_caller_exposes_the_line_it_starts() -> None:
    caller = ScriptedCaller([Step("say", "hello", _line(400, 60))], pause_ms=0)
    tick = caller.tick(0, agent_speaking=False, agent_received_ms=1)
    assert tick.line_started == "hello" and caller.line_voiced_ms in (399, 400)
