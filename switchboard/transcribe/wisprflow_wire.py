"""WisprFlow's websocket wire format, sans-I/O: messages out as text, server frames in as typed :class:`Reply`.

From https://api-docs.wisprflow.ai/websocket_api: ``auth`` first, then ``append`` messages of equal-duration 16 kHz
PCM16 packets (base64; ``position`` = index of the first packet in the message; one RMS ``volumes`` entry per
packet), then ``commit`` with ``total_packets``. Where the docs are vague the parser accepts every shape seen
in public clients: the auth ack is ``{"status":"auth"}`` or ``info/session_started``; ``final`` sits at the
top level or under ``body``; an error is ``status:"error"`` or a bare top-level ``error`` (its text taken from
``error``, ``message`` or ``body``). Unknown but well-formed objects parse as ``OTHER`` and are ignored; a frame
that is not a JSON object raises :class:`WireError`, since after it the session cannot be trusted.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import orjson
import pybase64

PROVIDER: Final = "wisprflow"
PRODUCTION_URL: Final = "wss://platform-api.wisprflow.ai/api/v1/dash/ws"
"""The API-key (server) endpoint; the only rate it takes is 16 kHz mono int16 little-endian (``audio.STT_RATE``)."""


class ReplyKind(enum.Enum):
    AUTH = "auth"  # {"status":"auth"} or info/session_started: the session may stream
    INFO = "info"
    TEXT = "text"
    ERROR = "error"
    OTHER = "other"  # a well-formed object we do not know: ignored, as a tolerant client should


@dataclass(frozen=True, slots=True)
class Reply:
    kind: ReplyKind
    text: str = ""
    final: bool = False
    event: str = ""
    language: str | None = None


class WireError(ValueError):
    """A server frame that is not a JSON object: the session cannot be trusted any more."""


def auth_message(token: str, language: Sequence[str], context: Mapping[str, Any] | None = None) -> str:
    """The first message of every session (the docs also call it "start")."""
    message: dict[str, Any] = {"type": "auth", "access_token": token, "language": list(language)}
    if context:
        message["context"] = dict(context)
    return orjson.dumps(message).decode()


def packet_volume(packet: bytes) -> float:
    """RMS of one PCM16LE packet on a 0..1 scale (the ``volumes`` entry the server expects per packet)."""
    samples = np.frombuffer(packet, dtype="<i2").astype(np.float32)
    if not samples.size:
        return 0.0
    return round(min(float(np.sqrt(np.mean(samples * samples))) / 32768.0, 1.0), 4)


def append_message(position: int, packets: Sequence[bytes], packet_s: float) -> str:
    """Raw PCM16LE packets (no RIFF header, labelled ``wav`` as the quickstart does), base64-encoded."""
    body = {
        "packets": [pybase64.b64encode(p).decode("ascii") for p in packets],
        "volumes": [packet_volume(p) for p in packets],
        "packet_duration": packet_s,
        "audio_encoding": "wav",
        "byte_encoding": "base64",
    }
    return orjson.dumps({"type": "append", "position": position, "audio_packets": body}).decode()


def commit_message(total_packets: int) -> str:
    return orjson.dumps({"type": "commit", "total_packets": total_packets}).decode()


def _error_text(message: Mapping[str, Any]) -> str:
    for key in ("error", "message", "body"):
        value = message.get(key)
        if value:
            return value if isinstance(value, str) else orjson.dumps(value).decode()
    return "unspecified error"


def parse_reply(frame: str | bytes) -> Reply:
    """One server frame → a :class:`Reply`; raises :class:`WireError` if it is not a JSON object."""
    try:
        message = orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"malformed frame from server: {str(frame)[:80]!r}") from exc
    if not isinstance(message, dict):
        raise WireError(f"server frame is not an object: {str(frame)[:80]!r}")
    status = message.get("status")
    raw_body = message.get("body")
    body: dict[str, Any] = raw_body if isinstance(raw_body, dict) else {}
    if status == "error" or "error" in message:
        return Reply(ReplyKind.ERROR, text=_error_text(message))
    if status == "auth":
        return Reply(ReplyKind.AUTH)
    if status == "info":
        info = message.get("message")
        event = str(info.get("event", "")) if isinstance(info, dict) else ""
        return Reply(ReplyKind.AUTH if event == "session_started" else ReplyKind.INFO, event=event)
    if status == "text" or "text" in body:
        final = message.get("final") is True or body.get("final") is True
        language = body.get("detected_language")
        return Reply(ReplyKind.TEXT, text=str(body.get("text", "")), final=final,
                     language=language if isinstance(language, str) else None)
    return Reply(ReplyKind.OTHER)


__all__ = [
    "PRODUCTION_URL",
    "PROVIDER",
    "Reply",
    "ReplyKind",
    "WireError",
    "append_message",
    "auth_message",
    "commit_message",
    "packet_volume",
    "parse_reply",
]
