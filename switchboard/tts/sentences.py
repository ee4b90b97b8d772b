"""Sans-I/O: cut streamed text into sentences, so a voice that synthesises whole utterances (Piper, espeak-ng)
can start speaking the first sentence while the model is still writing the second."""

from __future__ import annotations

import re

_END = re.compile(r"[.!?;:…](?:[\"')\]]*)\s+|\n+")


class SentenceSplitter:
    """``push(text)`` returns the sentences completed by it (each with its trailing whitespace, so the pieces
    concatenate back to the input); ``rest()`` returns what is left and starts afresh."""

    def __init__(self) -> None:
        self._buffer = ""

    def push(self, text: str) -> list[str]:
        self._buffer += text
        out: list[str] = []
        start = 0
        for match in _END.finditer(self._buffer):
            out.append(self._buffer[start:match.end()])
            start = match.end()
        self._buffer = self._buffer[start:]
        return out

    def rest(self) -> str:
        rest, self._buffer = self._buffer, ""
        return rest

    def clear(self) -> None:
        self._buffer = ""


__all__ = ["SentenceSplitter"]
