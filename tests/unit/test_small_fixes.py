"""Small crashes and leaks (hardening, item 8), each with the input that used to crash or leak."""

from __future__ import annotations

import os
import stat
import wave
from pathlib import Path

import numpy as np
import pytest

from switchboard.config import ConfigError, Settings, load_local_secrets
from switchboard.extract.cli import run_extract
from switchboard.tokens import check_stream_token, stream_token
from switchboard.twilio.errors import ProtocolViolation
from switchboard.twilio.media_stream import MediaStream
from switchboard.twilio_ids import is_call_sid

SID = "CA" + "0123456789abcdef" * 2


def test_call_sid_with_a_trailing_newline_is_not_a_call_sid() -> None:
    assert is_call_sid(SID) and not is_call_sid(SID + "\n") and not is_call_sid(" " + SID)


def test_non_ascii_stream_token_is_refused_not_a_type_error() -> None:
    assert check_stream_token("key", SID, "v1.99.tökén.mäc", now=0) == "invalid stream token for this call"
    assert not isinstance(check_stream_token("key", SID, stream_token("key", SID, now=0, ttl_s=60), now=1), str)


@pytest.mark.parametrize("template", ['{"event":%s}', '%s', '{"event":"connected","protocol":%s}'])
def test_deeply_nested_json_is_a_protocol_violation_not_a_recursion_error(template: str) -> None:
    text = template % ("[" * 1000 + "]" * 1000)  # orjson accepts 1024 levels; repr() of it would recurse too deep
    with pytest.raises(ProtocolViolation) as info:
        MediaStream().receive(text)
    assert info.value.close_code == 1007 and "<list of 1>" in info.value.reason


def test_secrets_file_mode_is_tightened_on_every_start(tmp_path: Path) -> None:
    first = load_local_secrets(tmp_path, create=True)
    path = tmp_path / "secrets.json"
    path.chmod(0o644)
    assert load_local_secrets(tmp_path, create=True) == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_secrets_file_that_is_a_symlink_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere.json"
    elsewhere.write_text('{"twilio_auth_token": "planted", "api_token": "planted"}')
    data = tmp_path / "data"
    data.mkdir()
    os.symlink(elsewhere, data / "secrets.json")
    with pytest.raises(ConfigError, match="symlink"):
        Settings.from_env({"SWITCHBOARD_DATA_DIR": str(data)})


async def test_extract_of_a_non_utf8_transcript_is_a_clear_error(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "call.txt"
    path.write_bytes("caller: café on Rue de l'Église\n".encode("latin-1"))
    assert await run_extract(path, as_json=False, settings_env={}) == 2
    err = capsys.readouterr().err
    assert "not UTF-8 text" in err and "Traceback" not in err


@pytest.mark.parametrize("rate", [11025, 32000])
async def test_extract_of_a_wav_at_an_unsupported_rate_is_a_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], rate: int) -> None:
    path = tmp_path / "call.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((np.sin(np.arange(rate) * 0.05) * 5000).astype("<i2").repeat(2).tobytes())
    assert await run_extract(path, as_json=False, settings_env={}) == 2
    err = capsys.readouterr().err
    assert f"{rate} Hz recordings are not supported" in err and "sox" in err
