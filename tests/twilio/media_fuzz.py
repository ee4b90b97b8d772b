"""A seeded generator of mutated Twilio Media Streams, and a local model of what the server must do with each.

Shared by the parser fuzz test (``test_media_fuzz.py``), the real-server fuzz test and ``scripts/fuzz_media_stream.py``.
Each generated stream starts as a plausible one (connected, start, media on both tracks, dtmf, mark, stop, shaped as
in https://www.twilio.com/docs/voice/media-streams/websocket-messages) and then has some of its messages mutated:
valid JSON with wrong types, huge and negative numbers, missing and extra fields, bad base64 and odd lengths, far
timestamps, wrong order, binary frames, unicode, truncation, deep nesting, oversize.

:func:`run_stream` feeds a stream through the sans-I/O parts the server chains (``MediaStream`` → ``MediaTimeGuard`` →
``JitterBuffer`` → ``TrackAligner``) on a fake clock and returns how it ended; anything but a ``ProtocolViolation``
(or the audio layer's ``TimestampJumpError``, which the server turns into one) escapes as a crash.
"""

from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
import pybase64

from audio.align import TrackAligner
from audio.errors import TimestampJumpError
from audio.jitter import JitterBuffer
from switchboard.close_codes import CloseCode
from switchboard.twilio.errors import MAX_CLOSE_REASON_BYTES, ProtocolViolation
from switchboard.twilio.media_bounds import MediaTimeGuard, MediaTimeLimits
from switchboard.twilio.media_stream import Media, MediaStream, Start, Stop

Frame = str | bytes

ACCOUNT: Final = "AC" + "0" * 32
WEIRD: Final[list[Any]] = [
    None, True, False, 0, -1, 1, 2**31, 2**63, -(2**63), 10**30, -(10**30), 1.5, -0.0, 1e308, "", " ", "-1", "1e400",
    "00", "0x10", " 1", "1 ", "+1", "1.0", "²", "٣", "1" * 19, "9" * 3000, "\u0000", "😀" * 8, "inbound_track",
    "INBOUND", "média", [], {}, [1, 2], {"a": {}}, ["inbound"], [[[[[]]]]], "a" * 70_000,
]
BAD_B64: Final = ["%%%", "AAA", "A", "AAAA=", "AA AA", "AA\nAA", "ÄÄÄÄ", "-_-_", "====", "A" * 20_000, "\u0000AAA",
                  pybase64.b64encode(b"\x00" * 8001).decode(), pybase64.b64encode(b"\xff" * 7).decode(),
                  pybase64.b64encode(b"\xff" * 161).decode()[:-1]]
TEXT_JUNK: Final[list[Frame]] = ["", " ", "null", "[]", "1", '"media"', "{", "}", '{"event":}', "\ud800",
                                 '{"event":"\\ud800"}', "[" * 5000 + "]" * 5000, '{"event":"media","event":"start"}',
                                 b"\x00\x01", b"", b'{"event":"connected","protocol":"Call","version":"1.0.0"}',
                                 "\ufeff{}", "{" * 3000, "x" * 70_000]


@dataclass(slots=True)
class Stream:
    """One generated stream: its frames, and the identities the server expects (for a real-server run)."""

    call_sid: str
    stream_sid: str
    token: str
    frames: list[Frame] = field(default_factory=list)


@dataclass(slots=True)
class Outcome:
    """How a stream ended in the local model: ``code``/``reason`` of the close (None: still open at the end)."""

    messages: int = 0
    events: int = 0
    code: int | None = None
    reason: str = ""
    started: bool = False
    stopped: bool = False


class Fuzzer:
    """Seeded: the same seed gives the same streams."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def sid(self, prefix: str) -> str:
        return f"{prefix}{self.rng.getrandbits(128):032x}"

    def stream(self, *, call_sid: str | None = None, token: str = "tok", media: int = 12,
               mutations: float | None = None) -> Stream:
        """A plausible stream with ``media`` frames per track, then a share ``mutations`` of its messages mutated
        (None: a rate drawn per stream, from a stray bad message to mostly garbage)."""
        rng = self.rng
        if mutations is None:
            mutations = rng.choice((0.0, 0.005, 0.02, 0.05, 0.15, 0.5))
        out = Stream(call_sid or self.sid("CA"), self.sid("MZ"), token)
        messages: list[dict[str, Any]] = [{"event": "connected", "protocol": "Call", "version": "1.0.0"}]
        messages.append({"event": "start", "start": {
            "accountSid": ACCOUNT, "streamSid": out.stream_sid, "callSid": out.call_sid,
            "tracks": ["inbound", "outbound"], "customParameters": {"token": token},
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})
        for i in range(media):
            for track in ("inbound", "outbound"):
                size = rng.choice((160, 160, 160, 80, 320, 7, 1))
                payload = pybase64.b64encode(rng.randbytes(size)).decode()
                messages.append({"event": "media", "media": {"track": track, "chunk": str(i + 1),
                                                             "timestamp": str(i * 20), "payload": payload}})
            if rng.random() < 0.05:
                messages.append({"event": "dtmf", "dtmf": {"track": "inbound_track", "digit": str(rng.randint(0, 9))}})
            if rng.random() < 0.05:
                messages.append({"event": "mark", "mark": {"name": f"m{i}"}})
        messages.append({"event": "stop", "stop": {"accountSid": ACCOUNT, "callSid": out.call_sid}})
        for seq, msg in enumerate(messages[1:], start=1):
            msg["sequenceNumber"] = str(seq)
            msg["streamSid"] = out.stream_sid
        self._reorder(messages, mutations)
        for msg in messages:
            out.frames.append(self._mutate(msg) if rng.random() < mutations else orjson.dumps(msg).decode())
        return out

    def _reorder(self, messages: list[dict[str, Any]], rate: float) -> None:
        rng = self.rng
        if rng.random() < rate:  # wrong order: swap, duplicate or move a message
            i, j = rng.randrange(len(messages)), rng.randrange(len(messages))
            kind = rng.randrange(3)
            if kind == 0:
                messages[i], messages[j] = messages[j], messages[i]
            elif kind == 1:
                messages.insert(j, copy.deepcopy(messages[i]))
            else:
                messages.insert(j, messages.pop(i))

    def _mutate(self, msg: dict[str, Any]) -> Frame:
        rng = self.rng
        kind = rng.randrange(10)
        msg = copy.deepcopy(msg)
        if kind == 0:  # drop a field at any depth
            target, key = self._pick(msg)
            if key is not None:
                del target[key]
        elif kind in (1, 2):  # a field of the wrong type or an absurd value
            target, key = self._pick(msg)
            if key is not None:
                target[key] = rng.choice(WEIRD)
        elif kind == 3:  # numbers: huge, negative, far timestamps, sequence steps back
            body = msg.get("media") if isinstance(msg.get("media"), dict) else msg
            key = rng.choice(("timestamp", "chunk", "sequenceNumber"))
            value = rng.choice((-1, 10**12, 10**17, 10**18, 2**64, 0, 999_999_999, -(10**12)))
            (body if key != "sequenceNumber" else msg)[key] = rng.choice((value, str(value)))
        elif kind == 4 and isinstance(msg.get("media"), dict):  # bad base64, odd lengths
            msg["media"]["payload"] = rng.choice(BAD_B64)
        elif kind == 5:  # an extra field, an unknown or missing event name
            msg[rng.choice(("extra", "event", "media", "start", "stop"))] = rng.choice([*WEIRD, "unknown", "media"])
        elif kind == 6:
            return rng.choice(TEXT_JUNK)
        text = json.dumps(msg, ensure_ascii=False, separators=(",", ":"))  # orjson refuses integers past 64 bits
        if kind == 7:  # truncated
            return text[: rng.randrange(len(text) + 1)]
        if kind == 8:  # one character replaced by anything, surrogates included
            i = rng.randrange(len(text))
            return text[:i] + chr(rng.choice((0, 0x22, 0x5C, 0x7B, 0xD800, 0xFFFF, 0x1F600, rng.randrange(0x110000)))) \
                + text[i + 1:]
        if kind == 9:  # the same message as a binary frame
            return text.encode()
        return text

    def _pick(self, msg: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """A random (dict, key) somewhere in the message."""
        places: list[tuple[dict[str, Any], str]] = []
        stack: list[dict[str, Any]] = [msg]
        while stack:
            node = stack.pop()
            for key, value in node.items():
                places.append((node, key))
                if isinstance(value, dict):
                    stack.append(value)
        return self.rng.choice(places) if places else (msg, None)


DEFAULT_LIMITS: Final = MediaTimeLimits()


def run_stream(frames: list[Frame], *, limits: MediaTimeLimits = DEFAULT_LIMITS, token: str | None = None,
               step_s: float = 0.0001) -> Outcome:
    """Feed a stream to the local chain on a fake clock (``step_s`` per message); return how it ended.

    ``token``: the start's ``customParameters.token`` must equal it (as the server checks), else a 1008 close.
    Raises AssertionError if a close reason breaks the close-frame limit; any other exception is a crash.
    """
    parser = MediaStream()
    outcome = Outcome()
    guard: MediaTimeGuard | None = None
    jitter = {"inbound": JitterBuffer(), "outbound": JitterBuffer()}
    aligner = TrackAligner()
    now = 0.0
    for frame in frames:
        outcome.messages += 1
        now += step_s
        try:
            events = parser.receive(frame)
            for event in events:
                outcome.events += 1
                if isinstance(event, Start):
                    if token is not None and event.custom_parameters.get("token") != token:
                        return _closed(outcome, CloseCode.POLICY_VIOLATION, "invalid stream token for this call")
                    outcome.started = True
                    guard = MediaTimeGuard(limits, now)
                elif isinstance(event, Media):
                    assert guard is not None and event.timestamp_ms >= 0 and len(event.payload) <= 8000
                    guard.admit(event.track, event.timestamp_ms, now)  # the wait is the server's business
                    try:
                        for out in jitter[event.track].push(event.chunk, event.timestamp_ms, event.payload):
                            if not out.filled:
                                aligner.push(event.track, out.timestamp_ms, out.payload, out.offset)
                    except TimestampJumpError as exc:
                        raise ProtocolViolation(str(exc), CloseCode.POLICY_VIOLATION) from exc
                elif isinstance(event, Stop):
                    outcome.stopped = True
                    if outcome.started:  # the server ends the call and closes; before start it waits on
                        return _closed(outcome, 1000, "")
        except ProtocolViolation as exc:
            assert exc.close_code in set(CloseCode), exc
            assert exc.reason and len(exc.close_reason.encode()) <= MAX_CLOSE_REASON_BYTES, exc
            assert len(exc.reason) <= 600, f"reason of {len(exc.reason)} characters"
            return _closed(outcome, exc.close_code, exc.close_reason)
    return outcome


def _closed(outcome: Outcome, code: int, reason: str) -> Outcome:
    outcome.code, outcome.reason = code, reason
    return outcome
