"""The post-call jobs: what runs, durably, after a call has ended.

    call end ──enqueue──▶ extract:{sid} ──stores the final extraction, then enqueues──▶ lead:{sid}
             └─enqueue──▶ archive:{key}                                             └▶ sms:{sid}  (emergency only)

Every handler is idempotent, because a job may run more than once: the final extraction is stored at most once
per call (a re-run reads the stored one), follow-ups are enqueued under dedupe keys, the lead upsert is idempotent
per call, the archive spool rewrites an entry for the same key in place, and the SMS job, on a retry, first looks
for an alert it may already have sent (:meth:`~switchboard.alerts.sms.SmsAlerter.find_sent`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import orjson
from pydantic import ValidationError

from switchboard.archive import JSON_CONTENT_TYPE, WAV_CONTENT_TYPE, ArchiveSpool, transcript_key
from switchboard.archive.local import write_atomic
from switchboard.extract import CallFacts, Extractor, Transcript
from switchboard.extract.schema import Speaker
from switchboard.store.base import CallRecord, LeadFields, Store

from .errors import PermanentJobError
from .queue import Job, JobQueue, JobSpec
from .worker import Handler

SPEAKERS: Final[Mapping[str, Speaker]] = {"inbound": "caller", "outbound": "agent"}
_E164: Final = re.compile(r"^\+[1-9]\d{7,14}$")
WITHHELD: Final = frozenset({"+266696687", "+86282452253", "+8656696", "+2562533", "+7378742833"})
"""Numbers Twilio puts in ``From`` for anonymous, unknown, unavailable, blocked and restricted callers."""


def caller_key(from_number: str | None) -> str | None:
    """The lead dedupe key: the caller's E.164 number; None for withheld numbers, SIP or client identities."""
    if from_number is None or not _E164.match(from_number) or from_number in WITHHELD:
        return None
    return from_number


def caller_id_of(call: CallRecord | None) -> str | None:
    """The caller ID an extraction may offer as the callback number: an inbound call's real ``From`` (on an
    outbound call ``From`` is our own number)."""
    if call is None or (call.direction is not None and call.direction != "inbound"):
        return None
    return caller_key(call.from_number)


class EmergencyAlerter(Protocol):
    """What the ``sms`` job needs (:class:`~switchboard.alerts.sms.SmsAlerter`)."""

    async def send_emergency(self, call_sid: str, to: str, facts: CallFacts, call_url: str) -> str: ...

    async def find_sent(self, call_sid: str, to: str) -> str | None: ...


@dataclass(frozen=True, slots=True)
class AlertRoute:
    """Where emergency alerts go; ``call_url`` is a template with ``{call_sid}``."""

    alerter: EmergencyAlerter
    oncall_number: str
    call_url: str


@dataclass(frozen=True, slots=True)
class PostCallHandlers:
    """The handlers of the post-call job kinds, over the app's services. ``alerts`` None: no SMS."""

    store: Store
    queue: JobQueue
    extractor: Extractor
    spool: ArchiveSpool | None = None
    alerts: AlertRoute | None = None

    def handlers(self) -> dict[str, Handler]:
        found: dict[str, Handler] = {"extract": self.extract, "lead": self.lead}
        if self.alerts is not None:
            found["sms"] = self.sms
        if self.spool is not None:
            found["archive"] = self.archive
        return found

    async def call_ended(self, call_sid: str, *, recording_path: Path | None, recording_key: str | None,
                         part: int = 1) -> None:
        """Record the post-call work of the call's stream ``part`` in one transaction (the session calls this once
        the call row is marked ended). Calling it again for the same stream adds nothing; a later stream of the
        call (a transfer's, a hand-over's) extracts again over the whole transcript."""
        extract = {"call_sid": call_sid, "part": part}
        specs = [JobSpec("extract", extract, call_sid, _per_part("extract", call_sid, part))]
        if self.spool is not None and recording_path is not None and recording_key is not None:
            payload = {"call_sid": call_sid, "recording_path": str(recording_path), "recording_key": recording_key}
            # one per recording: a second stream of the call records under another key and is archived too
            specs.append(JobSpec("archive", payload, call_sid, f"archive:{recording_key}"))
        await self.queue.enqueue_many(specs)

    async def extract(self, job: Job) -> Mapping[str, Any]:
        """Final extraction over the stored transcript (every stream's so far), stored once per stream; then the
        lead and, for emergencies, the SMS (once per call)."""
        call_sid = _field(job, "call_sid")
        part = _part(job)
        final = await self.store.latest_extraction(call_sid, final_only=True)
        if final is None or final.part < part:  # else a re-run: the stored one stands, no second (paid) model call
            segments = await self.store.get_segments(call_sid)
            caller_id = caller_id_of(await self.store.get_call(call_sid))
            transcript = Transcript.from_segments(((SPEAKERS[s.track], s.text, s.start_ms) for s in segments),
                                                  caller_id=caller_id)
            if transcript.turns:
                result = await self.extractor.extract(transcript)
                await self.store.add_extraction(call_sid, result.facts.model_dump(), result.source, result.model,
                                                result.fallback_reason, final=True, part=part)  # fmt: skip
                final = await self.store.latest_extraction(call_sid, final_only=True)
        emergency = final is not None and final.data.get("urgency") == "emergency"
        follow_ups = [JobSpec("lead", {"call_sid": call_sid}, call_sid, _per_part("lead", call_sid, part))]
        if emergency and self.alerts is not None:
            sms = {"call_sid": call_sid, "to": self.alerts.oncall_number}
            follow_ups.append(JobSpec("sms", sms, call_sid, f"sms:{call_sid}"))
        await self.queue.enqueue_many(follow_ups)
        return {"version": None if final is None else final.version, "emergency": emergency}

    async def lead(self, job: Job) -> Mapping[str, Any]:
        """Create or update the caller's lead from the final extraction (inbound calls only)."""
        call_sid = _field(job, "call_sid")
        call = await self.store.get_call(call_sid)
        if call is None:
            raise PermanentJobError(f"no call {call_sid}")
        if call.direction is not None and call.direction != "inbound":
            return {"skipped": f"direction {call.direction}"}
        final = await self.store.latest_extraction(call_sid, final_only=True)
        data = final.data if final is not None else {}
        fields = LeadFields(
            phone=caller_key(call.from_number), name=data.get("caller_name"),
            callback_number=data.get("callback_number"), address=data.get("address"), postcode=data.get("postcode"),
            urgency=data.get("urgency"), issue_category=data.get("issue_category"), segment=data.get("lead_segment"),
            summary=data.get("summary"),
        )  # fmt: skip
        lead = await self.store.upsert_lead(call_sid, fields)
        return {"lead_id": lead.id, "call_count": lead.call_count}

    async def sms(self, job: Job) -> Mapping[str, Any]:
        """Alert the on-call number; on a retry, an alert Twilio already accepted is found, not sent again."""
        if self.alerts is None:
            raise PermanentJobError("no alert route configured")
        call_sid, to = _field(job, "call_sid"), _field(job, "to")
        final = await self.store.latest_extraction(call_sid, final_only=True)
        if final is None:
            raise PermanentJobError(f"call {call_sid} has no final extraction to alert about")
        try:
            facts = CallFacts.model_validate(final.data)
        except ValidationError as exc:
            raise PermanentJobError(f"stored extraction v{final.version} is not valid call facts: {exc}") from exc
        if job.attempts > 1 and (sent := await self.alerts.alerter.find_sent(call_sid, to)) is not None:
            return {"message_sid": sent, "found_after_retry": True}
        url = self.alerts.call_url.format(call_sid=call_sid)
        return {"message_sid": await self.alerts.alerter.send_emergency(call_sid, to, facts, url)}

    async def archive(self, job: Job) -> Mapping[str, Any]:
        """Hand the recording and a transcript JSON beside it to the durable archive spool."""
        if self.spool is None:
            raise PermanentJobError("no archive configured")
        call_sid, key = _field(job, "call_sid"), _field(job, "recording_key")
        recording = Path(_field(job, "recording_path"))
        segments = await self.store.get_segments(call_sid)
        document = {"call_sid": call_sid, "recording_key": key, "segments": [
            {"track": s.track, "seq": s.seq, "start_ms": s.start_ms, "end_ms": s.end_ms, "text": s.text,
             "provider": s.provider, "confidence": s.confidence} for s in segments]}  # fmt: skip
        transcript = recording.with_suffix(".json")
        body = orjson.dumps(document, option=orjson.OPT_INDENT_2)
        await _to_thread_write(transcript, body)
        await self.spool.aenqueue(key, recording, WAV_CONTENT_TYPE, metadata={"call_sid": call_sid})
        await self.spool.aenqueue(transcript_key(key), transcript, JSON_CONTENT_TYPE, metadata={"call_sid": call_sid})
        return {"recording_key": key, "transcript_key": transcript_key(key), "segments": len(segments)}


def _per_part(kind: str, call_sid: str, part: int) -> str:
    """A job's dedupe key per stream of the call (the first stream's is the key calls had before they had parts)."""
    return f"{kind}:{call_sid}" if part == 1 else f"{kind}:{call_sid}:{part}"


def _part(job: Job) -> int:
    value = job.payload.get("part", 1)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise PermanentJobError(f"job {job.id} ({job.kind}): 'part' must be a positive integer, got {value!r}")
    return value


def _field(job: Job, name: str) -> str:
    value = job.payload.get(name)
    if not isinstance(value, str) or not value:
        raise PermanentJobError(f"job {job.id} ({job.kind}): payload needs a string {name!r}, got {value!r}")
    return value


async def _to_thread_write(dest: Path, data: bytes) -> None:
    """Durable write (fsync) off the event loop."""
    await asyncio.to_thread(write_atomic, dest, lambda out: out.write(data))
