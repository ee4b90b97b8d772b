"""`switchboard replay --speed` stays within the server's pace rule (SWITCHBOARD_MAX_MEDIA_SPEED)."""

from __future__ import annotations

from pathlib import Path

import pytest

from switchboard.cli import main
from switchboard.replay.fixture import build_schedule
from switchboard.twilio.media_bounds import MediaTimeGuard, MediaTimeLimits

FIXTURE = Path(__file__).resolve().parents[2] / "fixtures" / "real_librivox_reader.wav"


@pytest.mark.parametrize("speed", ["21", "-1", "1e9"])
def test_replay_refuses_a_speed_beyond_the_pace_rule(speed: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("SWITCHBOARD_DATA_DIR", str(tmp_path))
    assert main(["replay", str(FIXTURE), "--url", "http://127.0.0.1:9", "--speed", speed]) == 2
    assert "SWITCHBOARD_MAX_MEDIA_SPEED" in capsys.readouterr().err


def test_replay_at_the_cap_is_never_held_back() -> None:
    """At the highest allowed speed every frame is sent when the server's guard takes it at once (no hold)."""
    limits = MediaTimeLimits()
    schedule = build_schedule(FIXTURE)
    guard = MediaTimeGuard(limits, started_at=0.0)
    for frame in schedule.frames:
        assert guard.admit(frame.track, frame.timestamp_ms, now=frame.send_at_ms / 1000 / limits.max_speed) == 0.0
