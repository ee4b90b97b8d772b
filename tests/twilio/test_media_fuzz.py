"""Generated fuzz of the Media Streams parser (and the sans-I/O chain behind it): 100 000+ mutated messages, no
crash, every bad stream ends in a ProtocolViolation with a close code and a reason that fits a close frame.
``scripts/fuzz_media_stream.py`` runs the same generator for longer and reports the peak RSS."""

from __future__ import annotations

from collections import Counter

import orjson
import pytest

from switchboard.twilio.errors import ProtocolViolation
from switchboard.twilio.media_stream import MediaStream
from tests.twilio.media_fuzz import Fuzzer, run_stream

MESSAGES = 100_000


def test_100k_mutated_messages_never_crash_the_parser() -> None:
    fuzzer = Fuzzer(seed=20261202)
    sent = 0
    codes: Counter[int | None] = Counter()
    while sent < MESSAGES:
        stream = fuzzer.stream(token="tok")
        outcome = run_stream(stream.frames, token="tok")
        sent += len(stream.frames)
        codes[outcome.code] += 1
    # the generator reaches every kind of ending: clean stop, each violation code, streams left open
    assert {1000, 1003, 1007, 1008, 1009, None} <= set(codes), codes
    assert codes[1000] > 0.15 * sum(codes.values())  # and enough streams get deep enough to end normally


def test_a_failed_parser_refuses_everything_after() -> None:
    fuzzer = Fuzzer(seed=1)
    for _ in range(300):
        stream = fuzzer.stream(mutations=0.5)
        parser = MediaStream()
        failed = False
        for frame in stream.frames:
            try:
                parser.receive(frame)
            except Exception as exc:
                assert type(exc).__name__ == "ProtocolViolation", repr(exc)
                failed = True
            else:
                assert not failed, "a failed parser accepted a message"


def test_reasons_stay_short_whatever_the_peer_sent() -> None:
    """Found by the fuzz (seed 7): a 3000-digit encoding or streamSid was copied whole into the reason, which is
    logged and stored as the call's end reason."""
    huge = "9" * 3000
    for bad in ({"mediaFormat": {"encoding": huge, "sampleRate": 8000, "channels": 1}}, {"streamSid": huge}):
        stream = Fuzzer(seed=3).stream(mutations=0.0)
        start = orjson.loads(stream.frames[1])
        start["start"].update(bad)
        parser = MediaStream()
        parser.receive(stream.frames[0])
        with pytest.raises(ProtocolViolation) as info:
            parser.receive(orjson.dumps(start).decode())
        assert info.value.close_code in (1003, 1007) and len(info.value.reason) < 200, info.value
