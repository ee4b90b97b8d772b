"""``run_extract`` (``switchboard extract FILE [--json]``) on text transcripts, offline and through the emulator."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from switchboard.extract.cli import run_extract
from tests.emulators.openai_server import MODEL, Fault, OpenAIEmulator

TEXT = """\
agent: Northgate emergency line, who am I speaking to?
caller: This is Robert McLeish, there's a strong smell of gas in the hall.
agent: What's your address?
caller: Forty one Kelvin Drive, Glasgow, G twenty, eight Q Q.
agent: And your mobile?
caller: Oh seven seven double oh, nine double oh, six one four.
"""


@pytest.fixture
def transcript(tmp_path: Path) -> Path:
    path = tmp_path / "call.txt"
    path.write_text(TEXT)
    return path


async def test_offline_json(transcript: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_extract(transcript, as_json=True, settings_env={}) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["source"] == "offline"
    assert document["facts"]["needs_confirmation"] == []
    assert document["facts"]["evidence"]["postcode"]["source"] == "said"
    assert document["facts"]["evidence"]["postcode"]["confidence"] >= 0.8  # not flagged
    assert document["facts"] | {"summary": None, "evidence": None, "needs_confirmation": None} == {
        "caller_name": "Robert McLeish", "callback_number": "+447700900614", "address": "41 Kelvin Drive, Glasgow",
        "postcode": "G20 8QQ", "urgency": "emergency", "issue_category": "gas", "summary": None,
        "lead_segment": "other", "evidence": None, "needs_confirmation": None}


async def test_offline_text(transcript: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run_extract(transcript, as_json=False, settings_env={"OPENAI_API_KEY": "  "}) == 0
    out = capsys.readouterr().out
    assert "postcode: G20 8QQ" in out and "address: 41 Kelvin Drive, Glasgow" in out
    assert out.rstrip().endswith("source: offline")


async def test_openai_when_key_set_and_fallback_reason_shown(transcript: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    async with OpenAIEmulator(api_key="sk-cli") as emu:
        env = {"OPENAI_API_KEY": "sk-cli", "OPENAI_BASE_URL": emu.base_url}
        assert await run_extract(transcript, as_json=True, settings_env=env) == 0
        first = json.loads(capsys.readouterr().out)
        emu.inject(Fault.named("refusal"))
        assert await run_extract(transcript, as_json=False, settings_env=env) == 0
        second = capsys.readouterr().out
    assert (first["source"], first["model"]) == ("openai", MODEL)
    assert first["facts"]["postcode"] == "G20 8QQ"
    assert "source: offline, OpenAI failed: refusal" in second


async def test_unreadable_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("caller: hello\nnobody: hi\n")
    assert await run_extract(bad, as_json=False, settings_env={}) == 2
    assert "line 2" in capsys.readouterr().err
    assert await run_extract(tmp_path / "missing.wav", as_json=False, settings_env={}) == 2
    not_wav = tmp_path / "noise.wav"
    not_wav.write_bytes(b"definitely not RIFF")
    assert await run_extract(not_wav, as_json=False, settings_env={}) == 2
