"""Pure audio DSP for telephony: G.711 μ-law, streaming resampling, jitter buffering, track alignment, WAV, endpointing.

This package never imports ``switchboard``, asyncio or sockets, and never reads the wall clock: time is always an
argument (Twilio media timestamps or sample counts), so every part is deterministic and testable without I/O.
"""

from typing import Final

TWILIO_RATE: Final = 8000
"""Twilio Media Streams carry μ-law at 8 kHz mono."""
SAMPLES_PER_MS: Final = TWILIO_RATE // 1000
FRAME_MS: Final = 20
FRAME_SAMPLES: Final = TWILIO_RATE * FRAME_MS // 1000
"""160 μ-law bytes: Twilio's usual (not guaranteed) frame size."""
MULAW_SILENCE: Final = 0xFF
"""μ-law code for zero amplitude (G.711 positive zero)."""
STT_RATE: Final = 16000
"""Rate the recognisers take."""

__all__ = ["FRAME_MS", "FRAME_SAMPLES", "MULAW_SILENCE", "SAMPLES_PER_MS", "STT_RATE", "TWILIO_RATE"]
