"""The agent's voices: the per-call voice seam (:mod:`~switchboard.tts.base`), ElevenLabs and the offline voices
(Piper, espeak-ng) behind it, and the fallback between them."""
