"""The post-call jobs end to end on real parts: PostgreSQL, a JobWorker, the offline extractor, the local archive
behind its spool, and the real ``twilio`` client against the Twilio REST emulator."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from switchboard.alerts import SmsAlerter
from switchboard.archive import ArchiveSpool, LocalArchive
from switchboard.extract import Extraction, FallbackExtractor, OfflineExtractor, Transcript
from switchboard.jobs import Job, JobQueue, JobWorker, RetryPolicy
from switchboard.jobs.handlers import AlertRoute, PostCallHandlers, caller_key
from switchboard.store import PgStore, Segment
from tests.emulators.twilio_rest import Fault, TwilioRestEmulator

ONCALL = "+447700900999"
CALLER = "+447700900001"
NOW = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
EMERGENCY = [
    ("outbound", "Northgate repairs, how can I help?"),
    ("inbound", "Hi, my name is Ann Lee. There's a strong smell of gas in the kitchen."),
    ("outbound", "What is the address?"),
    ("inbound", "12 Hyde Park Road, Leeds, LS6 2AB. My number is 07700 900123."),
]
ROUTINE = [("inbound", "Hello, this is Bob Smith, the kitchen tap is dripping, can someone come next week?")]


class CountingExtractor:
    """The offline extractor, counting its runs (a model call costs money: a re-run must not repeat it)."""

    def __init__(self) -> None:
        self.inner, self.calls = FallbackExtractor(None, OfflineExtractor()), 0

    async def extract(self, transcript: Transcript) -> Extraction:
        self.calls += 1
        return await self.inner.extract(transcript)


@dataclasses.dataclass
class Rig:
    store: PgStore
    queue: JobQueue
    handlers: PostCallHandlers
    emu: TwilioRestEmulator
    archive_root: Path
    recordings: Path
    extractor: CountingExtractor


@pytest.fixture
async def rig(store: PgStore, tmp_path: Path) -> AsyncIterator[Rig]:
    queue = JobQueue(store)
    spool = ArchiveSpool(LocalArchive(tmp_path / "archive"), tmp_path / "spool", retry_min_s=0.05)
    async with (
        TwilioRestEmulator() as emu,
        # Patient: the emulator shares the test's event loop, which a loaded machine can stall for a while; a
        # spurious timeout would make the sms job retry (a second attempt, "found_after_retry") and fail the test.
        SmsAlerter(emu.account_sid, emu.auth_token, "+441134960000", base_url=emu.base_url, timeout_s=10) as alerter,
    ):
        route = AlertRoute(alerter, ONCALL, "https://switchboard.example/api/calls/{call_sid}")
        extractor = CountingExtractor()
        handlers = PostCallHandlers(store, queue, extractor, spool, route)
        async with asyncio.TaskGroup() as group:
            group.create_task(spool.run())
            try:
                yield Rig(store, queue, handlers, emu, tmp_path / "archive", tmp_path / "recordings", extractor)
            finally:
                await spool.aclose()


async def make_call(
    rig: Rig, sid: str, turns: list[tuple[str, str]], *, direction: str = "inbound", from_number: str = CALLER
) -> Path:
    await rig.store.create_call(
        sid,
        account_sid=None,
        from_number=from_number,
        to_number="+441134960000",
        direction=direction,
        mode="operator",
        status="completed",
        at=NOW,
    )
    seqs = {"inbound": 0, "outbound": 0}
    segments = []
    for n, (track, text) in enumerate(turns):
        segments.append(Segment(sid, track, seqs[track], n * 3000, n * 3000 + 2500, text, "scripted"))
        seqs[track] += 1
    await rig.store.add_segments(segments)
    recording = rig.recordings / f"{sid}.wav"
    recording.parent.mkdir(parents=True, exist_ok=True)
    recording.write_bytes(b"RIFF-not-really")
    return recording


@contextlib.asynccontextmanager
async def worker(rig: Rig) -> AsyncIterator[JobWorker]:
    w = JobWorker(
        rig.queue, rig.handlers.handlers(), concurrency=3, poll_s=0.02, retry=RetryPolicy(base_s=0.05, max_s=0.1)
    )
    async with asyncio.TaskGroup() as group:
        group.create_task(w.run())
        try:
            yield w
        finally:
            await w.aclose()


async def all_settled(queue: JobQueue, call_sid: str, kinds: set[str], timeout_s: float = 30) -> dict[str, Job]:
    async with asyncio.timeout(timeout_s):
        while True:
            jobs = {job.kind: job for job in await queue.list_jobs(call_sid=call_sid)}
            if set(jobs) >= kinds and all(j.status in ("done", "failed") for j in jobs.values()):
                return jobs
            await asyncio.sleep(0.02)


def test_caller_key() -> None:
    assert caller_key("+447700900001") == "+447700900001"
    for withheld in (None, "+266696687", "anonymous", "client:alice", "sip:a@b.c", "07700900001", "+12"):
        assert caller_key(withheld) is None


async def test_emergency_call_gets_extraction_lead_archive_and_one_sms(rig: Rig) -> None:
    sid = "CA" + "e" * 32
    recording = await make_call(rig, sid, EMERGENCY)
    await rig.handlers.call_ended(sid, recording_path=recording, recording_key=f"recordings/2025/03/01/{sid}.wav")
    await rig.handlers.call_ended(sid, recording_path=recording, recording_key=f"recordings/2025/03/01/{sid}.wav")
    async with worker(rig):
        jobs = await all_settled(rig.queue, sid, {"extract", "archive", "lead", "sms"})
    assert {kind: job.status for kind, job in jobs.items()} == dict.fromkeys(jobs, "done")
    assert len(await rig.queue.list_jobs(call_sid=sid)) == 4  # the second call_ended was deduplicated
    final = await rig.store.latest_extraction(sid, final_only=True)
    assert final is not None and final.data["urgency"] == "emergency" and final.source == "offline"
    assert jobs["extract"].result == {"version": final.version, "emergency": True}
    lead = await rig.store.lead_for_call(sid)
    assert lead is not None and (lead.phone, lead.name, lead.postcode, lead.urgency, lead.issue_category) == (
        CALLER,
        "Ann Lee",
        "LS6 2AB",
        "emergency",
        "gas",
    )
    [message] = rig.emu.messages
    assert message["to"] == ONCALL and f"https://switchboard.example/api/calls/{sid}" in message["body"]
    assert jobs["sms"].result == {"message_sid": message["sid"]}
    stored = rig.archive_root / "recordings/2025/03/01"
    async with asyncio.timeout(15):
        while True:  # the spool uploads on its own task
            if (stored / f"{sid}.json").exists():
                break
            await asyncio.sleep(0.02)
    assert (stored / f"{sid}.wav").read_bytes() == b"RIFF-not-really"
    transcript = json.loads((stored / f"{sid}.json").read_bytes())
    assert [s["text"] for s in transcript["segments"]] == [text for _, text in EMERGENCY]


async def test_handlers_rerun_without_repeating_effects(rig: Rig) -> None:
    sid = "CA" + "a" * 32
    await make_call(rig, sid, EMERGENCY)
    await rig.handlers.call_ended(sid, recording_path=None, recording_key=None)
    async with worker(rig):
        jobs = await all_settled(rig.queue, sid, {"extract", "lead", "sms"})
    # At-least-once: each handler runs again, as after a crash between its effect and its completion.
    again = {kind: dataclasses.replace(job, attempts=job.attempts + 1) for kind, job in jobs.items()}
    assert await rig.handlers.extract(again["extract"]) == jobs["extract"].result
    assert await rig.handlers.lead(again["lead"]) == jobs["lead"].result
    resent = await rig.handlers.sms(again["sms"])
    assert resent == {"message_sid": rig.emu.messages[0]["sid"], "found_after_retry": True}
    assert len(rig.emu.messages) == 1
    assert len(await rig.queue.list_jobs(call_sid=sid)) == 3
    versions = await rig.store.latest_extraction(sid)
    assert versions is not None and versions.version == 1 and rig.extractor.calls == 1
    lead = await rig.store.lead_for_call(sid)
    assert lead is not None and lead.call_count == 1


async def test_routine_call_makes_a_lead_but_no_sms_and_repeat_caller_is_merged(rig: Rig) -> None:
    first, second = "CA" + "1" * 32, "CA" + "2" * 32
    await make_call(rig, first, ROUTINE)
    await make_call(rig, second, EMERGENCY)
    async with worker(rig):
        await rig.handlers.call_ended(first, recording_path=None, recording_key=None)
        await all_settled(rig.queue, first, {"extract", "lead"})
        await rig.handlers.call_ended(second, recording_path=None, recording_key=None)
        await all_settled(rig.queue, second, {"extract", "lead", "sms"})
    assert {job.kind for job in await rig.queue.list_jobs(call_sid=first)} == {"extract", "lead"}
    [lead] = await rig.store.list_leads()
    assert lead.calls == (first, second) and lead.urgency == "emergency" and lead.name == "Ann Lee"


async def test_outbound_and_silent_calls(rig: Rig) -> None:
    outbound, silent = "CA" + "3" * 32, "CA" + "4" * 32
    await make_call(rig, outbound, EMERGENCY, direction="outbound-api")
    await make_call(rig, silent, [], from_number="+266696687")
    async with worker(rig):
        for sid in (outbound, silent):
            await rig.handlers.call_ended(sid, recording_path=None, recording_key=None)
        out_jobs = await all_settled(rig.queue, outbound, {"extract", "lead", "sms"})
        silent_jobs = await all_settled(rig.queue, silent, {"extract", "lead"})
    assert out_jobs["lead"].result == {"skipped": "direction outbound-api"}
    assert silent_jobs["extract"].result == {"version": None, "emergency": False}
    lead = await rig.store.lead_for_call(silent)  # a missed call is still a lead, with no number to merge on
    assert lead is not None and lead.phone is None and lead.urgency is None


async def test_sms_faults_through_the_worker(rig: Rig) -> None:
    limited, invalid = "CA" + "5" * 32, "CA" + "6" * 32
    for sid in (limited, invalid):
        await make_call(rig, sid, EMERGENCY)
    rig.emu.inject(Fault.error(429, 20429))
    async with worker(rig):
        await rig.handlers.call_ended(limited, recording_path=None, recording_key=None)
        rate_limited = await all_settled(rig.queue, limited, {"extract", "lead", "sms"})
        rig.emu.inject(Fault.error(400, 21211))
        await rig.handlers.call_ended(invalid, recording_path=None, recording_key=None)
        refused = await all_settled(rig.queue, invalid, {"extract", "lead", "sms"})
    assert rate_limited["sms"].status == "done" and rate_limited["sms"].attempts == 2
    assert "SmsRateLimited" in (rate_limited["sms"].last_error or "")
    assert refused["sms"].status == "failed" and refused["sms"].attempts == 1
    assert "21211" in (refused["sms"].last_error or "")
    assert [m["body"].endswith(f"ref {limited}") for m in rig.emu.messages] == [True]
