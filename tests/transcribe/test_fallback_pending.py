"""Speech pushed in one burst beyond what a result answers is still watched for a stall.

A server that stalled reads many frames at once; if the provider answers the first utterance of the burst and
then hangs, the rest of the burst must still count as unanswered speech.
"""

from __future__ import annotations

import asyncio

import numpy as np

from switchboard.transcribe.scripted import Fault, FaultKind, ScriptedTranscriber, encode_words
from tests.transcribe.test_fallback import EXPECTED, RATE, Call, FakeClock, _chunks, _fallback, _speech, _words


async def test_a_burst_answered_only_in_part_is_still_watched() -> None:
    clock = FakeClock()
    primary = ScriptedTranscriber("primary", faults=[Fault(FaultKind.STALL, after_ms=600)])  # answers w0–w4 only
    backup = ScriptedTranscriber("backup")
    stream = await _fallback(primary, backup, clock=clock, stall_timeout_s=1.0).open("inbound", RATE)
    call = Call(stream, clock)
    for pts, pcm in _chunks(_speech()):  # every frame at once, before the primary's first final is read
        stream.push(pcm, pts)
    await call.until(lambda: len(call.events) == 1)  # the primary's only final
    assert call.events[0].provider == "primary" and stream.provider == "primary"
    await call.until(lambda: stream.provider == "backup", step_s=0.05)  # no more speech: only the burst's rest
    events = await call.finish()
    assert _words(events) == EXPECTED
    assert [s.reason.value for s in call.switches] == ["stall"]


async def test_a_trailing_breath_after_the_last_word_is_not_a_stall() -> None:
    clock = FakeClock()
    primary, backup = ScriptedTranscriber("primary"), ScriptedTranscriber("backup")
    stream = await _fallback(primary, backup, clock=clock, stall_timeout_s=1.0).open("inbound", RATE)
    call = Call(stream, clock)
    words = encode_words([0, 1, 2, None], RATE)
    breath = np.full(RATE // 2, 400, np.int16)  # 0.5 s above the speech level, no word in it
    for pts, pcm in _chunks(np.concatenate([words, breath])):
        stream.push(pcm, pts)
    await call.until(lambda: len(call.events) == 1)
    for _ in range(60):  # 3 s of fake time with nothing new: the breath is within the answer slack
        clock.now += 0.05
        await asyncio.sleep(0.001)
    assert stream.provider == "primary" and call.switches == []
    assert _words(await call.finish()) == ["w0", "w1", "w2"]
