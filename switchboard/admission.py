"""Admission: whether this instance takes one more call or websocket, under its caps and during a drain.

Sans-I/O (time is an argument). A call takes a slot when its voice webhook is answered: the slot is *reserved*
for ``reserve_s`` until the call's media stream starts, so a burst of webhooks cannot all be admitted in the
second before their streams arrive. Live calls are counted by the caller (the :class:`CallRegistry`).

    webhook                  draining → busy; live + reserved ≥ max_calls → busy; else reserve the CallSid
    media stream ``start``   reserved → admitted (the reservation becomes the live call);
                             draining → refused; live + reserved ≥ max_calls → refused; else admitted
    websocket upgrade        open connections ≥ max_connections → refused (released when it closes)

Reservations never outnumber ``max_calls`` (one is made only below the cap) and expire, so the table is bounded.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AdmissionStats:
    max_calls: int
    reserved: int
    max_connections: int
    connections: int
    draining: bool
    refused_calls: int
    refused_connections: int


class Admission:
    def __init__(self, max_calls: int, max_connections: int, *, reserve_s: float = 30.0) -> None:
        if max_calls < 1 or max_connections < 1 or reserve_s <= 0:
            raise ValueError("max_calls and max_connections must be ≥ 1, reserve_s > 0")
        self.max_calls, self.max_connections, self.reserve_s = max_calls, max_connections, reserve_s
        self._reserved: dict[str, float] = {}  # CallSid → expiry
        self._connections = 0
        self._draining = False
        self._refused_calls = self._refused_connections = 0

    @property
    def draining(self) -> bool:
        return self._draining

    def begin_drain(self) -> None:
        """Take no new calls from now on (SIGTERM); calls already answered may still start their streams."""
        self._draining = True

    def answer_call(self, call_sid: str, live: int, now: float) -> str | None:
        """For the voice webhook: None (admitted, slot reserved) or why the caller hears the busy message."""
        self._expire(now)
        if call_sid in self._reserved:  # Twilio retried the webhook: same call, same slot
            self._reserved[call_sid] = now + self.reserve_s
            return None
        refusal = self._refusal(live)
        if refusal is None:
            self._reserved[call_sid] = now + self.reserve_s
        return refusal

    def start_stream(self, call_sid: str, live: int, now: float) -> str | None:
        """For a media stream's valid ``start``: None (admitted) or the close reason."""
        self._expire(now)
        if self._reserved.pop(call_sid, None) is not None:
            return None
        return self._refusal(live)

    def _refusal(self, live: int) -> str | None:
        if self._draining:
            reason = "server is shutting down"
        elif live + len(self._reserved) >= self.max_calls:
            reason = f"server at capacity ({self.max_calls} calls)"
        else:
            return None
        self._refused_calls += 1
        return reason

    def _expire(self, now: float) -> None:
        for sid in [sid for sid, until in self._reserved.items() if until <= now]:
            del self._reserved[sid]

    def open_connection(self) -> bool:
        """Count a websocket in; False (and not counted) when the cap is reached."""
        if self._connections >= self.max_connections:
            self._refused_connections += 1
            return False
        self._connections += 1
        return True

    def close_connection(self) -> None:
        self._connections -= 1

    def stats(self) -> AdmissionStats:
        return AdmissionStats(self.max_calls, len(self._reserved), self.max_connections, self._connections,
                              self._draining, self._refused_calls, self._refused_connections)
