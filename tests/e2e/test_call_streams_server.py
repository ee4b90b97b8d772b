"""Two media streams of one call through the real server (a replay of the same CallSid; a transfer's and an
operator hand-over's second stream work the same way): both streams' speech in the transcript on one timeline, the
final extraction and the lead over both, both recordings listed and joined in one.

Before streams had parts, the second stream's segments restarted at seq 1 and collided with the first's in the
store (dropped), its extract job was a duplicate of the first's (ignored) and only its own recording was served.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from audio.wav import WavReader
from switchboard.replay.fixture import build_schedule
from switchboard.replay.twilio_fake import CallResult, new_sid, replay_call
from switchboard.transcribe.moonshine import RecognizerPool
from tests.e2e.conftest import Server, fresh_database, running_server
from tests.e2e.test_failover import FixtureOracle, OracleEngine
from tests.emulators.recognizer import EmulatorRecognizer

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
FIRST = FIXTURES / "tts_leak_emergency_leeds.wav"
SECOND = FIXTURES / "tts_boiler_urgent_manchester.wav"
SPEED = 4.0


@pytest.fixture(scope="module")
async def server(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Server]:
    moonshine = EmulatorRecognizer()  # only for audio the oracle cannot place: none in these fixtures
    oracle = FixtureOracle([FIRST, SECOND], moonshine)
    local = RecognizerPool(workers=1, engine_factory=lambda: OracleEngine(oracle))
    dsn = await fresh_database(pg_dsn, "streams")
    try:
        async with running_server(dsn, tmp_path_factory.mktemp("streams"), recognizers=local,
                                  stt_workers=1) as srv:
            yield srv
    finally:
        await local.aclose()
        await moonshine.aclose()


async def replay(server: Server, path: Path, call_sid: str) -> CallResult:
    async with httpx.AsyncClient(timeout=60) as client:
        return await replay_call(server.target, build_schedule(path), speed=SPEED, client=client,
                                 call_sid=call_sid, end_timeout_s=300)


async def settled(server: Server, call_sid: str, extracts: int, within_s: float = 30) -> dict[str, Any]:
    """The call once ``extracts`` extract jobs (one per stream) and every other job have finished; after
    ``within_s``, the call as it is once its jobs have finished (so each test below says what is missing)."""
    async with httpx.AsyncClient(base_url=server.base, headers=server.auth(), timeout=30) as http:
        loop = asyncio.get_running_loop()
        give_up = loop.time() + within_s
        while True:
            call: dict[str, Any] = (await http.get(f"/api/calls/{call_sid}")).json()
            jobs = call.get("jobs", [])
            done = bool(jobs) and all(j["status"] in ("done", "failed") for j in jobs)
            kinds = [j["kind"] for j in jobs]
            if done and ((kinds.count("extract") >= extracts and kinds.count("lead") >= extracts)
                         or loop.time() > give_up):
                return call
            await asyncio.sleep(0.25)


def said(result: CallResult) -> list[str]:
    """The caller's finals as the call's live feed showed them while that stream ran."""
    return result.live_finals["inbound"]


@pytest.fixture(scope="module")
async def two_streams(server: Server) -> tuple[CallResult, CallResult, dict[str, Any]]:
    sid = new_sid("CA")
    first = await replay(server, FIRST, sid)
    second = await replay(server, SECOND, sid)
    return first, second, await settled(server, sid, extracts=2)


async def test_every_stream_is_in_the_transcript_on_one_timeline(
        two_streams: tuple[CallResult, CallResult, dict[str, Any]]) -> None:
    first, second, call = two_streams
    assert first.ended is not None and second.ended is not None
    # the second stream's live feed starts with the call's backlog: the first stream's finals, then its own
    assert said(first) and said(second)[: len(said(first))] == said(first) and said(second)[len(said(first)):]
    caller = [s for s in call["transcript"] if s["track"] == "inbound"]
    assert [s["text"] for s in caller] == said(second)
    parts = [s["part"] for s in caller]
    assert parts == sorted(parts) and set(parts) == {1, 2}
    first_end = max(s["end_ms"] for s in caller if s["part"] == 1)
    assert min(s["start_ms"] for s in caller if s["part"] == 2) >= first_end
    assert call["ended_at"] is not None and call["media_ms"] >= first_end


async def test_the_final_extraction_and_lead_cover_both_streams(
        two_streams: tuple[CallResult, CallResult, dict[str, Any]]) -> None:
    _, _, call = two_streams
    assert [j["kind"] for j in call["jobs"]].count("extract") == 2
    extraction = call["extraction"]
    assert extraction["final"] and extraction["part"] == 2
    # the second caller gives a Manchester postcode, which only the second stream's words carry
    assert call["extraction"]["data"]["postcode"] == "M14 5TQ", extraction["data"]
    assert call["lead"] is not None and call["lead"]["postcode"] == "M14 5TQ"
    assert call["lead"]["call_count"] == 1


async def test_both_recordings_are_listed_and_joined(
        server: Server, two_streams: tuple[CallResult, CallResult, dict[str, Any]], tmp_path: Path) -> None:
    _, _, call = two_streams
    recordings = call["recordings"]
    assert [r["part"] for r in recordings] == [1, 2]
    one, two = recordings
    assert one["recording_key"] != two["recording_key"] and two["recording_key"] == call["recording_key"]
    assert two["offset_ms"] >= one["media_ms"] > 0
    data_dir = server.settings.data_dir
    lengths = []
    for r in recordings:
        with WavReader(data_dir / r["recording_key"]) as wav:
            lengths.append(wav.n_frames)
    async with httpx.AsyncClient(base_url=server.base, headers=server.auth(), timeout=30) as http:
        joined = await http.get(f"/api/calls/{call['call_sid']}/recording")
        part_two = await http.get(f"/api/calls/{call['call_sid']}/recording", params={"part": "2"})
    assert joined.status_code == 200 and part_two.status_code == 200
    assert part_two.content == (data_dir / two["recording_key"]).read_bytes()
    (tmp_path / "joined.wav").write_bytes(joined.content)
    with WavReader(tmp_path / "joined.wav") as wav:
        assert wav.channels == 2 and wav.header_complete
        assert wav.n_frames == two["offset_ms"] * 8 + lengths[1]
        body = wav.read()
    parts = []
    for r in recordings:
        with WavReader(data_dir / r["recording_key"]) as wav:
            parts.append(wav.read())
    assert body[: len(parts[0])] == parts[0]  # stereo μ-law: 2 bytes a frame
    assert set(body[len(parts[0]): two["offset_ms"] * 16]) <= {0xFF}  # silence between (if any)
    assert body[two["offset_ms"] * 16:] == parts[1]
