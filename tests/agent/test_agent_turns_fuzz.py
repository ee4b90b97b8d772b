"""Any sequence of events, however stale, repeated or out of order, keeps the core consistent: it never raises,
time-outs are never in the past, and every agent line kept is a prefix of what the agent was saying."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from switchboard.agent.events import (
    Action,
    AudioDone,
    AudioQueued,
    CallStarted,
    Event,
    Heard,
    HungUp,
    Keypad,
    MarkPlayed,
    ReplyDone,
    ReplyText,
    SendMark,
    Speak,
    SpeechStarted,
    SpeechStopped,
)
from switchboard.agent.turns import TurnTaker
from tests.agent.fake_call import LINES

ids = st.integers(min_value=0, max_value=6)
events: st.SearchStrategy[Event] = st.one_of(
    st.just(CallStarted()), st.builds(SpeechStarted, st.none() | st.floats(-60, 0)), st.just(SpeechStopped()),
    st.builds(Heard, st.sampled_from(["", "yeah", "wait stop", "my name is Jane", "hello how can I help",
                                      "the boiler is broken and"]), st.booleans()),
    st.builds(Keypad, st.sampled_from(list("0123456789*#"))),
    st.builds(ReplyText, ids, st.sampled_from(["Hello. ", "What is your name?", ""])),
    st.builds(ReplyDone, ids, st.sampled_from(["listen", "end", "transfer"])),
    st.builds(AudioQueued, ids, st.integers(0, 200), st.integers(0, 2000), st.none() | st.floats(-40, 0)),
    st.builds(AudioDone, ids), st.builds(MarkPlayed, st.sampled_from(["r1.1", "r2.1", "r2.2", "r3.1", "bogus"])),
    st.just(HungUp()),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(events, st.integers(0, 4000)), max_size=60))
def test_random_event_sequences_keep_the_core_consistent(steps: list[tuple[Event, int]]) -> None:
    core = TurnTaker(LINES)
    now, marks = 0, set[str]()
    texts: dict[int, str] = {}
    for event, gap in steps:
        deadline = core.next_deadline()
        if deadline is not None and deadline <= now + gap:
            now = max(now, deadline)
            record(core.on_timer(now), texts, marks)
        now += gap
        if isinstance(event, MarkPlayed) and marks and event.name == "bogus":
            event = MarkPlayed(sorted(marks)[0])
        if isinstance(event, ReplyText):
            texts[event.reply_id] = texts.get(event.reply_id, "") + event.text
        record(core.handle(event, now), texts, marks)
        deadline = core.next_deadline()
        assert deadline is None or deadline > now  # handle() ran everything that was due
        if core.ended:
            assert core.handle(SpeechStarted(0.0), now) == [] and core.next_deadline() is None
    spoken = set(texts.values()) | {LINES.greeting, LINES.reprompt, LINES.goodbye_silence, LINES.transfer}
    for turn in core.conversation:
        if turn.speaker == "agent":
            assert any(text.strip().startswith(turn.text) for text in spoken), turn.text


def record(actions: list[Action], texts: dict[int, str], marks: set[str]) -> None:
    for action in actions:
        if isinstance(action, Speak):
            texts[action.reply_id] = action.text
        elif isinstance(action, SendMark):
            marks.add(action.name)
