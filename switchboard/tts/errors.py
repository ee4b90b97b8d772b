"""Errors raised by the agent's voices (speech synthesis), cloud or offline.

    VoiceError                 base: message, ``retryable``, ``provider``
    ├── VoiceUnavailable       the voice cannot be reached or loaded (no package, no host, connection dropped)
    ├── VoiceAuthError         the provider refused our credentials; never retryable
    ├── VoiceTimeout           no audio in time: a slow first byte, a stalled stream
    ├── VoiceProtocolError     the provider sent something we cannot read (garbage, an error message)
    └── VoiceClosedError       text pushed to a stream after ``aclose()`` (a caller bug)

The base (:mod:`switchboard.provider_error`) is the one transcription uses: ``retryable`` tells the fallback
voice whether the same provider may serve the next call (a bad key will not; a dropped socket may). Foreign errors
(websockets, the ElevenLabs SDK, ctypes, ONNX Runtime) are translated once, at the provider boundary, with
``raise ... from exc``.
"""

from switchboard.provider_error import ProviderError


class VoiceError(ProviderError):
    """Base of every error raised by :mod:`switchboard.tts`."""


class VoiceUnavailable(VoiceError):
    """The voice cannot serve now: a package that is not installed, a host that does not answer, a dropped
    connection."""

    default_retryable = True


class VoiceAuthError(VoiceError):
    """The provider refused our credentials (or our quota); retrying with the same key cannot help."""


class VoiceTimeout(VoiceError):
    """Audio did not come in time (first byte, or the next byte of a started turn)."""

    default_retryable = True


class VoiceProtocolError(VoiceError):
    """The provider answered with something that is not its protocol, or with an error message."""

    default_retryable = True


class VoiceClosedError(VoiceError):
    """Text was pushed to a stream that was already closed."""


__all__ = [
    "VoiceAuthError",
    "VoiceClosedError",
    "VoiceError",
    "VoiceProtocolError",
    "VoiceTimeout",
    "VoiceUnavailable",
]
