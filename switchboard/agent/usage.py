"""What a call used, for cost: model tokens per model, TTS characters per voice, STT seconds per provider.

The call owns one :class:`CallUsage`, adds to it as providers report, and stores :meth:`CallUsage.as_json` with the
call (and counts it in ``/metrics``). Token counts come from the model's own ``usage`` report (streamed with
``stream_options={"include_usage": true}``: https://platform.openai.com/docs/api-reference/chat/create), never
estimated.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ModelUsage:
    """One model request's tokens."""

    model: str
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0

    def __post_init__(self) -> None:
        if min(self.prompt_tokens, self.completion_tokens, self.cached_tokens) < 0:
            raise ValueError(f"token counts cannot be negative: {self}")

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class _Tokens:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0


@dataclass
class CallUsage:
    """Running totals for one call."""

    models: dict[str, _Tokens] = field(default_factory=lambda: defaultdict(_Tokens))
    tts_chars: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    stt_seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add_model(self, usage: ModelUsage) -> None:
        tokens = self.models[usage.model]
        tokens.requests += 1
        tokens.prompt_tokens += usage.prompt_tokens
        tokens.completion_tokens += usage.completion_tokens
        tokens.cached_tokens += usage.cached_tokens

    def add_tts(self, voice: str, chars: int) -> None:
        if chars < 0:
            raise ValueError("TTS characters cannot be negative")
        self.tts_chars[voice] += chars

    def add_stt(self, provider: str, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("STT seconds cannot be negative")
        self.stt_seconds[provider] += seconds

    @property
    def total_tokens(self) -> int:
        return sum(t.prompt_tokens + t.completion_tokens for t in self.models.values())

    def as_json(self) -> dict[str, Any]:
        """The stored form (a ``jsonb`` column): plain dicts, sorted keys, seconds to 0.1 s."""
        return {
            "models": {name: {"requests": t.requests, "prompt_tokens": t.prompt_tokens,
                              "completion_tokens": t.completion_tokens, "cached_tokens": t.cached_tokens}
                       for name, t in sorted(self.models.items())},
            "tts_chars": dict(sorted(self.tts_chars.items())),
            "stt_seconds": {name: round(s, 1) for name, s in sorted(self.stt_seconds.items())},
        }


__all__ = ["CallUsage", "ModelUsage"]
