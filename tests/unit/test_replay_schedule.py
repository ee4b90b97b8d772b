"""The fake Twilio's schedule: per-track counters, timestamps, seeded impairments."""

from __future__ import annotations

from pathlib import Path

import pytest

from audio.wav import read_tracks
from switchboard.replay.fixture import Impairments, build_schedule
from switchboard.replay.twilio_fake import ReplayError, new_sid, parse_stream

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "real_beckett_short.wav"


def test_clean_schedule_is_both_tracks_in_time_order() -> None:
    s = build_schedule(FIXTURE)
    inbound, _ = read_tracks(FIXTURE)
    assert s.duration_ms == len(inbound) // 8
    assert s.sent["inbound"] == s.sent["outbound"] == -(-len(inbound) // 160)
    per_track = [f for f in s.frames if f.track == "inbound"]
    assert [f.chunk for f in per_track] == list(range(1, len(per_track) + 1))
    assert [f.timestamp_ms for f in per_track] == [20 * i for i in range(len(per_track))]
    assert b"".join(f.payload for f in per_track) == inbound
    assert [f.send_at_ms for f in s.frames] == sorted(f.send_at_ms for f in s.frames)


def test_loss_is_seeded_counted_and_never_drops_the_last_frame() -> None:
    a = build_schedule(FIXTURE, Impairments(loss_pct=10, seed=5))
    b = build_schedule(FIXTURE, Impairments(loss_pct=10, seed=5))
    assert a.lost == b.lost and a.lost["inbound"]
    total = build_schedule(FIXTURE).sent["inbound"]
    assert a.sent["inbound"] + len(a.lost["inbound"]) == total
    last_ts = max(f.timestamp_ms for f in a.frames if f.track == "inbound")
    assert last_ts == (total - 1) * 20


def test_reorder_and_jitter_change_order_not_content() -> None:
    s = build_schedule(FIXTURE, Impairments(jitter_ms=60, reorder_pct=20, seed=1))
    inbound = [f for f in s.frames if f.track == "inbound"]
    stamps = [f.timestamp_ms for f in inbound]
    assert stamps != sorted(stamps)
    assert sorted(stamps) == [20 * i for i in range(len(stamps))]


def test_parse_stream_reads_url_and_parameters() -> None:
    twiml = ('<Response><Start><Stream url="wss://x/y"><Parameter name="token" value="t&amp;1"/></Stream>'
             '</Start></Response>')
    assert parse_stream(twiml) == ("wss://x/y", {"token": "t&1"})
    with pytest.raises(ReplayError):
        parse_stream("<Response><Say>hi</Say></Response>")
    with pytest.raises(ReplayError):
        parse_stream("not xml")
    assert new_sid("CA").startswith("CA") and len(new_sid("CA")) == 34
