"""One agent turn on its way to the caller: its text, the audio sent for it, and what the caller has heard.

Every chunk of audio sent is followed by a mark whose name maps to the character position (from the TTS
alignment) the audio reaches. Twilio echoes a mark once the audio before it has played, so the last echoed mark
says how much of the text the caller heard. After a ``clear`` Twilio echoes every pending mark at once; those
echoes are ignored, because the audio behind them was dropped, not played
(https://www.twilio.com/docs/voice/media-streams/websocket-messages#send-a-clear-message).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from switchboard.agent.events import After


@dataclass
class AgentTurn:
    reply_id: int
    kind: str  # "greeting", "reply", "prompt", "resume", ...
    started_at: int
    text: str = ""
    text_done: bool = False
    audio_done: bool = False
    then: After = "listen"
    sent_chars: int = 0
    played_chars: int = 0
    level_db: float | None = None
    first_audio_at: int | None = None
    plays_until: int | None = None
    pending: dict[str, int] = field(default_factory=dict)
    _marks: int = 0

    @property
    def audible(self) -> bool:
        """Audio has been sent and the caller may still be hearing it."""
        return self.first_audio_at is not None and (bool(self.pending) or not self.audio_done)

    @property
    def complete(self) -> bool:
        """All text and audio are out and every mark has come back: the caller has heard all of it."""
        return self.text_done and self.audio_done and not self.pending

    def queued(self, chars: int, duration_ms: int, level_db: float | None, now: int) -> str:
        """Audio for the text up to ``chars`` was sent; returns the name of the mark to send after it."""
        if self.first_audio_at is None:
            self.first_audio_at = now
        self.sent_chars = max(self.sent_chars, min(chars, len(self.text)) if self.text_done else chars)
        if level_db is not None:
            self.level_db = level_db if self.level_db is None else max(self.level_db, level_db)
        # Twilio plays queued audio back to back in real time from when it arrives.
        self.plays_until = max(now, self.plays_until or now) + max(0, duration_ms)
        self._marks += 1
        name = f"r{self.reply_id}.{self._marks}"
        self.pending[name] = self.sent_chars
        return name

    def played(self, name: str) -> bool:
        """A mark came back; False if it is not one of this turn's pending marks."""
        chars = self.pending.pop(name, None)
        if chars is None:
            return False
        # Marks come back in order, so every mark sent before this one has played too.
        for earlier in [n for n, c in self.pending.items() if _index(n) < _index(name)]:
            self.pending.pop(earlier)
        self.played_chars = max(self.played_chars, chars)
        return True

    def assume_played(self) -> None:
        """The marks are overdue (see ``mark_slack_ms``): take the audio as heard."""
        if self.pending:
            self.played_chars = max(self.played_chars, *self.pending.values())
        self.pending.clear()

    def heard(self) -> str:
        """The text the caller heard, cut back to a whole word when the audio stopped inside one."""
        if self.complete and self.played_chars >= len(self.text.rstrip()):
            return self.text.strip()
        cut = self.text[:self.played_chars]
        if self.played_chars < len(self.text) and not self.text[self.played_chars].isspace():
            cut = cut.rsplit(maxsplit=1)[0] if " " in cut.strip() else ""
        return cut.strip()

    def unheard(self) -> str:
        """The rest of the text after what was heard (said again after a false interruption)."""
        return self.text[len(self.heard()):].strip() if self.text.startswith(self.heard()) else self.text.strip()


def _index(mark: str) -> int:
    return int(mark.rsplit(".", 1)[1])


__all__ = ["AgentTurn"]
