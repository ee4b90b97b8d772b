"""The turn-taking core: who speaks when (sans-I/O; events and the time in, actions out; no clock, no asyncio).

``handle(event, now)`` and ``on_timer(now)`` return the actions to carry out; ``next_deadline()`` says when to call
``on_timer`` next. The phases, and what moves between them::

    WAITING ──CallStarted──▶ THINKING (greeting) ──first audio──▶ SPEAKING ──all heard──▶ LISTENING
    LISTENING ──end of the caller's turn──▶ THINKING (StartReply) ──first audio──▶ SPEAKING
    THINKING ──caller goes on talking──▶ LISTENING (CancelReply; their words join the turn)
    SPEAKING ──barge-in──▶ LISTENING (SendClear, CancelReply; only the heard text is kept)
    any ──HungUp / goodbye heard / transfer line heard──▶ ENDED

Endpointing lives in :mod:`.endpointing`, the echo rule in :mod:`.barge_in`, marks in :mod:`.playback`, keys in
:mod:`.keypad`, and the parameters with their reasons in :mod:`.timing`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from switchboard.agent import barge_in
from switchboard.agent.endpointing import CallerTurn
from switchboard.agent.events import (
    Action,
    After,
    AudioDone,
    AudioQueued,
    CallStarted,
    CancelReply,
    EndCall,
    Event,
    Heard,
    HungUp,
    Keypad,
    MarkPlayed,
    ReplyDone,
    ReplyText,
    SendClear,
    SendMark,
    Speak,
    SpeechStarted,
    SpeechStopped,
    StartReply,
    Transfer,
    TurnUpdate,
)
from switchboard.agent.keypad import KeypadAnswer, asks_for_number
from switchboard.agent.playback import AgentTurn
from switchboard.agent.timing import TurnTiming
from switchboard.extract.schema import Transcript, Turn


class Phase(enum.Enum):
    WAITING = "waiting"
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Lines:
    """What the core says by itself (from the agent profile; none of it is written in code)."""

    greeting: str
    reprompt: str
    goodbye_silence: str
    transfer: str


class TurnTaker:
    def __init__(self, lines: Lines, timing: TurnTiming | None = None) -> None:
        self.lines = lines
        self.timing = timing or TurnTiming()
        self.phase = Phase.WAITING
        self.conversation: list[Turn] = []
        self._caller = CallerTurn(self.timing)
        self._keys = KeypadAnswer(self.timing.dtmf_gap_ms)
        self._turn: AgentTurn | None = None
        self._ids = 0
        self._caller_done_at: int | None = None  # end of the caller's last turn: the latency reference
        self._silent_since: int | None = None
        self._silences = 0
        self._speech_db: float | None = None
        self._resume: tuple[str, int | None] | None = None  # (unheard text, deadline) after a loud interruption
        self._echo_tail: tuple[str, int] = ("", 0)  # (the last turn's text, until when its echo may still come)

    # -- public API ---------------------------------------------------------------------------------------------

    def handle(self, event: Event, now: int) -> list[Action]:
        if self.ended:
            return []
        actions = self._dispatch(event, now)
        return actions if self.ended else actions + self.on_timer(now)

    def on_timer(self, now: int) -> list[Action]:
        """Everything due at ``now``: end of the caller's turn, barge-in by level, re-prompts, overdue marks."""
        actions: list[Action] = []
        while not self.ended:
            step = self._due(now)
            if not step:
                return actions
            actions += step
        return actions

    def next_deadline(self) -> int | None:
        deadlines = [d for d in self._deadlines().values() if d is not None]
        return min(deadlines) if deadlines else None

    def transcript(self) -> Transcript:
        return Transcript(tuple(self.conversation))

    @property
    def ended(self) -> bool:
        return self.phase is Phase.ENDED

    @property
    def current_reply(self) -> int | None:
        return None if self._turn is None else self._turn.reply_id

    # -- events -------------------------------------------------------------------------------------------------

    def _dispatch(self, event: Event, now: int) -> list[Action]:
        match event:
            case CallStarted() if self.phase is Phase.WAITING:
                self._caller_done_at = now
                return self._say(self.lines.greeting, "greeting", now)
            case SpeechStarted(level_db=level):
                self._caller.speech_started(now)
                self._speech_db = level
                return []
            case SpeechStopped():
                self._caller.speech_stopped(now)
                if self._resume is not None and not self._caller.has_words:
                    self._resume = (self._resume[0], now + self.timing.resume_after_ms)
                return []
            case Heard(text=text, final=final):
                return self._heard(text, final, now)
            case Keypad(digit=digit):
                actions = self._interrupt(now, resume=False) if self._turn is not None else []
                self._keys.press(digit, now)
                return actions
            case ReplyText(reply_id=rid, text=text) if self._is_current(rid) and not self._turn_or_fail().text_done:
                self._turn_or_fail().text += text
                return []
            case ReplyDone(reply_id=rid, then=then) if self._is_current(rid):
                turn = self._turn_or_fail()
                turn.text_done, turn.then = True, then
                return self._finish_if_heard(now)
            case AudioQueued() if self._is_current(event.reply_id):
                return self._queued(event, now)
            case AudioDone(reply_id=rid) if self._is_current(rid):
                self._turn_or_fail().audio_done = True
                return self._finish_if_heard(now)
            case MarkPlayed(name=name) if self._turn is not None and self._turn.played(name):
                return self._finish_if_heard(now)
            case HungUp():
                cancel: list[Action] = [] if self._turn is None else [CancelReply(self._turn.reply_id)]
                self._turn, self.phase = None, Phase.ENDED
                return cancel
        return []  # stale (a cancelled reply's text, audio or marks) or out of phase: nothing to do

    def _heard(self, text: str, final: bool, now: int) -> list[Action]:
        turn = self._turn
        if turn is not None and self.phase is Phase.SPEAKING:
            window = barge_in.echo_window(turn.text, turn.played_chars, turn.sent_chars, self.timing)
            if turn.then != "listen" or not barge_in.words_interrupt(text, window, self.timing):
                return []  # the agent's echo, a backchannel, or a goodbye that is not interruptible
            actions = self._interrupt(now, resume=False)
        elif turn is not None and turn.kind == "reply" and text.strip():
            actions = self._abandon_reply()  # THINKING: the caller is still going
        elif now <= self._echo_tail[1] and barge_in.is_echo(text, self._echo_tail[0]):
            return []  # the echo of the agent's last words, recognised after its turn ended
        else:
            actions = []
        self._caller.heard(text, final, now)
        if self._caller.has_words:
            self._silences, self._resume = 0, None
        return actions

    def _queued(self, event: AudioQueued, now: int) -> list[Action]:
        turn = self._turn_or_fail()
        first = turn.first_audio_at is None
        name = turn.queued(event.chars, event.duration_ms, event.level_db, now)
        actions: list[Action] = [SendMark(name)]
        if first:
            self.phase = Phase.SPEAKING
            latency = None if self._caller_done_at is None else now - self._caller_done_at
            actions.insert(0, TurnUpdate(turn.reply_id, "started", latency_ms=latency))
        return actions

    # -- moves ----------------------------------------------------------------------------------------------------

    def _say(self, text: str, kind: str, now: int, then: After = "listen") -> list[Action]:
        turn = self._new_turn(kind, now)
        turn.text, turn.text_done, turn.then = text, True, then
        return [Speak(turn.reply_id, text)]

    def _reply(self, caller_text: str, now: int) -> list[Action]:
        self.conversation.append(Turn("caller", caller_text, now))
        self._caller_done_at = self._caller.stopped_at if self._caller.stopped_at is not None else now
        turn = self._new_turn("reply", now)
        return [StartReply(turn.reply_id, caller_text)]

    def _new_turn(self, kind: str, now: int) -> AgentTurn:
        self._ids += 1
        self._turn = AgentTurn(self._ids, kind, now)
        self.phase = Phase.THINKING
        self._silent_since = None
        return self._turn

    def _interrupt(self, now: int, *, resume: bool) -> list[Action]:
        """Barge-in: cut the audio, stop the reply, keep what was heard."""
        turn = self._turn_or_fail()
        if turn.first_audio_at is None:
            return self._abandon_reply()
        heard = turn.heard()
        if heard:
            self.conversation.append(Turn("agent", heard, turn.started_at))
        self._resume = (turn.unheard(), None) if resume and turn.unheard() else None
        self._turn, self.phase, self._silent_since = None, Phase.LISTENING, now
        return [SendClear(), CancelReply(turn.reply_id), TurnUpdate(turn.reply_id, "interrupted", heard)]

    def _abandon_reply(self) -> list[Action]:
        """The caller went on talking before the reply was audible: drop it and reopen their turn."""
        turn = self._turn_or_fail()
        if turn.kind == "reply" and self.conversation and self.conversation[-1].speaker == "caller":
            self._caller.prepend(self.conversation.pop().text)
        self._turn, self.phase = None, Phase.LISTENING
        return [CancelReply(turn.reply_id)]

    def _finish_if_heard(self, now: int) -> list[Action]:
        turn = self._turn
        if turn is None or not turn.complete:
            return []
        heard = turn.heard()
        if heard:
            self.conversation.append(Turn("agent", heard, turn.started_at))
        self._turn, self._echo_tail = None, (heard, now + self.timing.echo_tail_ms)
        actions: list[Action] = [TurnUpdate(turn.reply_id, "finished", heard)]
        if turn.then == "end":
            self.phase = Phase.ENDED
            return [*actions, EndCall(turn.kind)]
        if turn.then == "transfer":
            self.phase = Phase.ENDED
            return [*actions, Transfer(turn.kind)]
        self.phase, self._silent_since = Phase.LISTENING, now
        return actions

    # -- timers ---------------------------------------------------------------------------------------------------

    def _deadlines(self) -> dict[str, int | None]:
        turn, caller, timing = self._turn, self._caller, self.timing
        listening = self.phase is Phase.LISTENING
        talking_since = caller.speech_started_at if caller.in_speech else None
        loud = turn is not None and barge_in.loud_enough(self._speech_db, turn.level_db, timing)
        quiet = listening and not caller.in_speech and not caller.has_words and self._keys.deadline() is None
        return {
            "endpoint": caller.deadline() if listening else None,
            "keys": self._keys.deadline() if self.phase in (Phase.LISTENING, Phase.THINKING) else None,
            "continues": (talking_since + timing.interrupt_min_speech_ms
                          if self.phase is Phase.THINKING and talking_since is not None
                          and turn is not None and turn.kind == "reply" else None),
            "loud": (talking_since + timing.interrupt_min_speech_ms
                     if self.phase is Phase.SPEAKING and loud and talking_since is not None
                     and turn is not None and turn.then == "listen" else None),
            "resume": self._resume[1] if self._resume is not None and listening and not caller.in_speech else None,
            "silence": (self._silent_since + timing.reprompt_ms
                        if quiet and self._silent_since is not None and self._resume is None else None),
            "marks": (turn.plays_until + timing.mark_slack_ms
                      if turn is not None and turn.audio_done and turn.pending and turn.plays_until is not None
                      else None),
        }

    def _due(self, now: int) -> list[Action]:
        """Run the earliest deadline that is due, or return [] when none is."""
        due = [(d, name) for name, d in self._deadlines().items() if d is not None and d <= now]
        if not due:
            return []
        name = min(due)[1]
        if name == "endpoint":
            return self._reply(self._caller.take(), now)
        if name == "keys":
            return self._keys_answer(now)
        if name == "continues":
            return self._abandon_reply()
        if name == "loud":
            return self._interrupt(now, resume=True)
        if name == "resume":
            text = self._resume[0] if self._resume else ""
            self._resume = None
            return self._say(text, "resume", now)
        if name == "silence":
            self._silences += 1
            if self._silences >= 2:
                return self._say(self.lines.goodbye_silence, "silence", now, then="end")
            return self._say(self.lines.reprompt, "reprompt", now)
        self._turn_or_fail().assume_played()
        return self._finish_if_heard(now)

    def _keys_answer(self, now: int) -> list[Action]:
        digits = self._keys.take()
        if self._turn is not None:
            self._abandon_reply()
        last_agent = next((t.text for t in reversed(self.conversation) if t.speaker == "agent"), "")
        if digits == "0" and not asks_for_number(last_agent):
            return self._say(self.lines.transfer, "keypad", now, then="transfer")
        self._caller.reset()
        self._caller_done_at = now
        return self._reply(digits, now)

    def _is_current(self, reply_id: int) -> bool:
        return self._turn is not None and self._turn.reply_id == reply_id

    def _turn_or_fail(self) -> AgentTurn:
        if self._turn is None:
            raise RuntimeError(f"no agent turn in phase {self.phase.value}")
        return self._turn


__all__ = ["Lines", "Phase", "TurnTaker"]
