"""When the caller has finished their turn: VAD speech start/stop plus interim and final transcripts in, a
deadline out (sans-I/O; times are arguments).

The turn ends ``min_endpoint_ms`` after the caller's speech stopped if a final transcript covers everything heard
and the words look finished; otherwise it waits up to ``max_endpoint_ms`` (see :mod:`.timing`). When there is no
VAD (a transcriber that only sends text), the arrival of a transcript stands in for the end of speech.
"""

from __future__ import annotations

import re
from typing import Final

from switchboard.agent.timing import TurnTiming

UNFINISHED: Final = re.compile(
    r"(?:\b(?:and|but|or|so|because|the|a|an|my|at|in|on|is|it's|erm|um|uh|er|like|number|to|of|with)|[,-])\s*$",
    re.IGNORECASE)
"""Words a sentence does not end on: the caller is still going, so wait longer."""


def looks_finished(text: str) -> bool:
    """False when the text ends mid-phrase (a trailing conjunction, article, filler or comma)."""
    return bool(text.strip()) and not UNFINISHED.search(text.strip())


class CallerTurn:
    """The caller's words since their last committed turn and when they may be committed."""

    def __init__(self, timing: TurnTiming) -> None:
        self._timing = timing
        self._finals: list[str] = []
        self._interim = ""
        self.in_speech = False
        self._vad = False
        self.speech_started_at: int | None = None
        self.stopped_at: int | None = None

    @property
    def text(self) -> str:
        """Everything heard so far: the finals, then any newer interim text."""
        return " ".join([*self._finals, self._interim]).strip()

    @property
    def has_words(self) -> bool:
        return bool(self.text)

    def speech_started(self, now: int) -> None:
        self._vad = True
        if not self.in_speech:
            self.in_speech, self.speech_started_at = True, now

    def speech_stopped(self, now: int) -> None:
        if self.in_speech:
            self.in_speech, self.stopped_at = False, now

    def heard(self, text: str, final: bool, now: int) -> None:
        text = " ".join(text.split())
        if final:
            if text:
                self._finals.append(text)
            self._interim = ""
        else:
            self._interim = text
        if not self._vad:
            self.stopped_at = now  # no VAD: the transcript's arrival marks the end of speech

    def prepend(self, text: str) -> None:
        """Put back a committed turn whose reply was abandoned because the caller went on talking."""
        if text:
            self._finals.insert(0, text)

    def deadline(self) -> int | None:
        """When the turn may be committed, or None while the caller talks or nothing has been said."""
        if self.in_speech or not self.has_words or self.stopped_at is None:
            return None
        settled = not self._interim and looks_finished(self.text)
        return self.stopped_at + (self._timing.min_endpoint_ms if settled else self._timing.max_endpoint_ms)

    def take(self) -> str:
        """The turn's text; the buffer starts over."""
        text = self.text
        self._finals, self._interim = [], ""
        return text

    def reset(self) -> None:
        self._finals, self._interim = [], ""


__all__ = ["UNFINISHED", "CallerTurn", "looks_finished"]
