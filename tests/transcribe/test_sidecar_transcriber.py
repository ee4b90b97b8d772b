"""SidecarTranscriber: a fixture's words come out as the pushed audio's media time reaches them, in order."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from switchboard.transcribe.base import TranscriptEvent
from switchboard.transcribe.errors import StreamClosedError
from switchboard.transcribe.sidecar import SidecarStream, SidecarTranscriber, read_sidecar

RATE = 16_000
LEEDS = Path(__file__).resolve().parents[2] / "fixtures" / "tts_leak_emergency_leeds.json"


def sidecar(tmp_path: Path) -> Path:
    path = tmp_path / "call.json"
    path.write_text(json.dumps({"tracks": {"inbound": {"utterances": [
        {"start_ms": 100, "end_ms": 900, "text": "Hello there.",
         "words": [{"w": "Hello", "start_ms": 100, "end_ms": 500}, {"w": "there", "start_ms": 500, "end_ms": 900}]},
        {"start_ms": 2000, "end_ms": 2400, "text": "Bye.", "words": [{"w": "Bye", "start_ms": 2000, "end_ms": 2400}]},
    ]}}}))
    return path


def ms(n: int) -> np.ndarray:
    return np.zeros(n * RATE // 1000, dtype=np.int16)


def drain(stream: SidecarStream) -> list[tuple[str, bool, int, int]]:
    out = []
    while stream._ready:  # what the iterator would yield now, without awaiting
        e: TranscriptEvent = stream._ready.popleft()
        out.append((e.text, e.is_final, e.start_ms, e.end_ms))
    return out


async def test_events_follow_the_media_time_of_the_audio_pushed(tmp_path: Path) -> None:
    stream = await SidecarTranscriber(sidecar(tmp_path)).open("inbound", RATE)
    stream.push(ms(400), 0)
    assert drain(stream) == []  # "Hello" ends at 500 ms
    stream.push(ms(200), 400)
    assert drain(stream) == [("Hello", False, 100, 500)]
    stream.push(ms(1000), 600)
    assert drain(stream) == [("Hello there", False, 100, 900), ("Hello there.", True, 100, 900)]
    stream.push(ms(100), 5000)  # a jump (a gap in the media): everything before it is heard
    assert drain(stream) == [("Bye", False, 2000, 2400), ("Bye.", True, 2000, 2400)]


async def test_the_iterator_ends_at_end_and_what_was_not_reached_is_not_heard(tmp_path: Path) -> None:
    stream = await SidecarTranscriber(sidecar(tmp_path)).open("inbound", RATE)
    stream.push(ms(1000), 0)
    stream.end()
    texts = [(e.text, e.is_final) async for e in stream]
    assert texts == [("Hello", False), ("Hello there", False), ("Hello there.", True)]
    with pytest.raises(StreamClosedError):
        stream.push(ms(20), 1000)


async def test_a_track_the_sidecar_does_not_have_says_nothing(tmp_path: Path) -> None:
    stream = await SidecarTranscriber(sidecar(tmp_path)).open("outbound", RATE)
    stream.push(ms(5000), 0)
    stream.end()
    assert [e async for e in stream] == []


def test_the_fixtures_sidecars_read_and_a_malformed_one_is_named(tmp_path: Path) -> None:
    lines = read_sidecar(LEEDS)
    assert len(lines["inbound"]) == 4 and lines["inbound"][0].text.startswith("Hi, um")
    bad = tmp_path / "bad.json"
    bad.write_text('{"tracks": {"inbound": {"utterances": [{"text": "no times"}]}}}')
    with pytest.raises(ValueError, match=r"bad\.json"):
        read_sidecar(bad)
