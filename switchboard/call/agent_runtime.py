"""What every agent call of one app shares, built once by the lifespan: profiles, the voice chain with its greeting
cache, the model client, the Twilio REST client (transfers, outbound calls) and the emergency alerter.

The voice chain loads its offline engines (Piper ≈ 1 s) at start-up when the server answers with the agent
(``SWITCHBOARD_ANSWER`` agent or auto), and on the first outbound call otherwise; each profile's greeting is
rendered once into the :class:`~switchboard.tts.fallback.PromptCache`, so a call's first words go out as soon as
its stream starts.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from openai import AsyncOpenAI

from switchboard.agent.dialog import Dialog, DialogStats
from switchboard.agent.fallback_dialog import FallbackDialog
from switchboard.agent.intake import OfflineDialog
from switchboard.agent.openai_dialog import DEFAULT_BASE_URL, OpenAIDialog
from switchboard.agent.profile import AgentProfile, ProfileError, load_profile
from switchboard.agent.timing import TurnTiming
from switchboard.alerts.sms import SmsAlerter
from switchboard.tts.errors import VoiceError
from switchboard.tts.fallback import FallbackVoice
from switchboard.twilio.calls import TwilioCalls

log = logging.getLogger(__name__)

VoiceBuilder = Callable[[], FallbackVoice]


class AgentRuntime:
    def __init__(self, *, profile_path: Path | None, operator_number: str | None, calls: TwilioCalls,
                 voice_builder: VoiceBuilder, openai_key: str | None = None, openai_base_url: str | None = None,
                 alerter: SmsAlerter | None = None, timing: TurnTiming | None = None,
                 caller_id: str | None = None, oncall_number: str | None = None) -> None:
        self._profile_path, self._operator, self._oncall = profile_path, operator_number, oncall_number
        self.calls, self.alerter, self.caller_id = calls, alerter, caller_id
        self.timing = timing or TurnTiming()
        self._voice_builder = voice_builder
        self._voice: FallbackVoice | None = None
        self._lock = asyncio.Lock()
        self._profiles: dict[str, AgentProfile] = {"default": self._load(profile_path)}
        self._openai = None if openai_key is None else AsyncOpenAI(
            api_key=openai_key, base_url=openai_base_url or DEFAULT_BASE_URL, timeout=10, max_retries=1)

    # -- profiles -----------------------------------------------------------------------------------------------

    @property
    def default_profile(self) -> AgentProfile:
        return self._profiles["default"]

    def profile_path(self, name: str) -> Path | None:
        """A named profile is ``NAME.toml`` next to the configured one (or the shipped default's directory)."""
        base = self._profile_path.parent if self._profile_path is not None else None
        if base is None:
            return None
        path = base / f"{name}.toml"
        return path if path.is_file() else None

    def profile(self, name: str | None) -> AgentProfile:
        """The named profile (loaded and checked once), or the default when it is unknown or unreadable."""
        if not name or name == "default":
            return self.default_profile
        if name not in self._profiles:
            path = self.profile_path(name)
            try:
                self._profiles[name] = self._load(path) if path is not None else self.default_profile
            except ProfileError as exc:
                log.error("agent profile %s refused, using the default: %s", name, exc)
                self._profiles[name] = self.default_profile
        return self._profiles[name]

    def _load(self, path: Path | None) -> AgentProfile:
        """Empty recipient lists: alerts go to ``ONCALL_NUMBER`` when set, else (like transfers) the operator."""
        profile = load_profile(path)
        if not profile.alert_recipients and self._oncall:
            profile = replace(profile, alert_recipients=(self._oncall,))
        return profile.with_operator(self._operator)

    # -- voice and dialog ---------------------------------------------------------------------------------------

    async def voice(self) -> FallbackVoice:
        """The voice chain, loaded on first use (in a thread: engines load for up to a second)."""
        async with self._lock:
            if self._voice is None:
                self._voice = await asyncio.to_thread(self._voice_builder)
            return self._voice

    async def warm(self, profile: AgentProfile | None = None) -> None:
        """Render the profile's greeting into the prompt cache (a failure only costs the first call latency)."""
        voice = await self.voice()
        try:
            await voice.warm((profile or self.default_profile).line("greeting"))
        except VoiceError as exc:  # the call still synthesises it live
            log.warning("could not pre-render the greeting: %s", exc)

    def dialog(self, profile: AgentProfile, stats: DialogStats) -> FallbackDialog:
        """A dialog for one call: the model when keyed (one shared client), the offline script behind it."""
        model: Dialog | None = None if self._openai is None else OpenAIDialog(self._openai, profile, stats=stats)
        return FallbackDialog(model, OfflineDialog(profile), first_token_timeout_s=profile.first_token_timeout_s,
                              stats=stats)

    async def aclose(self) -> None:
        await self.calls.aclose()
        if self._openai is not None:
            await self._openai.close()


__all__ = ["AgentRuntime", "VoiceBuilder"]
