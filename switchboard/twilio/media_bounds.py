"""Bounds on a stream's media time: how far a timestamp may jump, and how far media may run ahead of the wall clock.

Sans-I/O: the caller passes the time (``now``, seconds on any monotonic clock) with every frame, so the rules are
tested with a fake clock. Twilio's ``media.timestamp`` is ms since the stream started (protocols/twilio.md §e;
https://www.twilio.com/docs/voice/media-streams/websocket-messages#media-message), and the server turns gaps in it
into silence. Unchecked, one frame claiming 10^12 ms would order hours of silence; a sender faster than real time
would fill the disk at its own pace. The rules:

* **Jumps.** A frame may start at most ``max_jump_ms`` past the stream's horizon: the newest media time seen on any
  track, or the wall time since ``start`` if that is later (an outbound track silent while nothing plays resumes at
  about the wall time). A frame more than ``max_jump_ms`` behind its own track's newest is a jump back. Either is a
  :class:`ProtocolViolation` (1008): the stream is closed with the reason and the audio before it is kept.
* **Speed.** Media time may lead the wall clock by at most ``max_lead_ms + (max_speed − 1) × elapsed``, i.e. media
  time ≤ ``max_lead_ms + max_speed × elapsed``. A frame beyond that is not refused: :meth:`admit` returns how long
  to wait before taking it, and the server stops reading the socket for that long (TCP pushes back on the sender).
  Real calls run at 1× with bursts far below the lead; ``switchboard replay --speed`` is limited to ``max_speed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from switchboard.close_codes import CloseCode
from switchboard.twilio.errors import ProtocolViolation

MAX_JUMP_MS: Final = 5_000
MAX_SPEED: Final = 20.0
MAX_LEAD_MS: Final = 60_000


@dataclass(frozen=True, slots=True)
class MediaTimeLimits:
    max_jump_ms: int = MAX_JUMP_MS
    max_speed: float = MAX_SPEED
    max_lead_ms: int = MAX_LEAD_MS

    def __post_init__(self) -> None:
        if self.max_jump_ms < 0 or not self.max_speed >= 1 or self.max_lead_ms < 0:
            raise ValueError(f"invalid media time limits: {self}")


class MediaTimeGuard:
    """One stream's media time against :class:`MediaTimeLimits`; see the module docstring for the rules."""

    def __init__(self, limits: MediaTimeLimits, started_at: float) -> None:
        self.limits = limits
        self._t0 = started_at
        self._newest: dict[str, int] = {}
        self._horizon = 0
        self.held_s = 0.0
        """Total time :meth:`admit` asked the caller to hold frames back."""

    def admit(self, track: str, timestamp_ms: int, now: float) -> float:
        """Check one frame's timestamp; return the seconds to wait before taking it (0 when within the pace).

        Raises :class:`ProtocolViolation` for a jump beyond ``max_jump_ms`` (nothing is recorded for it).
        """
        limits = self.limits
        elapsed_ms = (now - self._t0) * 1000.0
        horizon = max(self._horizon, elapsed_ms)
        if timestamp_ms > horizon + limits.max_jump_ms:
            raise ProtocolViolation(
                f"media timestamp {timestamp_ms} ms jumps {timestamp_ms - horizon:.0f} ms ahead of the stream "
                f"(limit {limits.max_jump_ms} ms)", CloseCode.POLICY_VIOLATION)
        newest = self._newest.get(track)
        if newest is not None and timestamp_ms < newest - limits.max_jump_ms:
            raise ProtocolViolation(
                f"media timestamp {timestamp_ms} ms jumps {newest - timestamp_ms} ms back on the {track} track "
                f"(limit {limits.max_jump_ms} ms)", CloseCode.POLICY_VIOLATION)
        if newest is None or timestamp_ms > newest:
            self._newest[track] = timestamp_ms
            if timestamp_ms > self._horizon:
                self._horizon = timestamp_ms
        wait_s = (timestamp_ms - limits.max_lead_ms) / (limits.max_speed * 1000.0) - elapsed_ms / 1000.0
        if wait_s <= 0:
            return 0.0
        self.held_s += wait_s
        return wait_s
