"""DTMF keys gathered into answers (sans-I/O): keys until ``#`` or a pause of ``dtmf_gap_ms`` are one answer.

A lone ``0`` asks for a person, unless the agent has just asked for a number (a UK number starts with 0).
Twilio sends one ``dtmf`` message per key on a bidirectional stream
(https://www.twilio.com/docs/voice/media-streams/websocket-messages#dtmf-message).
"""

from __future__ import annotations

import re
from typing import Final

NUMBER_QUESTION: Final = re.compile(r"\b(?:number|phone|digits|mobile|landline)\b[^.?!]*\?\s*$", re.IGNORECASE)


def asks_for_number(agent_text: str) -> bool:
    """The agent's last sentence is a question about a number."""
    return bool(NUMBER_QUESTION.search(agent_text.strip()))


class KeypadAnswer:
    """Keys pressed since the last answer, and when they make one."""

    def __init__(self, gap_ms: int) -> None:
        self._gap_ms = gap_ms
        self._digits = ""
        self._last_at: int | None = None
        self._closed = False

    def press(self, key: str, now: int) -> None:
        if key == "#":
            self._closed = bool(self._digits)
        elif key.isdigit() and len(key) == 1:
            self._digits += key
            self._last_at = now
        # "*" and anything else carry no answer

    def deadline(self) -> int | None:
        if not self._digits or self._last_at is None:
            return None
        return self._last_at if self._closed else self._last_at + self._gap_ms

    def take(self) -> str:
        digits, self._digits, self._last_at, self._closed = self._digits, "", None, False
        return digits


__all__ = ["NUMBER_QUESTION", "KeypadAnswer", "asks_for_number"]
