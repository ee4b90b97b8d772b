"""When a streaming voice has failed a turn, from how fast it usually answers (sans-I/O: times are arguments).

A flushed turn owes audio: its first audio within the first-audio deadline of the flush (or of the last text sent,
if later), then no pause between audio messages longer than the stall deadline until its text is voiced. Fixed
limits (1 s, 0.6 s) made every failover cost that much silence before the offline voice even started, although a
healthy ElevenLabs answers in a fraction of it. So the deadlines follow what the provider has shown:
``factor`` (2.5) × the p99 of its recent first-audio latencies and of its gaps between audio messages in a flushed
turn, clamped to ``[floor, configured limit]`` (:class:`~switchboard.transcribe.latency.LatencyTracker`, the
transcription chain's rule). One :class:`VoiceWatch` per provider, shared by every call's stream: the latency is
the provider's, not the call's; until ``min_samples`` have been seen (a fresh process) the configured limits
apply. A false alarm costs the rest of that call in the offline voice, never words.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from switchboard.transcribe.latency import LatencyTracker


class Owed(enum.Enum):
    """What the head turn is waiting for when its deadline passes."""

    FIRST_AUDIO = "first_audio"  # nothing yet: a timeout
    MORE_AUDIO = "more_audio"  # audio stopped before the text was voiced: a stall
    TURN_END = "turn_end"  # everything voiced: the quiet after it ends the turn


@dataclass(frozen=True, slots=True)
class TurnClock:
    """The head turn's times (seconds on one monotonic clock) as the stream saw them."""

    flushed_at: float
    text_sent_at: float
    """When text was last sent (a flush's text may go out after ``flushed_at``, once the socket is open)."""
    audio: bool
    """Audio has arrived for this turn."""
    last_audio_at: float
    voiced: bool
    """The alignment has voiced all of the turn's text."""


class VoiceWatch:
    def __init__(self, first_audio_s: float, stall_s: float, *, turn_end_grace_s: float = 0.1,
                 first_audio_floor_s: float = 0.35, stall_floor_s: float = 0.25, factor: float = 2.5,
                 min_samples: int = 5) -> None:
        self.first = LatencyTracker(first_audio_s, floor_s=min(first_audio_floor_s, first_audio_s), factor=factor,
                                    min_samples=min_samples)
        self.gaps = LatencyTracker(stall_s, floor_s=min(stall_floor_s, stall_s), factor=factor,
                                   min_samples=min_samples)
        self.turn_end_grace_s = turn_end_grace_s

    def audio(self, turn: TurnClock, now: float) -> None:
        """Audio arrived at ``now`` for a flushed turn whose times (before it) are ``turn``: learn from it."""
        if not turn.audio:
            self.first.observe(now - max(turn.flushed_at, turn.text_sent_at))
        elif not turn.voiced:
            self.gaps.observe(now - turn.last_audio_at)

    def due(self, turn: TurnClock) -> tuple[float, Owed]:
        """When the head turn is overdue, and for what."""
        if turn.voiced:
            return turn.last_audio_at + self.turn_end_grace_s, Owed.TURN_END
        if not turn.audio:
            return max(turn.flushed_at, turn.text_sent_at) + self.first.deadline_s(), Owed.FIRST_AUDIO
        return turn.last_audio_at + self.gaps.deadline_s(), Owed.MORE_AUDIO


__all__ = ["Owed", "TurnClock", "VoiceWatch"]
