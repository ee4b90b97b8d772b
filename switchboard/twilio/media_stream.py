"""Sans-I/O Twilio Media Streams: text frames in, typed events out; outgoing frames built as text.

Nothing here does I/O or awaits: the WebSocket handler feeds ``receive()`` and acts on the events, so
the protocol is tested without sockets (websockets' ``protocol.py`` and h11 in spirit). Message shapes
follow Twilio's "Media Streams - WebSocket Messages" (protocols/twilio.md §e).

Policy: bad input gets a clear error, but nothing Twilio itself could legitimately send closes the
stream. So malformed or ill-ordered messages raise :class:`ProtocolViolation` (close the socket with its
``close_code``), while oddities Twilio can produce (unknown event types, messages after ``stop``, a
missing ``connected``, lost or repeated sequence numbers, empty payloads) are skipped and counted in
:meth:`MediaStream.stats`. After a violation the parser is FAILED and refuses further input.

``receive()`` runs for every 20 ms frame of every track, so the media path is written for speed: orjson
and pybase64, exact-type checks, no f-strings unless raising, and counters parsed inline.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeGuard

import orjson
import pybase64

from switchboard.close_codes import CloseCode
from switchboard.twilio.errors import MediaStreamStateError, ProtocolViolation
from switchboard.twilio.events import (
    SUPPORTED_FORMAT,
    Connected,
    Dtmf,
    Mark,
    Media,
    MediaFormat,
    SkipReason,
    Start,
    Stop,
    StreamEvent,
    StreamState,
    StreamStats,
    Track,
)

_MEDIA_TRACKS: Final[dict[str, Track]] = {"inbound": "inbound", "outbound": "outbound"}
# dtmf messages name the track "inbound_track"; normalised so every event uses the media names.
_DTMF_TRACKS: Final[dict[str, Track]] = {"inbound_track": "inbound", "outbound_track": "outbound"}
_DTMF_TRACKS.update(_MEDIA_TRACKS)
_MAX_DIGITS: Final = 18  # counters fit in int64; also keeps int() away from hostile 64 KB digit strings
_COUNTER_LIMIT: Final = 10**_MAX_DIGITS


# For each state, the events allowed in it and the state each leads to; anything else is an illegal
# move. STOPPED skips every message and FAILED refuses every message before this table is consulted.
_TRANSITIONS: Final[dict[StreamState, dict[str, StreamState]]] = {
    StreamState.AWAITING_CONNECTED: {
        "connected": StreamState.AWAITING_START,
        "start": StreamState.STREAMING,  # connected lost: tolerated and counted
        "stop": StreamState.STOPPED,  # a call can end before its stream starts
    },
    StreamState.AWAITING_START: {"start": StreamState.STREAMING, "stop": StreamState.STOPPED},
    StreamState.STREAMING: {"media": StreamState.STREAMING, "dtmf": StreamState.STREAMING,
                            "mark": StreamState.STREAMING, "stop": StreamState.STOPPED},
    StreamState.STOPPED: {},
    StreamState.FAILED: {},
}  # fmt: skip
_STOPPED: Final = StreamState.STOPPED  # hot-path aliases: one global lookup instead of two
_STREAMING: Final = StreamState.STREAMING

# A frozen dataclass's __init__ sets each field through object.__setattr__, which doubles the cost of
# building a Media; setting the slots through their descriptors yields the same frozen object.
_new_object = object.__new__
_set_track, _set_chunk, _set_timestamp, _set_payload, _set_sequence = (
    Media.__dict__[name].__set__ for name in ("track", "chunk", "timestamp_ms", "payload", "sequence")
)


def _new_media(track: Track, chunk: int, timestamp_ms: int, payload: bytes, sequence: int) -> Media:
    media: Media = _new_object(Media)
    _set_track(media, track)
    _set_chunk(media, chunk)
    _set_timestamp(media, timestamp_ms)
    _set_payload(media, payload)
    _set_sequence(media, sequence)
    return media


def _invalid(reason: str) -> ProtocolViolation:
    return ProtocolViolation(reason, CloseCode.INVALID_DATA)


def _short(value: object) -> str:
    """A few characters of a bad value for an error message. Containers are described, not repr'd: a JSON array
    nested 1000 deep (orjson accepts 1024) would blow Python's recursion limit inside the error path."""
    if isinstance(value, list | dict):
        return f"<{type(value).__name__} of {len(value)}>"
    text = repr(value[:40] if isinstance(value, str) else value)
    return text if len(text) <= 40 else text[:37] + "..."


def _str(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if type(value) is not str:
        raise _invalid(f"{where}.{key} missing or not a string: {_short(value)}")
    return value


def _obj(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = obj.get(key)
    if type(value) is not dict:
        raise _invalid(f"{key} missing or not an object: {_short(value)}")
    return value


def _is_counter(value: object) -> TypeGuard[str]:
    """Is this the usual form of a Twilio counter, a short ASCII decimal string?"""
    return type(value) is str and value.isdigit() and value.isascii() and len(value) <= _MAX_DIGITS


def _uint(value: object, where: str) -> int:
    """Twilio sends counters as ASCII decimal strings ("3"); JSON integers are accepted too."""
    if _is_counter(value):
        return int(value)
    if type(value) is int and 0 <= value < _COUNTER_LIMIT:
        return value
    raise _invalid(f"{where} is not a non-negative integer: {_short(value)}")


def _track(table: Mapping[str, Track], value: object, where: str) -> Track:
    track = table.get(value) if type(value) is str else None
    if track is None:
        raise _invalid(f"unknown track in {where}: {_short(value)}")
    return track


def _media_format(start: dict[str, Any]) -> MediaFormat:
    raw = _obj(start, "mediaFormat")
    found = MediaFormat(
        _str(raw, "encoding", "mediaFormat"),
        _uint(raw.get("sampleRate"), "mediaFormat.sampleRate"),
        _uint(raw.get("channels"), "mediaFormat.channels"),
    )
    if found != SUPPORTED_FORMAT:
        shown = f"{_short(found.encoding)} at {found.sample_rate} Hz, {found.channels} channel(s)"
        reason = f"unsupported media format {shown}; only audio/x-mulaw at 8000 Hz, 1 channel is decoded"
        raise ProtocolViolation(reason, CloseCode.UNSUPPORTED_DATA)
    return SUPPORTED_FORMAT


def _custom_parameters(start: dict[str, Any]) -> Mapping[str, str]:
    raw = start.get("customParameters", {})
    if type(raw) is not dict or any(type(v) is not str for v in raw.values()):
        raise _invalid(f"start.customParameters is not an object of strings: {_short(raw)}")
    return MappingProxyType(raw)


class MediaStream:
    """Parser of one Twilio Media Stream (Twilio → server) and builder of the frames sent back."""

    def __init__(
        self,
        *,
        max_message_bytes: int = 64 * 1024,
        max_payload_bytes: int = 8000,
        expected_call_sid: str | None = None,
    ) -> None:
        self._max_message_bytes = max_message_bytes
        self._max_ascii_safe = max_message_bytes // 4  # a str this short cannot exceed the byte limit
        self._max_payload_bytes = max_payload_bytes
        self._max_payload_b64 = (max_payload_bytes + 2) // 3 * 4
        self._expected_call_sid = expected_call_sid
        self._state = StreamState.AWAITING_CONNECTED
        self._allowed = _TRANSITIONS[self._state]
        self._failure: ProtocolViolation | None = None
        self._stream_sid: str | None = None
        self._call_sid: str | None = None
        self._last_seq: int | None = None
        self._messages = 0
        self._media = dict.fromkeys(_MEDIA_TRACKS, 0)
        self._media_bytes = dict.fromkeys(_MEDIA_TRACKS, 0)
        self._skipped = dict.fromkeys(SkipReason, 0)
        self._gaps = self._lost = 0
        self._missing_connected = False

    @property
    def state(self) -> StreamState:
        return self._state

    @property
    def stream_sid(self) -> str | None:
        """The ``streamSid`` from ``start``; later messages and outgoing frames carry it."""
        return self._stream_sid

    def receive(self, text: str | bytes) -> list[StreamEvent]:
        """Parse one WebSocket frame (``str`` = text frame, ``bytes`` = binary frame) into events.

        Raises :class:`ProtocolViolation` for input no Twilio stream may send; the parser is then FAILED
        and raises again on any further input.
        """
        if self._failure is not None:
            failure = self._failure
            raise ProtocolViolation(f"stream already failed: {failure.reason}", failure.close_code)
        try:
            return self._receive(text)
        except ProtocolViolation as exc:
            self._set_state(StreamState.FAILED)
            self._failure = exc
            raise

    def _set_state(self, state: StreamState) -> None:
        self._state = state
        self._allowed = _TRANSITIONS[state]

    def _receive(self, text: str | bytes) -> list[StreamEvent]:
        self._messages += 1
        if type(text) is not str:  # Twilio itself answers a binary frame with error 31950
            raise ProtocolViolation("binary frame; Media Streams is text only", CloseCode.UNSUPPORTED_DATA)
        if len(text) > self._max_ascii_safe:
            self._check_size(text)
        if self._state is _STOPPED:
            self._skipped[SkipReason.AFTER_STOP] += 1
            return []
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            raise _invalid(f"malformed JSON: {exc}") from exc
        if type(msg) is not dict:
            raise _invalid(f"message is not a JSON object: {_short(msg)}")
        name = msg.get("event")
        if name == "media" and self._state is _STREAMING:  # the hot path: no table lookups
            media = self._on_media(msg)
            return [] if media is None else [media]
        if type(name) is not str:
            raise _invalid(f"event missing or not a string: {_short(name)}")
        handler = _HANDLERS.get(name)
        if handler is None:
            return self._skip_unknown(msg)
        next_state = self._allowed.get(name)
        if next_state is None:
            raise self._illegal(name)
        event = handler(self, msg)
        if event is None:
            return []
        if next_state is not self._state:
            self._set_state(next_state)
        return [event]

    def _check_size(self, text: str) -> None:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self._max_message_bytes:
            raise ProtocolViolation(
                f"message of {size} bytes exceeds {self._max_message_bytes}", CloseCode.MESSAGE_TOO_BIG
            )

    def _illegal(self, name: str) -> ProtocolViolation:
        if name == "start":
            what = "duplicate start"
        elif name == "connected":
            what = "duplicate connected" if self._state is StreamState.AWAITING_START else "connected after start"
        else:
            what = f"{name} before start"
        reason = f"{what} (state {self._state.name}, event {name!r})"
        return ProtocolViolation(reason, CloseCode.POLICY_VIOLATION)

    def _skip_unknown(self, msg: dict[str, Any]) -> list[StreamEvent]:
        """Twilio may add event types: skip them, but keep the shared sequence counter in step."""
        self._skipped[SkipReason.UNKNOWN_EVENT] += 1
        seq, last = msg.get("sequenceNumber"), self._last_seq
        if self._state is _STREAMING and last is not None and _is_counter(seq) and int(seq) > last:
            self._accept_sequence(int(seq))
        return []

    def _accept_sequence(self, seq: int) -> bool:
        """One counter numbers every message of the stream: a jump means lost messages (counted, the
        message is kept); a repeat or a step back is skipped."""
        last = self._last_seq
        if last is None or seq == last + 1:
            self._last_seq = seq
            return True
        if seq <= last:
            self._skipped[SkipReason.NON_INCREASING_SEQUENCE] += 1
            return False
        self._gaps += 1
        self._lost += seq - last - 1
        self._last_seq = seq
        return True

    def _sequence(self, msg: dict[str, Any], where: str) -> int | None:
        """Check ``streamSid`` and ``sequenceNumber``; None means skip this message."""
        self._check_stream_sid(msg.get("streamSid"), where)
        seq = _uint(msg.get("sequenceNumber"), f"{where}.sequenceNumber")
        return seq if self._accept_sequence(seq) else None

    def _check_stream_sid(self, sid: object, where: str) -> None:
        if type(sid) is not str:
            raise _invalid(f"{where}.streamSid missing or not a string: {_short(sid)}")
        if self._stream_sid is not None and sid != self._stream_sid:
            reason = f"{where}.streamSid {_short(sid)} is not this stream's {_short(self._stream_sid)}"
            raise ProtocolViolation(reason, CloseCode.POLICY_VIOLATION)

    def _on_connected(self, msg: dict[str, Any]) -> Connected:
        return Connected(_str(msg, "protocol", "connected"), _str(msg, "version", "connected"))

    def _on_start(self, msg: dict[str, Any]) -> Start:
        stream_sid = _str(msg, "streamSid", "start")
        seq = _uint(msg.get("sequenceNumber"), "start.sequenceNumber")
        body = _obj(msg, "start")
        if body.get("streamSid", stream_sid) != stream_sid:
            raise _invalid(f"start.streamSid {_short(body.get('streamSid'))} differs from {_short(stream_sid)}")
        call_sid = _str(body, "callSid", "start")
        if self._expected_call_sid is not None and call_sid != self._expected_call_sid:
            reason = f"start for call {_short(call_sid)}, expected {_short(self._expected_call_sid)}"
            raise ProtocolViolation(reason, CloseCode.POLICY_VIOLATION)
        tracks = body.get("tracks")
        if type(tracks) is not list or not tracks:
            raise _invalid(f"start.tracks missing, empty or not a list: {_short(tracks)}")
        event = Start(
            stream_sid=stream_sid,
            call_sid=call_sid,
            account_sid=_str(body, "accountSid", "start"),
            tracks=tuple(_track(_MEDIA_TRACKS, t, "start.tracks") for t in tracks),
            media_format=_media_format(body),
            custom_parameters=_custom_parameters(body),
            sequence=seq,
        )
        self._missing_connected = self._state is StreamState.AWAITING_CONNECTED
        self._stream_sid, self._call_sid, self._last_seq = stream_sid, call_sid, seq
        return event

    def _on_media(self, msg: dict[str, Any]) -> Media | None:
        """The common case, inline: fields present, short digit strings, the next sequence number, a
        non-empty payload. Anything else goes to :meth:`_on_media_checked`, which explains or skips it."""
        try:
            body = msg["media"]
            sid, seq, encoded = msg["streamSid"], msg["sequenceNumber"], body["payload"]
            track, chunk, timestamp = body["track"], body["chunk"], body["timestamp"]
        except (KeyError, TypeError):
            return self._on_media_checked(msg)
        if (
            sid != self._stream_sid
            or (track != "inbound" and track != "outbound")
            or type(encoded) is not str
            or not 0 < len(encoded) <= self._max_payload_b64
            or not _is_counter(seq)
            or not _is_counter(chunk)
            or not _is_counter(timestamp)
        ):
            return self._on_media_checked(msg)
        seq = int(seq)
        if seq - 1 != self._last_seq:  # a gap or a repeat: counted by the checked path
            return self._on_media_checked(msg)
        try:
            payload = pybase64.b64decode(encoded, None, True)  # positional: kwargs parsing costs ~0.3 µs
        except ValueError:
            return self._on_media_checked(msg)
        if len(payload) > self._max_payload_bytes:
            return self._on_media_checked(msg)
        self._last_seq = seq
        self._media[track] += 1
        self._media_bytes[track] += len(payload)
        return _new_media(track, int(chunk), int(timestamp), payload, seq)

    def _on_media_checked(self, msg: dict[str, Any]) -> Media | None:
        seq = self._sequence(msg, "media")
        if seq is None:
            return None
        body = _obj(msg, "media")
        track = _track(_MEDIA_TRACKS, body.get("track"), "media")
        chunk = _uint(body.get("chunk"), "media.chunk")
        timestamp = _uint(body.get("timestamp"), "media.timestamp")
        payload = self._payload(body.get("payload"))
        if not payload:
            self._skipped[SkipReason.EMPTY_PAYLOAD] += 1
            return None
        self._media[track] += 1
        self._media_bytes[track] += len(payload)
        return _new_media(track, chunk, timestamp, payload, seq)

    def _payload(self, encoded: object) -> bytes:
        if type(encoded) is not str:
            raise _invalid(f"media.payload missing or not a string: {_short(encoded)}")
        if len(encoded) > self._max_payload_b64:  # refuse before decoding a huge string
            raise self._payload_too_big(f"{len(encoded)} base64 characters")
        try:
            payload = pybase64.b64decode(encoded, validate=True)
        except ValueError as exc:  # binascii.Error, or non-ASCII text
            raise _invalid(f"media.payload is not valid base64: {exc}") from exc
        if len(payload) > self._max_payload_bytes:
            raise self._payload_too_big(f"{len(payload)} bytes")
        return payload

    def _payload_too_big(self, size: str) -> ProtocolViolation:
        reason = f"media payload of {size} exceeds {self._max_payload_bytes} bytes"
        return ProtocolViolation(reason, CloseCode.MESSAGE_TOO_BIG)

    def _on_dtmf(self, msg: dict[str, Any]) -> Dtmf | None:
        seq = self._sequence(msg, "dtmf")
        if seq is None:
            return None
        body = _obj(msg, "dtmf")
        return Dtmf(_track(_DTMF_TRACKS, body.get("track"), "dtmf"), _str(body, "digit", "dtmf"), seq)

    def _on_mark(self, msg: dict[str, Any]) -> Mark | None:
        seq = self._sequence(msg, "mark")
        return None if seq is None else Mark(_str(_obj(msg, "mark"), "name", "mark"), seq)

    def _on_stop(self, msg: dict[str, Any]) -> Stop | None:
        seq = self._sequence(msg, "stop")
        if seq is None:
            return None
        call_sid = _str(_obj(msg, "stop"), "callSid", "stop")
        expected = self._call_sid or self._expected_call_sid
        if expected is not None and call_sid != expected:
            reason = f"stop for call {_short(call_sid)}, expected {_short(expected)}"
            raise ProtocolViolation(reason, CloseCode.POLICY_VIOLATION)
        return Stop(call_sid, seq)

    def stats(self) -> StreamStats:
        return StreamStats(
            state=self._state,
            messages=self._messages,
            media=dict(self._media),
            media_bytes=dict(self._media_bytes),
            skipped={str(k): v for k, v in self._skipped.items()},
            sequence_gaps=self._gaps,
            lost_messages=self._lost,
            missing_connected=self._missing_connected,
        )

    # Outgoing frames, for a bidirectional <Connect><Stream> only (protocols/twilio.md §e, server → Twilio).

    def media(self, payload: bytes) -> str:
        """A ``media`` frame of raw μ-law 8 kHz mono (no header); Twilio queues and plays it in order."""
        encoded = pybase64.b64encode(payload).decode("ascii")
        return self._frame("media", {"media": {"payload": encoded}})

    def mark(self, name: str) -> str:
        """A ``mark`` frame; Twilio echoes it once all audio queued before it has played."""
        return self._frame("mark", {"mark": {"name": name}})

    def clear(self) -> str:
        """A ``clear`` frame: Twilio drops queued audio and echoes every pending mark (barge-in)."""
        return self._frame("clear", {})

    def _frame(self, event: str, body: dict[str, Any]) -> str:
        if self._state is not StreamState.STREAMING:
            raise MediaStreamStateError(f"cannot send {event} in state {self._state.name}; needs STREAMING")
        return orjson.dumps({"event": event, "streamSid": self._stream_sid, **body}).decode()


_HANDLERS: Final[dict[str, Callable[[MediaStream, dict[str, Any]], StreamEvent | None]]] = {
    "connected": MediaStream._on_connected,
    "start": MediaStream._on_start,
    "media": MediaStream._on_media,
    "dtmf": MediaStream._on_dtmf,
    "mark": MediaStream._on_mark,
    "stop": MediaStream._on_stop,
}


__all__ = [
    "SUPPORTED_FORMAT",
    "Connected",
    "Dtmf",
    "Mark",
    "Media",
    "MediaFormat",
    "MediaStream",
    "SkipReason",
    "Start",
    "Stop",
    "StreamEvent",
    "StreamState",
    "StreamStats",
    "Track",
]
