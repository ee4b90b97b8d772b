"""The turn-taking core on a fake clock: greeting, endpointing, replies abandoned when the caller goes on,
barge-in (words, level, echo, backchannels), false interruptions, silence, keypad, lost marks, hang-up."""

from __future__ import annotations

import pytest

from switchboard.agent.events import (
    CallStarted,
    CancelReply,
    EndCall,
    Heard,
    HungUp,
    Keypad,
    MarkPlayed,
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
from switchboard.agent.timing import TurnTiming
from switchboard.agent.turns import Phase, TurnTaker
from tests.agent.fake_call import LINES, MS_PER_CHAR, FakeCall

LONG = "Thanks. So that I can book the engineer, could you tell me the full address of the property please?"


def greeted() -> tuple[FakeCall, int]:
    """A call whose greeting has been heard in full; returns it and the time the greeting ended."""
    call = FakeCall()
    call.send(CallStarted())
    call.run_until(len(LINES.greeting) * MS_PER_CHAR + 1)
    assert call.core.phase is Phase.LISTENING
    return call, len(LINES.greeting) * MS_PER_CHAR


def caller_says(call: FakeCall, start: int, stop: int, text: str, final_at: int | None = None,
                level: float | None = -20.0) -> None:
    call.at(start, SpeechStarted(level))
    call.at(stop, SpeechStopped())
    call.at(final_at if final_at is not None else stop + 150, Heard(text, final=True))


def test_greeting_is_spoken_marked_and_heard() -> None:
    call, end = greeted()
    assert call.first(Speak) == (0, Speak(1, LINES.greeting))
    assert len(call.actions(SendMark)) == 4  # 36 characters in chunks of 10
    assert call.updates("started")[0].latency_ms == 0
    finished = call.updates("finished")
    assert finished[0].heard == LINES.greeting
    assert [(t.speaker, t.text) for t in call.core.conversation] == [("agent", LINES.greeting)]
    assert call.actions(TurnUpdate)[-1][0] == end


def test_reply_starts_min_endpoint_after_speech_stops_when_a_final_is_in() -> None:
    call, end = greeted()
    caller_says(call, end + 1000, end + 2000, "I've got a leak in the kitchen.")
    call.run_until(end + 5000)
    when, action = call.first(StartReply)
    assert action == StartReply(2, "I've got a leak in the kitchen.")
    assert when == end + 2000 + 500


def test_unfinished_words_wait_up_to_max_endpoint() -> None:
    call, end = greeted()
    caller_says(call, end + 1000, end + 2000, "the address is 12 High Street and")
    call.run_until(end + 4900)
    assert not call.actions(StartReply)
    call.run_until(end + 6000)
    assert call.first(StartReply)[0] == end + 2000 + 3000


def test_speech_resuming_within_the_wait_joins_one_turn() -> None:
    call, end = greeted()
    caller_says(call, end + 1000, end + 2000, "the address is 12 High Street and")
    caller_says(call, end + 3000, end + 4000, "the postcode is LS6 2AB.")
    call.run_until(end + 9000)
    assert [a for _, a in call.actions(StartReply)] == [
        StartReply(2, "the address is 12 High Street and the postcode is LS6 2AB.")]
    assert call.first(StartReply)[0] == end + 4500


def test_interim_without_a_final_is_committed_at_max_endpoint() -> None:
    call, end = greeted()
    call.at(end + 1000, SpeechStarted(-20))
    call.at(end + 1500, Heard("my boiler has", final=False))
    call.at(end + 2000, SpeechStopped())
    call.run_until(end + 9000)
    assert call.first(StartReply) == (end + 5000, StartReply(2, "my boiler has"))


def test_a_late_final_commits_when_it_arrives() -> None:
    call, end = greeted()
    caller_says(call, end + 1000, end + 2000, "The boiler is broken.", final_at=end + 2900)
    call.run_until(end + 9000)
    assert call.first(StartReply)[0] == end + 2900


def test_without_vad_the_final_arrival_stands_for_the_end_of_speech() -> None:
    call, end = greeted()
    call.at(end + 1000, Heard("Hello, is that the repair line?", final=True))
    call.run_until(end + 9000)
    assert call.first(StartReply)[0] == end + 1500


def test_caller_going_on_while_the_reply_is_prepared_cancels_it_and_joins_the_turn() -> None:
    call, end = greeted()
    caller_says(call, end + 1000, end + 2000, "I've got a leak.")
    call.at(end + 2700, SpeechStarted(-20))
    call.at(end + 2800, Heard("in the kitchen", final=False))
    call.at(end + 3200, SpeechStopped())
    call.at(end + 3300, Heard("in the kitchen ceiling.", final=True))
    call.run_until(end + 9000)
    assert [a for _, a in call.actions(StartReply)] == [StartReply(2, "I've got a leak."),
                                                         StartReply(3, "I've got a leak. in the kitchen ceiling.")]
    assert call.first(CancelReply) == (end + 2800, CancelReply(2))
    assert [t.text for t in call.core.conversation if t.speaker == "caller"] == [
        "I've got a leak. in the kitchen ceiling."]


def speaking_long_reply(call: FakeCall, end: int) -> int:
    """The caller speaks, the agent answers with LONG; returns when the reply's audio starts."""
    caller_says(call, end + 1000, end + 2000, "I've got a leak.")
    call.run_until(end + 2500)
    call.reply(2, LONG)
    assert call.core.phase is Phase.SPEAKING
    return call.now


def test_caller_words_cut_the_agent_and_only_the_heard_part_stays() -> None:
    call, end = greeted()
    start = speaking_long_reply(call, end)
    # 2.5 chunks played (1500 ms at 60 ms/char = 25 characters): marks for 10 and 20 characters came back.
    call.at(start + 1400, SpeechStarted(-40))
    call.at(start + 1500, Heard("no hang on it's", final=False))
    call.run_until(start + 1500)
    assert [type(a) for _, a in call.log[-3:]] == [SendClear, CancelReply, TurnUpdate]
    interrupted = call.updates("interrupted")[0]
    assert interrupted.heard == "Thanks. So that I"  # the 20-character mark, "…I ca", cut back to a whole word
    assert call.core.conversation[-1].text == "Thanks. So that I"
    assert call.core.phase is Phase.LISTENING
    call.at(start + 2000, SpeechStopped())
    call.at(start + 2100, Heard("no hang on, it's not a leak, it's the boiler.", final=True))
    call.run_until(start + 5000)
    assert call.actions(StartReply)[-1][1] == StartReply(3, "no hang on, it's not a leak, it's the boiler.")


def test_echo_of_the_agent_on_the_caller_track_does_not_interrupt() -> None:
    call, end = greeted()
    start = speaking_long_reply(call, end)
    # The agent's own words come back 20 dB down, recognised loosely ("engineers" for "engineer").
    call.at(start + 500, SpeechStarted(-38.0))
    call.at(start + 900, Heard("thanks so that i can", final=False))
    call.at(start + 2500, Heard("thanks so that i can book the engineers could you", final=False))
    call.at(start + 4000, Heard("tell me the full address", final=True))
    call.at(start + 5000, SpeechStopped())
    call.run_until(start + len(LONG) * MS_PER_CHAR + 10)
    assert not call.actions(SendClear)
    assert call.updates("finished")[-1].heard == LONG
    assert call.core.conversation[-1].text == LONG
    assert len(call.actions(StartReply)) == 1  # the echo did not become a caller turn


@pytest.mark.parametrize("text", ["yeah", "mm okay", "right yeah sure"])
def test_backchannels_do_not_interrupt(text: str) -> None:
    call, end = greeted()
    start = speaking_long_reply(call, end)
    call.at(start + 500, Heard(text, final=True))
    call.run_until(start + 3000)
    assert not call.actions(SendClear)


def test_one_stop_word_of_the_callers_own_interrupts() -> None:
    call, end = greeted()
    start = speaking_long_reply(call, end)
    call.at(start + 500, Heard("wait", final=False))
    call.run_until(start + 600)
    assert call.first(SendClear)[0] == start + 500


def test_loud_speech_interrupts_after_the_minimum_and_a_false_interruption_resumes() -> None:
    call, end = greeted()
    start = speaking_long_reply(call, end)
    call.at(start + 1000, SpeechStarted(-15.0))  # louder than the agent (-18 dBFS) minus the 12 dB margin
    call.run_until(start + 1299)
    assert not call.actions(SendClear)
    call.run_until(start + 1300)
    assert call.first(SendClear)[0] == start + 1300
    heard = call.updates("interrupted")[0].heard
    assert heard == "Thanks. So that I"  # the mark at 20 characters (1200 ms) came back, the next (1800 ms) not
    # A cough: no words follow, so 1.5 s after it ends the agent says the rest again.
    call.at(start + 1600, SpeechStopped())
    call.run_until(start + 3099)
    assert len(call.actions(Speak)) == 1
    call.run_until(start + 3100)
    assert call.actions(Speak)[-1] == (start + 3100, Speak(3, LONG[len(heard):].strip()))


def test_speech_at_echo_level_never_interrupts_without_words() -> None:
    call, end = greeted()
    start = speaking_long_reply(call, end)
    call.at(start + 200, SpeechStarted(-31.0))  # -18 - 12 = -30 is the bar
    call.run_until(start + 4000)
    assert not call.actions(SendClear)


def test_without_levels_speech_alone_never_interrupts() -> None:
    call = FakeCall(agent_level_db=None)
    call.send(CallStarted())
    call.at(300, SpeechStarted(0.0))
    call.run_until(2000)
    assert not call.actions(SendClear)


def test_silence_reprompts_then_ends_politely() -> None:
    call, end = greeted()
    call.run_until(end + 7999)
    assert len(call.actions(Speak)) == 1
    call.run_until(end + 8000)
    assert call.actions(Speak)[-1] == (end + 8000, Speak(2, LINES.reprompt))
    reprompt_end = end + 8000 + len(LINES.reprompt) * MS_PER_CHAR
    call.run_until(reprompt_end + 8000)
    assert call.actions(Speak)[-1] == (reprompt_end + 8000, Speak(3, LINES.goodbye_silence))
    assert call.ended() is None  # not before the goodbye has been heard
    call.run_until(reprompt_end + 8000 + len(LINES.goodbye_silence) * MS_PER_CHAR)
    assert isinstance(call.ended(), EndCall)
    assert call.core.phase is Phase.ENDED


def test_words_after_a_reprompt_start_the_silence_count_over() -> None:
    call, end = greeted()
    call.auto_reply[3] = ("Thanks, and your name?", "listen")
    call.run_until(end + 8000 + len(LINES.reprompt) * MS_PER_CHAR)
    caller_says(call, call.now + 500, call.now + 1500, "Sorry, yes, I'm here.")
    call.run_until(call.now + 40_000)
    speaks = [a.text for _, a in call.actions(Speak) if isinstance(a, Speak)]
    assert speaks == [LINES.greeting, LINES.reprompt, LINES.reprompt, LINES.goodbye_silence]


def test_keypad_zero_asks_for_a_person_even_mid_sentence() -> None:
    call, end = greeted()
    start = speaking_long_reply(call, end)
    call.at(start + 700, Keypad("0"))
    call.run_until(start + 700)
    assert call.first(SendClear)[0] == start + 700
    call.run_until(start + 700 + 3000)
    assert call.actions(Speak)[-1][1] == Speak(3, LINES.transfer)
    call.run_until(call.now + len(LINES.transfer) * MS_PER_CHAR)
    assert call.ended() == Transfer("keypad")


def test_keypad_digits_answer_a_number_question() -> None:
    call, end = greeted()
    caller_says(call, end + 1000, end + 2000, "It's Jane.")
    call.run_until(end + 2500)
    question = "Thanks Jane. What's the best number to call you back on?"
    call.reply(2, question)
    call.run_until(call.now + len(question) * MS_PER_CHAR)
    for offset, key in enumerate("07700900123#"):
        call.at(call.now + 200 * (offset + 1), Keypad(key))
    call.run_until(call.now + 5000)
    assert call.actions(StartReply)[-1][1] == StartReply(3, "07700900123")
    assert not call.actions(Transfer)


def test_keypad_digits_without_hash_end_after_the_gap() -> None:
    call, end = greeted()
    call.at(end + 500, Keypad("4"))
    call.at(end + 700, Keypad("2"))
    call.run_until(end + 3699)
    assert not call.actions(StartReply)
    call.run_until(end + 3700)
    assert call.first(StartReply) == (end + 3700, StartReply(2, "42"))


def test_a_lost_mark_does_not_hang_the_conversation() -> None:
    core = TurnTaker(LINES, TurnTiming(mark_slack_ms=1000))
    (speak,) = [a for a in core.handle(CallStarted(), 0) if isinstance(a, Speak)]
    from switchboard.agent.events import AudioDone, AudioQueued
    core.handle(AudioQueued(speak.reply_id, len(speak.text), 2000, -18.0), 0)
    core.handle(AudioDone(speak.reply_id), 0)  # the mark is never echoed
    assert core.next_deadline() == 3000
    assert [a.status for a in core.on_timer(3000) if isinstance(a, TurnUpdate)] == ["finished"]
    assert core.phase is Phase.LISTENING


def test_events_for_a_cancelled_reply_are_ignored() -> None:
    call, end = greeted()
    start = speaking_long_reply(call, end)
    call.at(start + 500, Heard("wait", final=False))
    call.run_until(start + 500)
    assert call.core.handle(ReplyText(2, " more words"), call.now) == []
    assert call.core.handle(MarkPlayed("r2.5"), call.now) == []
    assert call.core.current_reply is None


def test_hang_up_cancels_the_reply_and_ends_everything() -> None:
    call, end = greeted()
    caller_says(call, end + 1000, end + 2000, "I've got a leak.")
    call.run_until(end + 2500)
    assert call.send(HungUp()) == [CancelReply(2)]
    assert call.core.phase is Phase.ENDED
    assert call.core.handle(CallStarted(), call.now) == []
    assert call.core.next_deadline() is None


def test_a_goodbye_is_not_interrupted() -> None:
    call, end = greeted()
    caller_says(call, end + 1000, end + 2000, "That's all, thanks.")
    call.run_until(end + 2500)
    call.reply(2, "Thanks for calling, goodbye.", then="end")
    call.at(call.now + 300, Heard("oh and one more thing", final=False))
    call.run_until(call.now + 5000)
    assert not call.actions(SendClear)
    assert call.ended() == EndCall("reply")


def test_voice_to_voice_latency_is_reported_from_the_end_of_speech() -> None:
    call, end = greeted()
    caller_says(call, end + 1000, end + 2000, "I've got a leak.")
    call.run_until(end + 2500)
    call.run_until(end + 2800)  # the model and the voice take 300 ms
    call.reply(2, "Oh dear.")
    assert call.updates("started")[-1].latency_ms == 800


def test_the_echo_of_the_agents_last_words_after_its_turn_is_not_a_caller_turn() -> None:
    call, end = greeted()
    call.at(end + 300, Heard("how can I help", final=True))  # the greeting's tail, recognised late
    call.run_until(end + 3000)
    assert not call.actions(StartReply)


def test_a_yes_right_after_the_agent_finishes_is_an_answer() -> None:
    call, end = greeted()
    call.at(end + 300, Heard("yes", final=True))
    call.at(end + 400, Heard("help", final=True))  # one word of the agent's own: not enough to call it echo
    call.run_until(end + 3000)
    assert call.first(StartReply)[1] == StartReply(2, "yes help")


def test_the_agents_words_long_after_its_turn_are_the_callers() -> None:
    call, end = greeted()
    call.at(end + 2000, Heard("how can I help", final=True))
    call.run_until(end + 5000)
    assert call.first(StartReply)[1] == StartReply(2, "how can I help")
