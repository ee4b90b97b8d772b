"""FailoverWatch: when a silent provider counts as failed (sans-I/O; every time is an argument).

Two silences are failures, each after the provider's stall limit:

* ``stall``: speech was pushed and the provider has answered nothing since (speech pushed beyond what a result
  covers, by more than ``answer_slack_ms``, stays unanswered: a burst read after a stall of our own loop);
* ``missing_final``: after the end of the audio it neither emits nor finishes.

Neither is declared while no other provider is left (``armed`` False): the last resort is waited for, never
abandoned. The stream asks :meth:`next_deadline` how long it may sleep and calls :meth:`on_timer` when it wakes.
"""

from __future__ import annotations

from switchboard.transcribe.base import SwitchReason


class FailoverWatch:
    """The current provider's silence deadlines; reset for each provider the stream installs."""

    def __init__(self, answer_slack_ms: int) -> None:
        self._slack = answer_slack_ms
        self._limit = 0.0
        self.armed = False
        self._pending_since: float | None = None  # oldest speech push the provider has not answered
        self._speech_end_ms = -1  # media end of the latest push that carried speech
        self._active_at = 0.0  # last result from, or opening of, the provider
        self._ended_at: float | None = None

    def provider_opened(self, now: float, stall_limit_s: float, *, armed: bool) -> None:
        """A new provider serves the track from ``now``; ``armed``: another one is left to switch to."""
        self._limit, self.armed = stall_limit_s, armed
        self._active_at, self._pending_since = now, None

    def speech_pushed(self, now: float, end_ms: int) -> bool:
        """Audio with speech up to media time ``end_ms`` went to the provider; True if a deadline now exists that
        did not (the waiting stream must wake to take it into account)."""
        self._speech_end_ms = max(self._speech_end_ms, end_ms)
        if self._pending_since is None:
            self._pending_since = now
            return True
        return False

    def result(self, now: float, end_ms: int, final_end_ms: int) -> None:
        """The provider emitted a result ending at ``end_ms`` (``final_end_ms``: the end of the last final)."""
        self._active_at = now
        unanswered = self._speech_end_ms > max(end_ms, final_end_ms) + self._slack
        self._pending_since = now if unanswered else None

    def audio_ended(self, now: float) -> None:
        if self._ended_at is None:
            self._ended_at = now

    def next_deadline(self) -> float | None:
        """Clock time at which the provider counts as failed if it stays silent; None = no deadline."""
        if not self.armed:
            return None
        starts = [] if self._pending_since is None else [self._pending_since]
        if self._ended_at is not None:  # it has all the audio it will get: what is missing is a final
            starts.append(max(self._ended_at, self._active_at))
        return min(starts) + self._limit if starts else None

    def on_timer(self, now: float) -> SwitchReason | None:
        """Why the provider has failed at ``now``, or None while it is within its deadline."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return None
        return SwitchReason.MISSING_FINAL if self._ended_at is not None else SwitchReason.STALL

    @property
    def stall_limit_s(self) -> float:
        return self._limit


__all__ = ["FailoverWatch"]
