"""``switchboard demo``'s progress line and closing summary (pure formatting)."""

from __future__ import annotations

import io
from pathlib import Path

from switchboard.replay.demo import Progress, lead_fields, report
from switchboard.replay.twilio_fake import CallResult

CALL = {
    "call_sid": "CA" + "1" * 32,
    "recording_key": "recordings/2026/12/02/CA1.wav",
    "transcript": [{"start_ms": 0, "speaker": "agent", "text": "Northgate, how can I help?"},
                   {"start_ms": 4200, "speaker": "caller", "text": "Water is pouring through my ceiling."}],
    "extraction": {"data": {"caller_name": "Joanne Whitaker", "callback_number": "+447700900123",
                            "address": "Flat 3, 27 Ashgrove Terrace", "postcode": "LS6 2AB", "urgency": "emergency",
                            "issue_category": "leak", "summary": "Water through the ceiling"}},
    "lead": {"name": "Joanne Whitaker", "phone": "+447700900123", "address": "Flat 3, 27 Ashgrove Terrace",
             "postcode": "LS6 2AB", "urgency": "emergency", "issue_category": "leak",
             "summary": "Water through the ceiling", "callback_number": None},
    "jobs": [{"kind": "extract", "status": "done"}, {"kind": "lead", "status": "done"},
             {"kind": "archive", "status": "done"}],
}


def test_report_ends_with_lead_recording_and_dashboard_and_shows_the_transcript_once(tmp_path: Path) -> None:
    text = report(CALL, data_dir=tmp_path, dashboard="http://127.0.0.1:8000", bucket="calls")
    assert text.count("Water is pouring through my ceiling.") == 1
    assert "Name             Joanne Whitaker" in text
    assert "Postcode         LS6 2AB" in text and "Urgency          emergency" in text
    assert "Issue            leak: Water through the ceiling" in text
    assert "Callback number  +447700900123" in text  # falls back to the caller ID
    assert f"Recording  {tmp_path.resolve()}/recordings/2026/12/02/CA1.wav (archived to s3://calls/" in text
    assert text.rstrip().endswith(f"Dashboard  http://127.0.0.1:8000/calls/{CALL['call_sid']}")
    assert text.index("Transcript") < text.index("Lead") < text.index("Recording") < text.index("Dashboard")


def test_report_without_lead_says_what_is_missing_and_what_is_still_running(tmp_path: Path) -> None:
    call = {"call_sid": "CA2", "recording_key": None, "transcript": [],
            "jobs": [{"kind": "extract", "status": "running"}]}
    text = report(call, data_dir=tmp_path, dashboard="http://h")
    assert "(nothing was recognised)" in text and "Name             —" in text
    assert "post-call jobs still running: extract" in text and "Recording  none" in text
    assert lead_fields(call)["urgency"] is None


def test_progress_prints_a_line_per_quarter_off_a_terminal() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=False)
    call = CallResult("CA3", "MZ3", {}, {})
    progress.event(call, {"type": "transcript", "speaker": "caller", "provider": "local", "is_final": True,
                          "text": "hello"})
    progress.event(call, {"type": "provider.switched", "track": "agent", "from": "deepgram", "to": "local"})
    for i in range(11):
        progress.progress(call, i / 10)
    lines = out.getvalue().splitlines()
    assert len(lines) == 5 and lines[-1].startswith("[" + "#" * 24 + "] 100%")
    assert "1 lines" in lines[-1] and "caller: local" in lines[-1] and "agent: deepgram→local" in lines[-1]
