"""The scripted callers end to end: the real server in agent mode (offline dialog, espeak-ng voice, the local
recogniser with the dialog-line oracle as its engine, the Twilio REST emulator for the emergency SMS and the
transfer) and ``switchboard replay``'s caller of the bidirectional stream, at 4× real time.

Each dialog's expectations come from ``fixtures/dialogs/dialogs.json``: the fields the agent recorded, how the call
ended, alerts, interruptions. Plus: the recording's agent channel holds exactly what the caller heard, the agent's
transcript is ``tts``, a −20 dB echo of the agent never interrupts it, and a hang-up mid-sentence leaves no task.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from audio.wav import WavReader, WavWriter
from switchboard.agent.answer import AnswerMode
from switchboard.agent.profile import load_profile
from switchboard.replay.caller import DialogResult, call_agent
from switchboard.replay.fixture import build_schedule
from switchboard.replay.script import Dialog, load_dialogs
from switchboard.replay.twilio_fake import follow_stream
from switchboard.transcribe.moonshine import RecognizerPool
from switchboard.tts.factory import VoiceConfig
from tests.e2e.conftest import AUTH_TOKEN, Server, fresh_database, running_server
from tests.emulators.line_oracle import LineOracle, LineOracleEngine
from tests.emulators.twilio_rest import TwilioRestEmulator

pytest.importorskip("espeakng_loader")

DIALOGS = Path(__file__).resolve().parents[2] / "fixtures" / "dialogs" / "dialogs.json"
ALL = {d.name: d for d in load_dialogs(DIALOGS)}
PROFILE = load_profile()
OPERATOR = "+447700900555"
SPEED = 4.0


@dataclass
class Rig:
    server: Server
    emu: TwilioRestEmulator
    redirects: dict[str, asyncio.Event]


@pytest.fixture(scope="module")
async def rig(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    oracle = LineOracle(DIALOGS)
    pool = RecognizerPool(workers=1, engine_factory=lambda: LineOracleEngine(oracle))
    redirects: dict[str, asyncio.Event] = {}
    try:
        async with TwilioRestEmulator(auth_token=AUTH_TOKEN) as emu:
            emu.on_update = lambda update: redirects.setdefault(update["sid"], asyncio.Event()).set()
            dsn = await fresh_database(pg_dsn, "agent_dialogs")
            async with running_server(dsn, tmp_path_factory.mktemp("agent-dialogs"), recognizers=pool,
                                      voices=VoiceConfig(None, ("espeak",)), answer=AnswerMode.AGENT,
                                      operator_number=OPERATOR, twilio_phone_number="+447700900000",
                                      twilio_api_url=emu.base_url, twilio_account_sid=emu.account_sid,
                                      max_media_speed=20.0) as server:
                yield Rig(server, emu, redirects)
    finally:
        await pool.aclose()


async def run(rig: Rig, dialog: Dialog, **kw: Any) -> DialogResult:
    async with httpx.AsyncClient(timeout=60) as http:
        # the caller's CallSid is made inside call_agent: watch for a redirect of whichever call it is
        event = asyncio.Event()
        rig.emu.on_update = lambda update: event.set()
        return await call_agent(rig.server.target, dialog, client=http, speed=SPEED, redirected=event,
                                timeout_s=240, **kw)


@pytest.fixture(scope="module")
async def results(rig: Rig) -> dict[str, DialogResult]:
    """Every scripted dialog, one after another (each takes 5–20 s at 4×)."""
    out = {}
    for name, dialog in ALL.items():
        out[name] = await run(rig, dialog)
    return out


def agent_lines(result: DialogResult) -> list[str]:
    assert result.stored is not None
    return [s["text"] for s in result.stored["transcript"] if s["speaker"] == "agent"]


@pytest.mark.parametrize("name", list(ALL))
async def test_scripted_dialog(rig: Rig, results: dict[str, DialogResult], name: str) -> None:
    result, expect = results[name], ALL[name].expect
    stored = result.stored
    assert stored is not None, name
    assert result.ended_by == expect["end"], (result.ended_by, agent_lines(result))
    assert result.greeting_ms is not None
    agent = agent_lines(result)
    assert agent and agent[0] == PROFILE.line("greeting")
    assert all(s["provider"] == "tts" for s in stored["transcript"] if s["speaker"] == "agent")
    facts = (stored["stats"].get("agent") or {}).get("facts") or {}
    for field, value in expect.get("facts", {}).items():
        assert facts.get(field) == value, (field, facts)
    if "alerts" in expect:
        sent = [m for m in rig.emu.messages if result.call_sid in m["body"]]
        assert len(sent) == expect["alerts"], sent
        assert all(m["to"] == OPERATOR for m in sent)  # only the configured recipient, whatever was said
    transfers = [u for u in rig.emu.updates if u["sid"] == result.call_sid]
    if expect.get("transfer"):
        assert len(transfers) == 1 and OPERATOR in transfers[0]["Twiml"] and "<Dial" in transfers[0]["Twiml"]
    else:
        assert not transfers
    if "interrupted" in expect:
        assert len(result.agent_turns("interrupted")) >= expect["interrupted"] and result.clears >= 1
        # cut within the goal: the minimum-speech rule (300 ms) plus 60 ms, plus the recogniser's partial (none
        # here: the oracle answers at the utterance end) — so the bound is the caller's line, not the timer
        assert result.barge_in_ms and max(result.barge_in_ms) < 4000
    if expect.get("agent_says"):
        line = PROFILE.line(expect["agent_says"])
        assert any(a.startswith(line[:40]) for a in agent), agent
    assert stored["usage"]["tts_chars"] and stored["turn_latencies_ms"]


async def test_recording_agent_channel_is_what_the_caller_heard(rig: Rig,
                                                                results: dict[str, DialogResult]) -> None:
    result = results["interrupter"]
    assert result.stored is not None
    with WavReader(rig.server.settings.data_dir / result.stored["recording_key"]) as wav:
        frames = wav.read(wav.n_frames)
    agent = frames[1::2]
    voiced_ms = sum(1 for i in range(0, len(agent) - 159, 160) if agent[i:i + 160] != b"\xff" * 160) * 20
    assert abs(voiced_ms - result.heard_ms) <= 0.1 * result.heard_ms + 400, (voiced_ms, result.heard_ms)


async def test_echo_at_minus_20_db_does_not_interrupt(rig: Rig) -> None:
    result = await run(rig, ALL["routine_repair"], echo_db=-20.0)
    assert result.ended_by == "agent" and result.clears == 0 and not result.agent_turns("interrupted")


async def test_hang_up_mid_sentence_leaves_no_task(rig: Rig) -> None:
    result = await run(rig, ALL["emergency"])
    assert result.ended_by == "caller"
    await asyncio.sleep(0.5)
    leftover = [t.get_name() for t in asyncio.all_tasks() if result.call_sid in t.get_name()]
    assert not leftover


def operator_leg(path: Path) -> Path:
    """A stereo fixture of the operator leg: the caller gives the operator their address; the operator is quiet."""
    line = next(s for s in ALL["routine_repair"].steps if "Harehills" in s.text).audio
    pad = b"\xff" * 8 * 600
    inbound = pad + line + pad * 3
    with WavWriter(path, channels=2, sample_rate=8000, encoding="mulaw") as wav:
        wav.write(b"".join(bytes((a, 0xFF)) for a in inbound))
    return path


async def test_transfer_keeps_the_call_and_its_recording_goes_on(rig: Rig, tmp_path: Path) -> None:
    """The caller gives their name to the agent, asks for a person; the call is redirected to the operator with a
    fork of the operator leg, whose stream (the same call's second) arrives: one transcript, facts from both, the
    recording continued."""
    routine, human = ALL["routine_repair"].steps, ALL["asks_for_human"].steps
    dialog = Dialog("name_then_human", [routine[0], routine[1], human[0]])
    result = await run(rig, dialog)
    assert result.ended_by == "redirect" and result.stored is not None
    [update] = [u for u in rig.emu.updates if u["sid"] == result.call_sid]
    twiml = update["Twiml"]
    assert "<Start><Stream" in twiml and 'track="both_tracks"' in twiml and twiml.index("<Start>") < twiml.index(
        "<Dial") and OPERATOR in twiml
    async with httpx.AsyncClient(timeout=60) as http:
        leg = await follow_stream(rig.server.target, twiml, result.call_sid,
                                  build_schedule(operator_leg(tmp_path / "operator.wav")), speed=SPEED, client=http)
        assert leg.ended is not None and leg.ended["part"] == 2
        async with asyncio.timeout(120):
            while True:
                call = (await http.get(f"{rig.server.base}/api/calls/{result.call_sid}",
                                       headers=rig.server.auth())).json()
                kinds = [j["kind"] for j in call["jobs"] if j["status"] == "done"]
                if kinds.count("extract") == 2 and kinds.count("lead") == 2:
                    break
                await asyncio.sleep(0.25)
    transcript = [(s["part"], s["speaker"], s["text"]) for s in call["transcript"]]
    first = [t for t in transcript if t[0] == 1]
    assert first == [t for t in transcript if t[0] == 1 and t in
                     [(1, s["speaker"], s["text"]) for s in result.stored["transcript"]]]  # kept as it was
    assert any("Dave Kowalski" in text for part, who, text in first if who == "caller")
    assert any(who == "agent" for _, who, _ in first)
    assert [(p, who) for p, who, text in transcript if "Harehills" in text] == [(2, "caller")]
    assert transcript == sorted(transcript, key=lambda t: t[0])  # the operator leg comes after the agent's
    facts = call["extraction"]["data"]
    assert call["extraction"]["part"] == 2
    assert facts["caller_name"] == "Dave Kowalski" and facts["postcode"] == "LS9 6AB", facts
    # the recording goes on: the operator leg's file placed after the agent's on the call's timeline
    one, two = call["recordings"]
    assert two["offset_ms"] >= one["media_ms"] > 0 and two["media_ms"] > 0
    assert call["media_ms"] == two["offset_ms"] + two["media_ms"] and call["ended_at"] is not None
    async with httpx.AsyncClient(timeout=60) as http:
        joined = await http.get(f"{rig.server.base}/api/calls/{result.call_sid}/recording",
                                headers=rig.server.auth())
    (tmp_path / "joined.wav").write_bytes(joined.content)
    with WavReader(tmp_path / "joined.wav") as wav:
        assert wav.n_frames == (two["offset_ms"] + two["media_ms"]) * 8
