"""A scripted caller, sans-I/O: what a person on the phone does on each 20 ms tick, given what they hear.

Scripts are fixture dialogs (``fixtures/dialogs/dialogs.json``: each caller line's text and its audio, made by
``scripts/make_dialogs.py`` with the offline espeak-ng voice). The caller waits for the agent to finish speaking
(nothing left to play for ``pause_ms``, as a person leaves a beat) before each line, barges in ``after_ms`` into
an agent turn where the script says, types keys, stays silent, or hangs up mid-sentence.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np

from audio import mulaw

FRAME: Final = 160
SILENCE: Final = b"\xff" * FRAME
KEY_GAP_MS: Final = 300
VOICED: Final = 256
"""|sample| at or above this is speech (the dialog-line oracle's threshold); the lines' tails are quieter."""


def voiced_ms(audio: bytes) -> int:
    """Where the speech in a line ends: ms from its start to just after its last voiced sample (0 if none)."""
    loud = np.flatnonzero(np.abs(mulaw.decode(audio).astype(np.int32)) >= VOICED)
    return 0 if not len(loud) else (int(loud[-1]) + 1) // 8


@dataclass(frozen=True, slots=True)
class Step:
    kind: str  # say | barge_in | keys | silence | hang_up
    text: str = ""
    audio: bytes = b""
    after_ms: int = 0
    """barge_in / hang_up: this far into an agent turn; silence: this long."""


@dataclass
class Dialog:
    name: str
    steps: list[Step]
    expect: dict[str, Any] = field(default_factory=dict)


def load_dialogs(path: Path) -> list[Dialog]:
    """``dialogs.json`` and the audio files next to it."""
    data = json.loads(path.read_text())
    dialogs = []
    for spec in data["dialogs"]:
        steps = []
        for raw in spec["steps"]:
            audio = (path.parent / raw["audio"]).read_bytes() if "audio" in raw else b""
            steps.append(Step(raw["kind"], raw.get("text", ""), audio, int(raw.get("after_ms", 0))))
        dialogs.append(Dialog(spec["name"], steps, spec.get("expect", {})))
    return dialogs


@dataclass(frozen=True, slots=True)
class Tick:
    """One tick's output: the caller's 20 ms of audio, and keys or a hang-up."""

    audio: bytes = SILENCE
    digit: str | None = None
    hang_up: bool = False
    line_started: str | None = None
    """Set on the first frame of a line (its text)."""
    line_ended: str | None = None
    """Set on the tick after a line's last frame."""


class ScriptedCaller:
    def __init__(self, steps: list[Step], *, pause_ms: int = 700) -> None:
        self._steps = list(steps)
        self._pause_ms = pause_ms
        self._index = 0
        self._audio = b""
        self._pos = 0
        self._line = ""
        self.line_voiced_ms = 0
        """The current line's speech ends this far into it (:func:`voiced_ms`)."""
        self._keys = ""
        self._next_key_at = 0
        self._silent_until: int | None = None
        self._heard_at_turn = 0  # agent audio received when our last turn ended
        self._quiet_since: int | None = None
        self._speaking_since: int | None = None
        self.done = False
        """Every step has been taken (the caller now waits for the agent to end the call)."""

    def tick(self, now_ms: int, agent_speaking: bool, agent_received_ms: int) -> Tick:
        if agent_speaking:
            self._quiet_since = None
            self._speaking_since = now_ms if self._speaking_since is None else self._speaking_since
        else:
            self._speaking_since = None
            self._quiet_since = now_ms if self._quiet_since is None else self._quiet_since
        if self._audio:
            return self._play()
        if self._keys:
            return self._key(now_ms)
        if self._index >= len(self._steps):
            self.done = True
            return Tick()
        step = self._steps[self._index]
        answered = agent_received_ms > self._heard_at_turn
        quiet = self._quiet_since is not None and now_ms - self._quiet_since >= self._pause_ms
        into_turn = self._speaking_since is not None and now_ms - self._speaking_since >= step.after_ms
        if step.kind == "silence":
            if self._silent_until is None:
                self._silent_until = now_ms + step.after_ms
            if now_ms >= self._silent_until:
                self._silent_until = None
                self._index += 1
            return Tick()
        if step.kind in ("say", "keys") and not (answered and quiet):
            return Tick()
        if step.kind in ("barge_in", "hang_up") and not (answered and into_turn):
            return Tick()
        self._index += 1
        if step.kind == "hang_up":
            self.done = True
            return Tick(hang_up=True)
        if step.kind == "keys":
            self._keys, self._next_key_at = step.text, now_ms
            return self._key(now_ms)
        self._audio, self._pos, self._line = step.audio, 0, step.text
        self.line_voiced_ms = voiced_ms(step.audio)
        tick = self._play()
        return Tick(tick.audio, line_started=step.text)

    def _play(self) -> Tick:
        frame = self._audio[self._pos:self._pos + FRAME]
        self._pos += FRAME
        if self._pos >= len(self._audio):
            self._audio = b""
            return Tick(frame.ljust(FRAME, b"\xff"), line_ended=self._line)
        return Tick(frame)

    def _key(self, now_ms: int) -> Tick:
        if now_ms < self._next_key_at:
            return Tick()
        digit, self._keys = self._keys[0], self._keys[1:]
        self._next_key_at = now_ms + KEY_GAP_MS
        return Tick(digit=digit, line_ended=None if self._keys else "keys")

    def turn_taken(self, agent_received_ms: int) -> None:
        """Our line (or keys) just ended: the next line waits for new agent audio after this."""
        self._heard_at_turn = agent_received_ms


__all__ = ["Dialog", "ScriptedCaller", "Step", "Tick", "load_dialogs", "voiced_ms"]
