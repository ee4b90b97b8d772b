"""What ``switchboard demo`` shows: progress while the call replays, then what an operator wants to know.

:class:`Progress` draws one status line (updated in place on a terminal, a line per quarter otherwise) from the
replay's callbacks; :func:`report` turns the stored call (``GET /api/calls/{sid}`` once its post-call jobs are
done) into the closing summary: the transcript once, the lead, where the recording is, the dashboard URL. Both
are pure formatting, tested without a server.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TextIO

from switchboard.replay.twilio_fake import CallResult

LEAD_FIELDS = (("caller_name", "Name"), ("address", "Address"), ("postcode", "Postcode"), ("issue", "Issue"),
               ("urgency", "Urgency"), ("callback_number", "Callback number"))
BAR = 24


class Progress:
    """Replay progress on one line: how far, how many lines recognised, which provider each side is on."""

    def __init__(self, out: TextIO, *, tty: bool) -> None:
        self._out, self._tty = out, tty
        self.finals = 0
        self.providers: dict[str, str] = {}
        self._quarter = -1
        self._fraction = 0.0

    def event(self, call: CallResult, event: dict[str, Any]) -> None:
        if event.get("type") == "transcript":
            self.providers[str(event.get("speaker", event.get("track")))] = str(event.get("provider"))
            if event.get("is_final") and event.get("text"):
                self.finals += 1
                if self._tty:
                    self._draw()
        elif event.get("type") == "provider.switched":
            self.providers[str(event.get("track"))] = f"{event.get('from')}→{event.get('to')}"

    def progress(self, call: CallResult, fraction: float) -> None:
        self._fraction = min(1.0, max(0.0, fraction))
        quarter = int(self._fraction * 4)
        if not self._tty and quarter == self._quarter:
            return
        self._quarter = quarter
        self._draw()

    def _draw(self) -> None:
        fraction = self._fraction
        done = int(BAR * fraction)
        heard = ", ".join(f"{who}: {provider}" for who, provider in sorted(self.providers.items()))
        line = f"[{'#' * done}{'.' * (BAR - done)}] {fraction * 100:3.0f}%  {self.finals} lines  {heard}"
        print(f"\r{line:<100}" if self._tty else line, end="" if self._tty else "\n", file=self._out, flush=True)

    def done(self) -> None:
        if self._tty:
            print(file=self._out, flush=True)


def lead_fields(call: dict[str, Any]) -> dict[str, str | None]:
    """The lead as the operator reads it: the stored lead, completed by the final extraction."""
    lead = call.get("lead") or {}
    facts = (call.get("extraction") or {}).get("data") or {}
    category = lead.get("issue_category") or facts.get("issue_category")
    summary = lead.get("summary") or facts.get("summary")
    issue = ": ".join(str(x).replace("_", " ") for x in (category, summary) if x) or None
    return {
        "caller_name": lead.get("name") or facts.get("caller_name"),
        "address": lead.get("address") or facts.get("address"),
        "postcode": lead.get("postcode") or facts.get("postcode"),
        "issue": issue,
        "urgency": lead.get("urgency") or facts.get("urgency"),
        "callback_number": lead.get("callback_number") or facts.get("callback_number") or lead.get("phone"),
    }


def recording_location(call: dict[str, Any], data_dir: Path, bucket: str | None) -> str:
    key = call.get("recording_key")
    if not key:
        return "none (no media was received)"
    where = str((data_dir / key).resolve())
    archived = any(j.get("kind") == "archive" and j.get("status") == "done" for j in call.get("jobs", []))
    if bucket and archived:
        where += f" (archived to s3://{bucket}/{key})"
    return where


def report(call: dict[str, Any], *, data_dir: Path, dashboard: str, bucket: str | None = None) -> str:
    lines = ["", "Transcript"]
    for seg in call.get("transcript", []):
        lines.append(f"  {seg['start_ms'] / 1000:6.1f}s  {seg['speaker']:>6}: {seg['text']}")
    if not call.get("transcript"):
        lines.append("  (nothing was recognised)")
    lines += ["", "Lead"]
    fields = lead_fields(call)
    width = max(len(label) for _, label in LEAD_FIELDS)
    lines += [f"  {label:<{width}}  {fields[key] or '—'}" for key, label in LEAD_FIELDS]
    pending = [j["kind"] for j in call.get("jobs", []) if j.get("status") not in ("done", "failed")]
    if pending:
        lines.append(f"  (post-call jobs still running: {', '.join(pending)})")
    lines += ["", f"Recording  {recording_location(call, data_dir, bucket)}",
              f"Dashboard  {dashboard}/calls/{call.get('call_sid', '')}"]
    return "\n".join(lines)
