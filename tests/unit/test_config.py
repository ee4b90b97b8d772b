"""Settings: validated once, secrets hidden, local secrets generated once and reused."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from switchboard.config import ConfigError, Secret, Settings


def test_zero_config_generates_and_reuses_local_secrets(tmp_path: Path) -> None:
    env = {"SWITCHBOARD_DATA_DIR": str(tmp_path)}
    first = Settings.from_env(env)
    again = Settings.from_env(env)
    assert first.twilio_auth_token == again.twilio_auth_token
    assert first.api_token == again.api_token
    assert stat.S_IMODE(os.stat(tmp_path / "secrets.json").st_mode) == 0o600
    assert first.database_url is None and first.transcriber == "local"
    assert first.public_url == "http://127.0.0.1:8000"


def test_environment_wins_and_secrets_never_show(tmp_path: Path) -> None:
    env = {"SWITCHBOARD_DATA_DIR": str(tmp_path), "TWILIO_AUTH_TOKEN": "tok-123", "DATABASE_URL": "postgres://u:pw@h/db",
           "PUBLIC_URL": "https://sb.example.com", "SWITCHBOARD_REQUIRE_WS_SIGNATURE": "yes"}
    s = Settings.from_env(env)
    assert s.twilio_auth_token.reveal() == "tok-123"
    assert s.require_ws_signature is True
    shown = repr(s) + str(s.database_url)
    assert "tok-123" not in shown and "pw" not in shown


@pytest.mark.parametrize(("name", "value"), [
    ("SWITCHBOARD_PORT", "eighty"),
    ("SWITCHBOARD_PORT", "70000"),
    ("PUBLIC_URL", "ftp://x"),
    ("PUBLIC_URL", "https://x/?a=1"),
    ("SWITCHBOARD_REQUIRE_WS_SIGNATURE", "maybe"),
    ("SWITCHBOARD_TRANSCRIBER", "whisper"),
    ("SWITCHBOARD_STT_WORKERS", "0"),
])
def test_bad_values_fail_at_start_naming_the_variable(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name.split("_", 1)[-1] if name != "PUBLIC_URL" else "PUBLIC_URL"):
        Settings.from_env({"SWITCHBOARD_DATA_DIR": str(tmp_path), name: value})


def test_secret_equality_is_by_value() -> None:
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")


@pytest.mark.parametrize(("env", "required"), [
    ({}, False),  # zero-config: the generated token signs nothing Twilio sends
    ({"TWILIO_AUTH_TOKEN": "real"}, True),  # a real token: Twilio signs every upgrade, so we insist
    ({"TWILIO_AUTH_TOKEN": "real", "SWITCHBOARD_REQUIRE_WS_SIGNATURE": "0"}, False),  # the explicit override
    ({"SWITCHBOARD_REQUIRE_WS_SIGNATURE": "1"}, True),
])
def test_media_stream_signature_is_required_whenever_a_real_token_is_configured(
        tmp_path: Path, env: dict[str, str], required: bool) -> None:
    assert Settings.from_env({"SWITCHBOARD_DATA_DIR": str(tmp_path), **env}).ws_signature_required is required


def test_limits_have_defaults_and_are_validated(tmp_path: Path) -> None:
    s = Settings.from_env({"SWITCHBOARD_DATA_DIR": str(tmp_path)})
    assert (s.max_body_bytes, s.ws_max_bytes, s.ws_start_timeout_s) == (65536, 131072, 5.0)
    assert (s.max_calls, s.max_connections, s.drain_s) == (100, 500, 60.0)
    for name, value in [("SWITCHBOARD_MAX_CALLS", "0"), ("SWITCHBOARD_WS_START_TIMEOUT_S", "0"),
                        ("SWITCHBOARD_MAX_BODY_BYTES", "10"), ("SWITCHBOARD_DRAIN_S", "-1")]:
        with pytest.raises(ConfigError, match=name):
            Settings.from_env({"SWITCHBOARD_DATA_DIR": str(tmp_path), name: value})


def test_stt_vocabulary_is_a_comma_separated_list(tmp_path: Path) -> None:
    env = {"SWITCHBOARD_DATA_DIR": str(tmp_path)}
    settings = Settings.from_env({**env, "SWITCHBOARD_STT_VOCABULARY": " Ashgrove Terrace, Headingley,, "})
    assert settings.stt_vocabulary == ("Ashgrove Terrace", "Headingley")
    assert Settings.from_env(env).stt_vocabulary == ()


def test_answer_settings_are_read_and_checked(tmp_path: Path) -> None:
    env = {"SWITCHBOARD_DATA_DIR": str(tmp_path), "SWITCHBOARD_ANSWER": "Auto",
           "SWITCHBOARD_BUSINESS_HOURS": "Mon-Fri 08:00-18:00; Europe/London", "SWITCHBOARD_OPERATOR_TIMEOUT_S": "15",
           "SWITCHBOARD_AGENT_PROFILE": str(tmp_path / "acme.toml")}
    s = Settings.from_env(env)
    assert s.answer.value == "auto" and s.operator_timeout_s == 15 and s.agent_profile == tmp_path / "acme.toml"
    assert s.business_hours is not None and len(s.business_hours.windows) == 5
    default = Settings.from_env({"SWITCHBOARD_DATA_DIR": str(tmp_path)})
    assert default.answer.value == "operator" and default.business_hours is None and default.agent_profile is None


@pytest.mark.parametrize(("name", "value"), [
    ("SWITCHBOARD_ANSWER", "robot"),
    ("SWITCHBOARD_BUSINESS_HOURS", "Mon-Fri 18:00-08:00"),
    ("SWITCHBOARD_BUSINESS_HOURS", "weekdays; Mars/Olympus"),
    ("SWITCHBOARD_OPERATOR_TIMEOUT_S", "2"),
])
def test_bad_answer_settings_fail_at_start(tmp_path: Path, name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        Settings.from_env({"SWITCHBOARD_DATA_DIR": str(tmp_path), name: value})
