from __future__ import annotations

import pytest

from switchboard.tts.elevenlabs import ElevenLabsVoice
from switchboard.tts.factory import DEFAULT_VOICE_ID, VoiceConfig, VoiceConfigError, build_voice
from switchboard.tts.offline import OfflineVoice


def test_no_key_means_offline_voices_only() -> None:
    config = VoiceConfig.from_env({})
    assert config.elevenlabs is None and config.offline == ("piper", "espeak")
    voice = build_voice(VoiceConfig.from_env({"SWITCHBOARD_OFFLINE_VOICES": "espeak"}))
    assert [v.name for v in voice.voices] == ["espeak"]
    assert all(isinstance(v, OfflineVoice) for v in voice.voices)


def test_a_key_puts_elevenlabs_first() -> None:
    config = VoiceConfig.from_env({"ELEVENLABS_API_KEY": "sk_secret", "ELEVENLABS_BASE_URL": "http://127.0.0.1:9/",
                                   "SWITCHBOARD_OFFLINE_VOICES": "espeak"})
    assert config.elevenlabs is not None
    assert config.elevenlabs.ws_url == "ws://127.0.0.1:9" and config.elevenlabs.base_url == "http://127.0.0.1:9"
    assert config.elevenlabs.voice_id == DEFAULT_VOICE_ID and config.elevenlabs.model_id == "eleven_flash_v2_5"
    assert "sk_secret" not in repr(config)
    voice = build_voice(config)
    assert isinstance(voice.voices[0], ElevenLabsVoice) and [v.name for v in voice.voices] == ["elevenlabs", "espeak"]
    production = VoiceConfig.from_env({"ELEVENLABS_API_KEY": "k", "ELEVENLABS_VOICE_ID": "abc"})
    assert production.elevenlabs is not None and production.elevenlabs.ws_url == "wss://api.elevenlabs.io"
    assert production.elevenlabs.voice_id == "abc"


@pytest.mark.parametrize("env", [{"SWITCHBOARD_OFFLINE_VOICES": "festival"},
                                 {"ELEVENLABS_API_KEY": "k", "ELEVENLABS_BASE_URL": "ftp://x"},
                                 {"ELEVENLABS_API_KEY": "k", "ELEVENLABS_WS_URL": "http://x"}])
def test_bad_settings_name_the_variable(env: dict[str, str]) -> None:
    with pytest.raises(VoiceConfigError, match=r"ELEVENLABS_|SWITCHBOARD_"):
        VoiceConfig.from_env(env)
