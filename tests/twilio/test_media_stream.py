"""The sans-I/O Media Streams parser against golden frames: good, broken and merely odd."""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from switchboard.close_codes import CloseCode
from switchboard.twilio.errors import (
    MAX_CLOSE_REASON_BYTES,
    MediaStreamStateError,
    ProtocolViolation,
    TwilioError,
)
from switchboard.twilio.media_stream import (
    SUPPORTED_FORMAT,
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaStream,
    SkipReason,
    Start,
    Stop,
    StreamEvent,
    StreamState,
)

FRAMES = Path(__file__).parent / "frames"
CALL_LINES = (FRAMES / "call.jsonl").read_text().splitlines()
CALL = [json.loads(line) for line in CALL_LINES]
BROKEN = [json.loads(line) for line in (FRAMES / "broken.jsonl").read_text(encoding="utf-8").splitlines()]
SID = CALL[1]["streamSid"]
CALL_SID = CALL[1]["start"]["callSid"]
PREFIX = {"none": 0, "connected": 1, "start": 2}  # how many good lines to feed first


def stream_after(after: str, **kwargs: Any) -> MediaStream:
    ms = MediaStream(**kwargs)
    for line in CALL_LINES[: PREFIX[after]]:
        ms.receive(line)
    return ms


def msg(event: str, seq: int, **body: Any) -> str:
    return orjson.dumps({"event": event, "sequenceNumber": str(seq), "streamSid": SID, **body}).decode()


def first_media(events: list[StreamEvent]) -> Media:
    assert len(events) == 1 and isinstance(events[0], Media)
    return events[0]


def media(seq: int, payload: bytes = b"\xff" * 160, track: str = "inbound", chunk: int = 1) -> str:
    encoded = base64.b64encode(payload).decode()
    return msg("media", seq, media={"track": track, "chunk": str(chunk), "timestamp": "0", "payload": encoded})


# --- the golden call ---------------------------------------------------------------------------------


def test_golden_call_parses_to_typed_events_in_order() -> None:
    ms = MediaStream(expected_call_sid=CALL_SID)
    events = [event for line in CALL_LINES for event in ms.receive(line)]
    assert [type(e) for e in events] == [Connected, Start] + [Media] * 8 + [Dtmf, Mark, Stop]
    connected, start = events[0], events[1]
    assert connected == Connected("Call", "1.0.0")
    assert isinstance(start, Start)
    assert (start.stream_sid, start.call_sid, start.sequence) == (SID, CALL_SID, 1)
    assert start.account_sid.startswith("AC") and start.tracks == ("inbound", "outbound")
    assert start.media_format == SUPPORTED_FORMAT
    assert dict(start.custom_parameters) == {"token": "tok-123", "caller": "+15551230000"}
    medias = [e for e in events if isinstance(e, Media)]
    for event, raw in zip(medias, CALL[2:10], strict=True):
        assert event.track == raw["media"]["track"]
        assert event.chunk == int(raw["media"]["chunk"]) and event.timestamp_ms == int(raw["media"]["timestamp"])
        assert event.payload == base64.b64decode(raw["media"]["payload"]) and len(event.payload) == 160
        assert event.sequence == int(raw["sequenceNumber"])
    assert events[-3:] == [Dtmf("inbound", "7", 10), Mark("tts-42", 11), Stop(CALL_SID, 12)]
    assert ms.state is StreamState.STOPPED


def test_golden_call_stats() -> None:
    ms = stream_after("none")
    for line in CALL_LINES:
        ms.receive(line)
    stats = ms.stats()
    assert stats.messages == len(CALL_LINES)
    assert stats.media == {"inbound": 4, "outbound": 4}
    assert stats.media_bytes == {"inbound": 640, "outbound": 640}
    assert set(stats.skipped.values()) == {0} and stats.sequence_gaps == stats.lost_messages == 0
    assert not stats.missing_connected
    assert json.loads(json.dumps(stats.as_dict()))["state"] == "stopped"


def test_states_move_through_the_protocol() -> None:
    ms = MediaStream()
    seen = [ms.state]
    for line in CALL_LINES[:3] + CALL_LINES[-1:]:
        ms.receive(line)
        seen.append(ms.state)
    assert seen == [
        StreamState.AWAITING_CONNECTED,
        StreamState.AWAITING_START,
        StreamState.STREAMING,
        StreamState.STREAMING,
        StreamState.STOPPED,
    ]
    assert ms.stream_sid == SID


def test_events_are_frozen() -> None:
    event = first_media(stream_after("start").receive(media(3)))
    with pytest.raises(AttributeError):
        event.payload = b""  # type: ignore[misc]
    assert event == Media("inbound", 1, 0, b"\xff" * 160, 3) and hash(event) == hash(Media(*_fields(event)))


def _fields(event: Media) -> tuple[Any, ...]:
    return (event.track, event.chunk, event.timestamp_ms, event.payload, event.sequence)


# --- broken input closes the stream ------------------------------------------------------------------


def _with_gap(case: dict[str, Any]) -> dict[str, Any]:
    """The same broken media frame after a sequence gap: it takes the checked path, not the fast one."""
    return {**case, "case": case["case"] + "-after-gap", "frame": {**case["frame"], "sequenceNumber": "7"}}


BROKEN_MEDIA = [c for c in BROKEN if c.get("frame", {}).get("event") == "media" and c["after"] == "start"]
BROKEN_CASES = BROKEN + [_with_gap(c) for c in BROKEN_MEDIA if c["frame"].get("sequenceNumber") == "2"]


@pytest.mark.parametrize("case", BROKEN_CASES, ids=[c["case"] for c in BROKEN_CASES])
def test_broken_frame_raises_with_close_code_and_reason(case: dict[str, Any]) -> None:
    ms = stream_after(case["after"])
    text = case["raw"] if "raw" in case else json.dumps(case["frame"])
    with pytest.raises(ProtocolViolation) as info:
        ms.receive(text)
    assert info.value.close_code == case["close_code"]
    assert case["reason"] in info.value.reason
    assert ms.state is StreamState.FAILED


def test_binary_frame_is_unsupported_data() -> None:
    with pytest.raises(ProtocolViolation) as info:
        stream_after("start").receive(CALL_LINES[2].encode())
    assert info.value.close_code == 1003
    assert "binary" in info.value.reason


@pytest.mark.parametrize("text", ["x" * 1001, "é" * 501, json.dumps({"event": "mark", "pad": "é" * 600})])
def test_message_over_the_byte_limit_is_too_big(text: str) -> None:
    ms = stream_after("start", max_message_bytes=1000)
    with pytest.raises(ProtocolViolation) as info:
        ms.receive(text)
    assert info.value.close_code == 1009 and "exceeds 1000" in info.value.reason


def test_message_at_the_byte_limit_is_parsed() -> None:
    ms = stream_after("start", max_message_bytes=1000)
    unknown = {"event": "future", "pad": "é" * 400}  # 800 bytes of é: over len/4, under the limit
    assert ms.receive(json.dumps(unknown, ensure_ascii=False)) == []
    assert ms.stats().skipped[SkipReason.UNKNOWN_EVENT] == 1


@pytest.mark.parametrize(
    ("size", "reason"),
    [(320, None), (321, "of 321 bytes exceeds 320 bytes"), (400, "of 536 base64 characters exceeds 320 bytes")],
)
def test_payload_limit_is_exact(size: int, reason: str | None) -> None:
    ms = stream_after("start", max_payload_bytes=320)
    if reason is None:
        assert first_media(ms.receive(media(2, b"\x01" * size))).payload == b"\x01" * size
        return
    with pytest.raises(ProtocolViolation) as info:
        ms.receive(media(2, b"\x01" * size))
    assert info.value.close_code == 1009 and reason in info.value.reason


def test_start_for_another_call_is_refused() -> None:
    ms = stream_after("connected", expected_call_sid="CA" + "9" * 32)
    with pytest.raises(ProtocolViolation) as info:
        ms.receive(CALL_LINES[1])
    assert info.value.close_code == 1008 and CALL_SID in info.value.reason and "expected" in info.value.reason


def test_a_failed_stream_refuses_everything_after() -> None:
    ms = stream_after("start")
    with pytest.raises(ProtocolViolation):
        ms.receive("{nope")
    with pytest.raises(ProtocolViolation) as info:
        ms.receive(media(3))
    assert info.value.close_code == 1007 and info.value.reason.startswith("stream already failed: malformed JSON")


def test_close_reason_fits_a_close_frame() -> None:
    long = ProtocolViolation("é" * 100, 1007)
    assert len(long.close_reason.encode()) <= MAX_CLOSE_REASON_BYTES and long.close_reason == "é" * 61
    assert ProtocolViolation("short", 1008).close_reason == "short"
    assert isinstance(long, TwilioError) and "1007" in repr(long)


# --- odd but legal: skipped and counted --------------------------------------------------------------


def test_start_without_connected_is_accepted_and_counted() -> None:
    ms = MediaStream()
    assert isinstance(ms.receive(CALL_LINES[1])[0], Start)
    assert first_media(ms.receive(CALL_LINES[2])).sequence == 2
    assert ms.stats().missing_connected


def test_unknown_events_are_skipped_and_keep_the_sequence_in_step() -> None:
    ms = stream_after("start")
    assert ms.receive(msg("transcription", 2, transcription={"text": "hi"})) == []
    assert ms.receive(json.dumps({"event": "future-without-sequence"})) == []
    assert ms.receive(msg("future", 9 * 10**18 + 9)) == []  # 19 digits: not a counter we track
    assert first_media(ms.receive(media(3))).sequence == 3
    assert ms.receive(msg("future", 2)) == []  # an old number on an unknown event moves nothing
    stats = ms.stats()
    assert stats.skipped[SkipReason.UNKNOWN_EVENT] == 4 and stats.sequence_gaps == 0
    assert stats.skipped[SkipReason.NON_INCREASING_SEQUENCE] == 0


def test_unknown_event_before_start_is_skipped() -> None:
    ms = MediaStream()
    assert ms.receive(msg("hello", 99)) == [] and ms.state is StreamState.AWAITING_CONNECTED


def test_everything_after_stop_is_skipped() -> None:
    ms = stream_after("none")
    for line in CALL_LINES:
        ms.receive(line)
    for late in (media(13), CALL_LINES[-1], "{not json", CALL_LINES[1]):
        assert ms.receive(late) == []
    assert ms.stats().skipped[SkipReason.AFTER_STOP] == 4 and ms.state is StreamState.STOPPED


def test_sequence_gap_counts_lost_messages_and_keeps_the_message() -> None:
    ms = stream_after("start")
    assert ms.receive(media(2))
    assert first_media(ms.receive(media(6))).sequence == 6
    assert ms.receive(media(10, chunk=2))
    stats = ms.stats()
    assert (stats.sequence_gaps, stats.lost_messages) == (2, 6)


@pytest.mark.parametrize("seq", [3, 2, 1])
def test_repeated_or_older_sequence_is_skipped(seq: int) -> None:
    ms = stream_after("start")
    ms.receive(media(2))
    ms.receive(media(3))
    assert ms.receive(media(seq)) == []
    assert ms.receive(msg("dtmf", seq, dtmf={"track": "inbound_track", "digit": "1"})) == []
    assert ms.receive(msg("mark", seq, mark={"name": "m"})) == []
    assert ms.receive(msg("stop", seq, stop={"callSid": CALL_SID})) == []
    assert ms.state is StreamState.STREAMING
    stats = ms.stats()
    assert stats.skipped[SkipReason.NON_INCREASING_SEQUENCE] == 4 and stats.media["inbound"] == 2


def test_empty_payload_is_skipped_and_counted() -> None:
    ms = stream_after("start")
    assert ms.receive(media(2, b"")) == []
    assert first_media(ms.receive(media(3))).sequence == 3
    stats = ms.stats()
    assert stats.skipped[SkipReason.EMPTY_PAYLOAD] == 1 and stats.media["inbound"] == 1


def test_stop_before_start_ends_the_stream() -> None:
    ms = stream_after("connected", expected_call_sid=CALL_SID)
    stop = msg("stop", 1, stop={"accountSid": "AC1", "callSid": CALL_SID})
    assert ms.receive(stop) == [Stop(CALL_SID, 1)] and ms.state is StreamState.STOPPED


def test_stop_before_start_for_another_call_is_refused() -> None:
    ms = stream_after("none", expected_call_sid="CA" + "9" * 32)
    with pytest.raises(ProtocolViolation) as info:
        ms.receive(msg("stop", 1, stop={"callSid": CALL_SID}))
    assert info.value.close_code == 1008


def test_counters_as_json_integers_and_numeric_strings_are_accepted() -> None:
    ms = stream_after("connected")
    start = copy.deepcopy(CALL[1])
    start["sequenceNumber"] = 1
    start["start"]["mediaFormat"].update(sampleRate="8000", channels="1")
    del start["start"]["customParameters"], start["start"]["streamSid"]
    event = ms.receive(json.dumps(start))[0]
    assert isinstance(event, Start) and dict(event.custom_parameters) == {} and event.sequence == 1
    raw = {"event": "media", "sequenceNumber": 2, "streamSid": SID,
           "media": {"track": "outbound", "chunk": 7, "timestamp": 140, "payload": "/w=="}}  # fmt: skip
    assert ms.receive(json.dumps(raw)) == [Media("outbound", 7, 140, b"\xff", 2)]


def test_dtmf_track_names_are_normalised() -> None:
    ms = stream_after("start")
    dtmf = ms.receive(msg("dtmf", 2, dtmf={"track": "outbound_track", "digit": "#"}))
    assert dtmf == [Dtmf("outbound", "#", 2)]


# --- outgoing frames (bidirectional streams) ----------------------------------------------------------


def test_outgoing_frames_have_twilios_exact_shapes() -> None:
    ms = stream_after("start")
    sid = f'"streamSid":"{SID}"'
    assert ms.media(b"\xff\x7f") == '{"event":"media",' + sid + ',"media":{"payload":"/38="}}'
    assert ms.mark("tts-42") == '{"event":"mark",' + sid + ',"mark":{"name":"tts-42"}}'
    assert ms.clear() == '{"event":"clear",' + sid + "}"


@pytest.mark.parametrize("after", ["none", "connected", "stopped", "failed"])
def test_outgoing_frames_need_a_started_stream(after: str) -> None:
    ms = stream_after("start" if after in ("stopped", "failed") else after)
    if after == "stopped":
        ms.receive(CALL_LINES[-1])
    if after == "failed":
        with pytest.raises(ProtocolViolation):
            ms.receive(b"\x00")
    with pytest.raises(MediaStreamStateError, match="cannot send media in state"):
        ms.media(b"\xff")
    with pytest.raises(MediaStreamStateError, match="cannot send mark in state"):
        ms.mark("m")
    with pytest.raises(MediaStreamStateError, match="needs STREAMING"):
        ms.clear()


# --- whatever arrives: events or ProtocolViolation, nothing else ---------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def only_events_or_violation(ms: MediaStream, data: str | bytes) -> None:
    try:
        events = ms.receive(data)
    except ProtocolViolation as exc:
        assert exc.close_code in set(CloseCode) and exc.reason
        return
    assert all(isinstance(e, Connected | Start | Media | Dtmf | Mark | Stop) for e in events)


@FUZZ
@given(after=st.sampled_from(list(PREFIX)), text=st.text(max_size=300))
def test_any_text(after: str, text: str) -> None:
    only_events_or_violation(stream_after(after), text)


@FUZZ
@given(data=st.binary(max_size=200))
def test_any_bytes(data: bytes) -> None:
    only_events_or_violation(stream_after("start"), data)
    only_events_or_violation(stream_after("start"), data.decode("utf-8", "replace"))


@FUZZ
@given(after=st.sampled_from(list(PREFIX)), value=JSON)
def test_any_json(after: str, value: Any) -> None:
    only_events_or_violation(stream_after(after), json.dumps(value))


def _mutate(frame: Any, path: list[int], value: Any) -> Any:
    """Replace the value found by walking ``path`` (indices into each container's keys) with ``value``."""
    if not path or not isinstance(frame, dict) or not frame:
        return value
    key = sorted(frame)[path[0] % len(frame)]
    return {**frame, key: _mutate(frame[key], path[1:], value)}


@FUZZ
@given(
    index=st.integers(0, len(CALL) - 1),
    path=st.lists(st.integers(0, 10), min_size=1, max_size=3),
    value=JSON,
    after=st.sampled_from(list(PREFIX)),
)
def test_golden_frames_with_any_field_replaced(index: int, path: list[int], value: Any, after: str) -> None:
    only_events_or_violation(stream_after(after), json.dumps(_mutate(CALL[index], path, value)))


# --- the media fast path agrees with the checked path -------------------------------------------------

_MISSING = object()
COUNTER = st.one_of(
    st.integers(0, 6).map(str),
    st.integers(-1, 6),
    st.sampled_from(["", "1_0", "+1", " 1", "\u0661", "9" * 19, _MISSING, None, 2.0]),
)
MEDIA_BODY = st.fixed_dictionaries(
    {
        "track": st.sampled_from(["inbound", "outbound", "inbound_track", None, _MISSING]),
        "chunk": COUNTER,
        "timestamp": COUNTER,
        "payload": st.one_of(
            st.binary(max_size=12).map(lambda b: base64.b64encode(b).decode()),
            st.sampled_from(["", "%%%%", "/w=", "\u00e9\u00e9\u00e9\u00e9", None, _MISSING]),
        ),
    }
)
MEDIA_FRAME = st.fixed_dictionaries(
    {
        "event": st.just("media"),
        "streamSid": st.sampled_from([SID, SID, "MZ" + "0" * 32, None, _MISSING]),
        "sequenceNumber": COUNTER,
        "media": st.one_of(MEDIA_BODY, MEDIA_BODY, st.sampled_from([None, "x", [1], _MISSING])),
    }
)


def _drop_missing(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_missing(v) for k, v in value.items() if v is not _MISSING}
    return value


def _outcome(ms: MediaStream, run: Any) -> tuple[Any, ...]:
    try:
        result = run()
    except ProtocolViolation as exc:
        return ("violation", exc.close_code, exc.reason)
    stats = ms.stats()
    return ("ok", result, stats.media_bytes, stats.skipped, stats.sequence_gaps, stats.lost_messages)


@FUZZ
@given(frame=MEDIA_FRAME)
def test_media_fast_path_agrees_with_the_checked_path(frame: dict[str, Any]) -> None:
    text = json.dumps(_drop_missing(frame))
    fast, checked = stream_after("start", max_payload_bytes=8), stream_after("start", max_payload_bytes=8)
    via_receive = _outcome(fast, lambda: fast.receive(text))
    via_checked = _outcome(checked, lambda: [e for e in [checked._on_media_checked(orjson.loads(text))] if e])
    assert via_receive == via_checked
