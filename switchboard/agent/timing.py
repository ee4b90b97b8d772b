"""The turn-taking parameters, with why each has its value (all milliseconds or dB).

How they were chosen, and how to tune them:

- **Endpointing** ``min_endpoint_ms = 500`` / ``max_endpoint_ms = 3000``: the agent answers ``min`` after the
  caller's speech stopped when a final transcript is in and the words look finished, and waits up to ``max`` when
  they do not ("it's at 12 ... erm", a trailing "and"), or when no final came. 500 ms is the commonly used floor
  (livekit-agents' default endpointing ``min_delay`` is 0.5 s, ``max_delay`` 3 s): shorter cuts people who pause
  between a house number and a street; longer makes the agent feel slow, since the voice-to-voice latency is this
  plus the model's first token plus the voice's first audio. Tune on the replay dialogs: lower ``min`` until a
  scripted caller who pauses mid-address is cut, then add 100 ms back.
- **Barge-in** ``interrupt_min_speech_ms = 300``: loud caller speech must last this long before it cuts the agent
  (a cough or a door is shorter); the goal for barge-in reaction is this plus 60 ms. ``interrupt_min_words = 2``:
  or this many recognised words that are not the agent's own (echo) and not a backchannel ("yeah", "okay").
- **Echo** ``echo_margin_db = 12``: while the agent talks the caller track carries its echo (speaker-phones leak
  the agent at about -20 dB). Speech only counts as the caller's own, without words, when it is louder than the
  agent's level minus this margin, i.e. 8 dB above a -20 dB echo. ``echo_window_chars = 400``: interim words are
  matched against this much of the agent's text around what is playing. ``echo_tail_ms = 1500``: the
  recogniser's result for the echo of the agent's last words arrives up to about a second after playback ends
  (its own latency), so for this long a transcript made only of the agent's words is still taken as echo.
- **False interruptions** ``resume_after_ms = 1500``: if loud speech cut the agent but no words followed within
  this time of the speech ending, the agent says the rest of its turn again.
- **Silence** ``reprompt_ms = 8000``: the agent re-prompts after this silence; after the second it says goodbye.
- **Keypad** ``dtmf_gap_ms = 3000``: digits typed are one answer until ``#`` or this gap.
- **Marks** ``mark_slack_ms = 1500``: if Twilio has not echoed a turn's last mark this long after its audio
  should have finished playing, the turn is taken as heard (so a lost mark cannot hang the conversation).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TurnTiming:
    min_endpoint_ms: int = 500
    max_endpoint_ms: int = 3000
    interrupt_min_speech_ms: int = 300
    interrupt_min_words: int = 2
    echo_margin_db: float = 12.0
    echo_window_chars: int = 400
    echo_tail_ms: int = 1500
    resume_after_ms: int = 1500
    reprompt_ms: int = 8000
    dtmf_gap_ms: int = 3000
    mark_slack_ms: int = 1500

    def __post_init__(self) -> None:
        if not 0 < self.min_endpoint_ms <= self.max_endpoint_ms:
            raise ValueError(f"need 0 < min_endpoint_ms <= max_endpoint_ms, got {self.min_endpoint_ms}, "
                             f"{self.max_endpoint_ms}")
        if self.interrupt_min_words < 1 or self.interrupt_min_speech_ms < 0:
            raise ValueError("interrupt_min_words must be >= 1 and interrupt_min_speech_ms >= 0")
        if min(self.reprompt_ms, self.dtmf_gap_ms, self.mark_slack_ms, self.resume_after_ms) <= 0:
            raise ValueError("reprompt_ms, dtmf_gap_ms, mark_slack_ms and resume_after_ms must be positive")


__all__ = ["TurnTiming"]
