"""Usage accounting per call."""

from __future__ import annotations

import pytest

from switchboard.agent.usage import CallUsage, ModelUsage


def test_usage_adds_up_per_model_voice_and_provider() -> None:
    usage = CallUsage()
    usage.add_model(ModelUsage("gpt-4o-mini", 120, 30, cached_tokens=100))
    usage.add_model(ModelUsage("gpt-4o-mini", 200, 25))
    usage.add_tts("elevenlabs", 180)
    usage.add_tts("espeak", 40)
    usage.add_stt("deepgram", 12.34)
    usage.add_stt("deepgram", 1.0)
    assert usage.total_tokens == 375
    assert usage.as_json() == {
        "models": {"gpt-4o-mini": {"requests": 2, "prompt_tokens": 320, "completion_tokens": 55,
                                   "cached_tokens": 100}},
        "tts_chars": {"elevenlabs": 180, "espeak": 40},
        "stt_seconds": {"deepgram": 13.3},
    }


def test_negative_amounts_are_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        ModelUsage("m", -1, 0)
    with pytest.raises(ValueError, match="negative"):
        CallUsage().add_tts("x", -5)
