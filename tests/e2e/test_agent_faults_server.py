"""Provider faults during agent calls, end to end: the real server in agent mode with the ElevenLabs and OpenAI
emulators (real wire protocols, real clients), the local recogniser with the dialog-line oracle as its engine, and
``switchboard replay``'s scripted caller of the bidirectional stream: at real time for the voice faults (the
caller takes 0.7 s of quiet as the end of the agent's turn, as a person would, so dead air shows as a caller
talking over the rest of the turn), at 4× for the model's.

Every call is the routine repair dialog with one fault injected. What the caller got is asserted against the same
dialog run without a fault: the agent said the same lines (the rest of a broken turn was spoken by the next voice
or written by the offline script), the intake fields were collected, no reply's audio paused for more than 1 s on
the wall clock between two media messages (provider deadlines run on the wall clock whatever the replay speed), a
fault at the start of a turn added at most 1 s (plus the configured deadline, for the model's first token) to the
wait after the caller's line, and the stored call says which voice and dialog served it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from switchboard.agent.answer import AnswerMode
from switchboard.agent.profile import load_profile
from switchboard.config import Secret
from switchboard.replay.caller import DialogResult, call_agent
from switchboard.replay.script import load_dialogs
from switchboard.transcribe.moonshine import RecognizerPool
from switchboard.tts.elevenlabs import ElevenLabsSettings
from switchboard.tts.factory import VoiceConfig
from tests.e2e.conftest import Server, fresh_database, running_server
from tests.emulators.elevenlabs_server import ElevenLabsEmulator
from tests.emulators.elevenlabs_server import Fault as VoiceFault
from tests.emulators.elevenlabs_server import FaultKind as V
from tests.emulators.line_oracle import LineOracle, LineOracleEngine
from tests.emulators.openai_server import Fault as ModelFault
from tests.emulators.openai_server import OpenAIEmulator

pytest.importorskip("espeakng_loader")

DIALOGS = Path(__file__).resolve().parents[2] / "fixtures" / "dialogs" / "dialogs.json"
DIALOG = next(d for d in load_dialogs(DIALOGS) if d.name == "routine_repair")
PROFILE = load_profile()
SPEED = 4.0
MAX_GAP_MS = 1000.0


VOICE_FAULTS = {
    "refused_at_handshake": VoiceFault(V.REFUSE_HTTP),
    "refused_by_message": VoiceFault(V.REFUSE_MESSAGE),
    "dropped_mid_turn": VoiceFault(V.DROP, after_messages=3),
    "closed_1011_mid_turn": VoiceFault(V.CLOSE, after_messages=3),
    "error_message_mid_turn": VoiceFault(V.ERROR_MESSAGE, after_messages=3),
    "stalled_mid_turn": VoiceFault(V.STALL, after_messages=3),
    "garbage_mid_turn": VoiceFault(V.GARBAGE, after_messages=3),
    "slow_first_byte": VoiceFault(V.SLOW_FIRST_BYTE, delay_s=5.0),
}


@dataclass
class Rig:
    server: Server
    voice: ElevenLabsEmulator
    model: OpenAIEmulator


@pytest.fixture(scope="module")
async def rig(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    oracle = LineOracle(DIALOGS)
    pool = RecognizerPool(workers=1, engine_factory=lambda: LineOracleEngine(oracle))
    try:
        async with ElevenLabsEmulator() as el, OpenAIEmulator() as openai:
            voices = VoiceConfig(ElevenLabsSettings(api_key=el.api_key, voice_id="faults", ws_url=el.ws_url,
                                                    base_url=el.base_url), ("espeak",))
            dsn = await fresh_database(pg_dsn, "agent_faults")
            async with running_server(dsn, tmp_path_factory.mktemp("agent-faults"), recognizers=pool,
                                      voices=voices, answer=AnswerMode.AGENT, max_media_speed=20.0,
                                      openai_api_key=Secret(openai.api_key),
                                      openai_base_url=openai.base_url) as server:
                yield Rig(server, el, openai)
    finally:
        await pool.aclose()


async def run(rig: Rig, speed: float = SPEED) -> DialogResult:
    async with httpx.AsyncClient(timeout=60) as http:
        return await call_agent(rig.server.target, DIALOG, client=http, speed=speed, timeout_s=300)


def check_baseline(result: DialogResult) -> DialogResult:
    assert result.ended_by == "agent" and result.stored is not None
    agent = stats(result)
    assert set(result.stored["usage"]["tts_chars"]) == {"elevenlabs"}  # the cached greeting is not counted
    assert agent["voice"]["switches"] == [] and agent["dialog"]["fallbacks"] == []
    assert agent["dialog"]["model_replies"] >= 4
    return result


@pytest.fixture(scope="module")
async def baseline(rig: Rig) -> DialogResult:
    """The dialog with healthy providers at 4×: what the model faults are held to."""
    return check_baseline(await run(rig))


async def until(condition: Callable[[], bool], timeout_s: float = 30) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():  # noqa: ASYNC110 - the emulator has no event to wait on
            await asyncio.sleep(0.01)


@pytest.fixture(scope="module")
async def voice_calls(rig: Rig) -> dict[str, DialogResult]:
    """Every voice fault, one call each, all at once at real time (the caller hears what a person would: a
    provider's wall-clock deadlines are not stretched 4× in media time), plus a healthy call. Calls start one
    after another, each once the previous one's connection has taken its fault."""
    tasks: dict[str, asyncio.Task[DialogResult]] = {}
    async with asyncio.TaskGroup() as group:
        for name, fault in VOICE_FAULTS.items():
            opened = len(rig.voice.sessions)
            rig.voice.inject(fault, connections=1)
            tasks[name] = group.create_task(run(rig, speed=1.0))
            await until(lambda opened=opened: len(rig.voice.sessions) > opened)  # type: ignore[misc]
        tasks["healthy"] = group.create_task(run(rig, speed=1.0))
    rig.voice.clear_faults()
    results = {name: task.result() for name, task in tasks.items()}
    check_baseline(results["healthy"])
    return results


def stats(result: DialogResult) -> dict[str, Any]:
    assert result.stored is not None
    agent: dict[str, Any] = result.stored["stats"]["agent"]
    return agent


def agent_lines(result: DialogResult) -> list[str]:
    assert result.stored is not None
    return [s["text"] for s in result.stored["transcript"] if s["speaker"] == "agent"]


def assert_the_caller_was_served(result: DialogResult, baseline: DialogResult, extra_wait_ms: float = 0.0) -> None:
    assert result.ended_by == "agent", (result.ended_by, agent_lines(result))
    facts = stats(result)["facts"] or {}
    for field, value in DIALOG.expect["facts"].items():
        assert facts.get(field) == value, (field, facts)
    gaps = {r.reply: round(r.max_send_gap_ms) for r in result.gaps.replies.values()}
    assert result.gaps.max_send_gap_ms <= MAX_GAP_MS, gaps
    assert len(result.voice_to_voice_wall_ms) == len(baseline.voice_to_voice_wall_ms)
    for turn, (got, usual) in enumerate(zip(result.voice_to_voice_wall_ms, baseline.voice_to_voice_wall_ms,
                                            strict=True)):
        assert got <= usual + extra_wait_ms + MAX_GAP_MS, (turn, round(got), round(usual))


@pytest.mark.parametrize("name", list(VOICE_FAULTS))
async def test_voice_fault_the_call_goes_on_in_the_offline_voice(voice_calls: dict[str, DialogResult],
                                                                 name: str) -> None:
    result, baseline = voice_calls[name], voice_calls["healthy"]
    assert_the_caller_was_served(result, baseline)
    assert agent_lines(result) == agent_lines(baseline)  # every line, the broken one included, said whole
    assert result.stored is not None
    (switch,) = stats(result)["voice"]["switches"]
    assert switch["from"] == "elevenlabs"
    chars = result.stored["usage"]["tts_chars"]
    assert chars.get("espeak", 0) > 0
    if name.startswith("refused"):
        assert "elevenlabs" not in chars or chars["elevenlabs"] == 0
    elif name != "slow_first_byte":
        assert chars.get("elevenlabs", 0) > 0


async def test_voice_closed_for_inactivity_between_turns_reconnects(
        rig: Rig, voice_calls: dict[str, DialogResult]) -> None:
    """ElevenLabs closes a socket idle for its inactivity timeout (here 1 s, shorter than the caller's turns):
    the next turn opens a new one and the call stays in the ElevenLabs voice, at real time like the others."""
    baseline = voice_calls["healthy"]
    before = len(rig.voice.sessions)
    rig.voice.inject(VoiceFault(V.INACTIVITY, delay_s=1.0), connections=None)
    try:
        result = await run(rig, speed=1.0)
    finally:
        rig.voice.clear_faults()
    assert_the_caller_was_served(result, baseline)
    assert agent_lines(result) == agent_lines(baseline)
    closed = [s for s in rig.voice.sessions[before:] if s.close_reason == "inactivity"]
    assert len(closed) >= 2 and len(rig.voice.sessions) - before >= 3
    assert stats(result)["voice"]["switches"] == []
    assert result.stored is not None and set(result.stored["usage"]["tts_chars"]) == {"elevenlabs"}


MODEL_FAULTS: dict[str, tuple[ModelFault, int | None, str]] = {
    "status_500": (ModelFault.http(500, should_retry=False), None, "status_500"),
    "dropped_mid_stream": (ModelFault.named("drop_mid_stream"), 1, "dropped"),
    "no_first_token": (ModelFault.first_token_delay(30), 1, "slow_first_token"),
    "malformed_tool_arguments": (ModelFault.named("malformed_tool_arguments"), 1, "malformed_tool_arguments"),
}


@pytest.mark.parametrize("name", list(MODEL_FAULTS))
async def test_model_fault_the_offline_intake_goes_on(rig: Rig, baseline: DialogResult, name: str) -> None:
    fault, times, reason = MODEL_FAULTS[name]
    rig.model.inject(fault, times=times)
    try:
        result = await run(rig)
    finally:
        rig.model.clear()
    waited_ms = PROFILE.first_token_timeout_s * 1000 if name == "no_first_token" else 0.0
    assert_the_caller_was_served(result, baseline, extra_wait_ms=waited_ms)
    agent = stats(result)
    assert agent["dialog"]["fallbacks"] == [reason]
    assert agent["dialog"]["offline_replies"] >= 4 and agent["voice"]["switches"] == []
    assert result.stored is not None
    if name == "malformed_tool_arguments":  # the model answered (its usage came) before its output was refused
        assert sum(m["requests"] for m in result.stored["usage"]["models"].values()) == 1
