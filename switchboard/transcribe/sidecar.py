"""A fixture's own transcript as recognition: words and finals at the media times its sidecar gives them.

The dashboard benchmark needs a hundred calls' transcript events flowing through the real server (media path,
relay, hub, websockets) on a two-core machine, where any real recogniser, or a hundred cloud sockets to an
emulator, would cost more than the server and starve it. This transcriber recognises nothing: given the
fixture's sidecar (``fixtures/*.json``: per track, utterances with word timings), it emits a partial per word
once the pushed audio has reached that word's end and the utterance's final once it has reached the utterance's
end, exactly as the audio's media time advances. It costs a comparison per push.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from switchboard.transcribe.base import Pcm16, TranscriptEvent, check_push
from switchboard.transcribe.waker import Waker


@dataclass(frozen=True, slots=True)
class Line:
    start_ms: int
    end_ms: int
    text: str
    words: tuple[tuple[str, int], ...]
    """Each word and the media time its end is heard."""


def read_sidecar(path: Path) -> dict[str, tuple[Line, ...]]:
    """Per track, the utterances of a fixture's sidecar JSON; a malformed file raises ``ValueError`` naming it."""
    try:
        tracks = json.loads(path.read_text())["tracks"]
        return {track: tuple(Line(int(u["start_ms"]), int(u["end_ms"]), str(u["text"]),
                                  tuple((str(w["w"]), int(w["end_ms"])) for w in u.get("words", ())))
                             for u in body["utterances"])
                for track, body in tracks.items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{path}: not a fixture sidecar ({exc!r})") from exc


class SidecarStream:
    """One track: events come out in media-time order as pushes move the track's media time past them."""

    provider = "sidecar"

    def __init__(self, track: str, sample_rate: int, lines: tuple[Line, ...]) -> None:
        self.track, self.rate = track, sample_rate
        self._pending = deque(_events(track, lines))
        self._ready: deque[TranscriptEvent] = deque()
        self._heard_ms = 0
        self._ended = False
        self._waker = Waker()

    def push(self, pcm: Pcm16, pts_ms: int) -> None:
        pcm = check_push(pcm, ended=self._ended, track=self.track, provider=self.provider)
        self._heard_ms = max(self._heard_ms, pts_ms + len(pcm) * 1000 // self.rate)
        while self._pending and self._pending[0][0] <= self._heard_ms:
            self._ready.append(self._pending.popleft()[1])
        if self._ready:
            self._waker.wake()

    def end(self) -> None:
        """The audio is over: what it did not reach is never heard (as a recogniser would not hear it)."""
        self._ended = True
        self._waker.wake()

    def __aiter__(self) -> SidecarStream:
        return self

    async def __anext__(self) -> TranscriptEvent:
        while not self._ready:
            if self._ended:
                raise StopAsyncIteration
            await self._waker.wait()
        return self._ready.popleft()

    async def aclose(self) -> None:
        self._ended = True
        self._ready.clear()
        self._waker.wake()


def _events(track: str, lines: tuple[Line, ...]) -> list[tuple[int, TranscriptEvent]]:
    """(due media ms, event): a growing partial per word, then the final, for each line in order."""
    out: list[tuple[int, TranscriptEvent]] = []
    for line in lines:
        words: list[str] = []
        for word, end_ms in line.words:
            words.append(word)
            out.append((end_ms, TranscriptEvent(track, " ".join(words), False, line.start_ms, end_ms,
                                                SidecarStream.provider, None)))
        out.append((line.end_ms, TranscriptEvent(track, line.text, True, line.start_ms, line.end_ms,
                                                 SidecarStream.provider, 0.99)))
    return out


class SidecarTranscriber:
    """:class:`~switchboard.transcribe.base.Transcriber` reading one fixture's sidecar (every call says the same)."""

    name = "sidecar"

    def __init__(self, sidecar: Path) -> None:
        self._lines = read_sidecar(sidecar)

    async def open(self, track: str, sample_rate: int) -> SidecarStream:
        return SidecarStream(track, sample_rate, self._lines.get(track, ()))


__all__ = ["Line", "SidecarStream", "SidecarTranscriber", "read_sidecar"]
