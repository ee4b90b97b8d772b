"""Sans-I/O: cut streamed text into sentences, so a voice that synthesises whole utterances (Piper, espeak-ng)
can start speaking the first sentence while the model is still writing the second.

With ``lead_clause_chars`` set, the first piece of each turn may also end at a clause break (``,``, ``;``, ``:``,
a dash) at least that many characters in: a voice that synthesises a piece whole before its first audio then
starts a long first sentence after a clause's worth of synthesis, not the sentence's. This matters most when the
offline voice takes over the rest of a turn mid-sentence, where the caller is already waiting (Piper needs about
a third of the audio's duration on a busy two-core machine).
"""

from __future__ import annotations

import re

_END = re.compile(r"[.!?;:…](?:[\"')\]]*)\s+|\n+")
_CLAUSE = re.compile(r"[,;:](?:[\"')\]]*)\s+|\s+[-–—]\s+")


class SentenceSplitter:
    """``push(text)`` returns the pieces completed by it (each with its trailing whitespace, so the pieces
    concatenate back to the input); ``rest()`` returns what is left and starts a new turn."""

    def __init__(self, lead_clause_chars: int | None = None) -> None:
        self._buffer = ""
        self._lead = lead_clause_chars
        self._first = True

    def push(self, text: str) -> list[str]:
        self._buffer += text
        out: list[str] = []
        if self._first and self._lead is not None:
            cut = self._lead_cut()
            if cut:
                out.append(self._buffer[:cut])
                self._buffer = self._buffer[cut:]
        start = 0
        for match in _END.finditer(self._buffer):
            out.append(self._buffer[start:match.end()])
            start = match.end()
        self._buffer = self._buffer[start:]
        self._first = self._first and not out
        return out

    def rest(self) -> str:
        rest, self._buffer, self._first = self._buffer, "", True
        return rest

    def clear(self) -> None:
        self._buffer, self._first = "", True

    def _lead_cut(self) -> int:
        """Where the turn's first piece ends if a clause break comes before its sentence end, else 0."""
        assert self._lead is not None
        sentence = _END.search(self._buffer)
        for match in _CLAUSE.finditer(self._buffer, self._lead):
            if sentence is None or match.end() < sentence.end():
                return match.end()
        return 0


__all__ = ["SentenceSplitter"]
