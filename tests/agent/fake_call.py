"""A fake clock and a fake call around the turn-taking core, for tests.

The fake call does what the real one will: it synthesises the core's lines and replies into "audio" chunks (a
fixed number of ms per character), queues them to a fake Twilio that plays them in real time and echoes each
mark when its audio has played (and every pending mark at once on ``clear``, as Twilio does). Scheduled caller
events and the core's own deadlines run in time order.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from switchboard.agent.events import (
    Action,
    AudioDone,
    AudioQueued,
    CancelReply,
    EndCall,
    Event,
    MarkPlayed,
    ReplyDone,
    ReplyText,
    SendClear,
    SendMark,
    Speak,
    StartReply,
    Transfer,
    TurnUpdate,
)
from switchboard.agent.turns import Lines, TurnTaker

LINES = Lines(greeting="Hello, Acme Repairs, how can I help?", reprompt="Are you still there?",
              goodbye_silence="I can't hear you, so I'll end the call. Goodbye.",
              transfer="Putting you through to a person now.")
MS_PER_CHAR = 60
CHUNK_CHARS = 10


@dataclass
class FakeCall:
    core: TurnTaker = field(default_factory=lambda: TurnTaker(LINES))
    now: int = 0
    agent_level_db: float | None = -18.0
    auto_reply: dict[int, tuple[str, str]] = field(default_factory=dict)
    """reply_id → (text, then): what the fake dialog answers; unlisted replies wait for :meth:`reply`."""
    responder: Callable[[int], tuple[str, str]] | None = None
    """Called on StartReply(reply_id) when set: the dialog's (text, then) for it."""
    log: list[tuple[int, Action]] = field(default_factory=list)
    _queue: list[tuple[int, int, Event]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _playing_until: int = 0
    _marks_pending: list[tuple[int, str]] = field(default_factory=list)
    cancelled: set[int] = field(default_factory=set)

    # -- driving --------------------------------------------------------------------------------------------------

    def at(self, when: int, event: Event) -> None:
        heapq.heappush(self._queue, (when, next(self._seq), event))

    def send(self, event: Event) -> list[Action]:
        actions = self.core.handle(event, self.now)
        self._carry_out(actions)
        return actions

    def run_until(self, until: int) -> None:
        while True:
            deadline = self.core.next_deadline()
            event_at = self._queue[0][0] if self._queue else None
            candidates = [t for t in (deadline, event_at) if t is not None and t <= until]
            if not candidates:
                break
            self.now = max(self.now, min(candidates))
            if event_at is not None and event_at <= self.now:
                _, _, event = heapq.heappop(self._queue)
                self.send(event)
            else:
                self._carry_out(self.core.on_timer(self.now))
        self.now = max(self.now, until)

    def reply(self, reply_id: int, text: str, then: str = "listen") -> None:
        self.send(ReplyText(reply_id, text))
        self.send(ReplyDone(reply_id, then))  # type: ignore[arg-type]
        self._synthesise(reply_id, text)

    # -- what the call does with actions ---------------------------------------------------------------------------

    def _carry_out(self, actions: list[Action]) -> None:
        for action in actions:
            self.log.append((self.now, action))
            match action:
                case Speak(reply_id=rid, text=text):
                    self._synthesise(rid, text)
                case StartReply(reply_id=rid) if rid in self.auto_reply:
                    text, then = self.auto_reply[rid]
                    self.reply(rid, text, then)
                case StartReply(reply_id=rid) if self.responder is not None:
                    text, then = self.responder(rid)
                    self.reply(rid, text, then)
                case SendMark(name=name):
                    heapq.heappush(self._marks_pending, (self._playing_until, name))
                    self.at(self._playing_until, MarkPlayed(name))
                case SendClear():
                    # Twilio drops the queued audio and echoes every pending mark at once.
                    self._queue = [(t, s, e) for t, s, e in self._queue if not isinstance(e, MarkPlayed)]
                    heapq.heapify(self._queue)
                    for when, name in self._marks_pending:
                        if when > self.now:
                            self.at(self.now, MarkPlayed(name))
                    self._marks_pending.clear()
                    self._playing_until = self.now
                case CancelReply(reply_id=rid):
                    self.cancelled.add(rid)

    def _synthesise(self, reply_id: int, text: str) -> None:
        """The fake voice: all of the text's audio at once, in chunks of CHUNK_CHARS characters."""
        for end in range(CHUNK_CHARS, len(text) + CHUNK_CHARS, CHUNK_CHARS):
            if reply_id in self.cancelled:
                return
            chars = min(end, len(text))
            duration = (chars - (end - CHUNK_CHARS)) * MS_PER_CHAR
            self._playing_until = max(self._playing_until, self.now) + duration
            self.send(AudioQueued(reply_id, chars, duration, self.agent_level_db))
        if reply_id not in self.cancelled:
            self.send(AudioDone(reply_id))

    # -- reading the log ------------------------------------------------------------------------------------------

    def actions(self, kind: type) -> list[tuple[int, Action]]:
        return [(t, a) for t, a in self.log if isinstance(a, kind)]

    def first(self, kind: type) -> tuple[int, Action]:
        found = self.actions(kind)
        assert found, f"no {kind.__name__} in {self.log}"
        return found[0]

    def updates(self, status: str) -> list[TurnUpdate]:
        return [a for _, a in self.log if isinstance(a, TurnUpdate) and a.status == status]

    def ended(self) -> Action | None:
        return next((a for _, a in self.log if isinstance(a, EndCall | Transfer)), None)


__all__ = ["CHUNK_CHARS", "LINES", "MS_PER_CHAR", "FakeCall"]
