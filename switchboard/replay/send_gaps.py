"""Sans-I/O: how steadily the agent's audio arrived, reply by reply, as the caller's side of the stream saw it.

The agent sends each chunk of a reply as a ``media`` message followed by its ``mark`` (named ``r{reply}.{n}``), so
the mark after a media message says which reply the audio belongs to. For each reply this keeps the longest wall
time between two of its consecutive media messages (the silence a provider failure leaves in what is *sent*) and
the longest silence the caller *heard* inside it (the playback ran dry before the next chunk came; media ms).
Gaps between replies are the caller's own turns and are not counted.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class ReplyAudio:
    """One reply's audio as received."""

    reply: str
    chunks: int = 0
    first_wall_s: float = 0.0
    last_wall_s: float = 0.0
    max_send_gap_ms: float = 0.0
    """Longest wall time between two consecutive media messages of this reply."""
    max_dead_air_ms: int = 0
    """Longest silence heard inside the reply (media ms): playback idle when the next chunk arrived."""


class SendGaps:
    def __init__(self) -> None:
        self.replies: dict[str, ReplyAudio] = {}
        self._pending: tuple[float, int] | None = None

    def media(self, wall_s: float, idle_ms: int) -> None:
        """A media message arrived at ``wall_s``; playback had been idle ``idle_ms`` (0 if still playing)."""
        if self._pending is None:  # several media before one mark: keep the first (the gap ends there)
            self._pending = (wall_s, idle_ms)

    def mark(self, name: str) -> None:
        """A mark arrived: the media since the previous mark belongs to its reply."""
        if self._pending is None:
            return
        wall_s, idle_ms = self._pending
        self._pending = None
        reply = name.split(".", 1)[0]
        audio = self.replies.get(reply)
        if audio is None:
            self.replies[reply] = ReplyAudio(reply, 1, wall_s, wall_s)
            return
        audio.max_send_gap_ms = max(audio.max_send_gap_ms, (wall_s - audio.last_wall_s) * 1000)
        audio.max_dead_air_ms = max(audio.max_dead_air_ms, idle_ms)
        audio.chunks += 1
        audio.last_wall_s = wall_s

    @property
    def max_send_gap_ms(self) -> float:
        return max((r.max_send_gap_ms for r in self.replies.values()), default=0.0)


__all__ = ["ReplyAudio", "SendGaps"]
