"""Errors raised by transcription providers, local or cloud.

    TranscriptionError             base: message, ``retryable``, ``provider``
    ├── ProviderUnavailable        the engine cannot be reached or loaded (no model, no network, pool closed)
    ├── ProviderAuthError          the provider rejected our credentials; never retryable
    ├── RecognitionFailed          the engine ran but failed on this audio
    └── StreamClosedError          audio pushed to a stream after ``end()`` or ``aclose()``

``TranscriptionError(message, retryable, provider)``: ``retryable`` tells a failover composite whether
trying the same provider again can help; ``None`` takes the subclass's default. Foreign errors (ctypes, ONNX
Runtime, HTTP clients) are translated once, at the provider boundary, with ``raise ... from exc``.
"""

from switchboard.provider_error import ProviderError


class TranscriptionError(ProviderError):
    """Base of every error raised by :mod:`switchboard.transcribe`."""


class ProviderUnavailable(TranscriptionError):
    """The provider cannot serve now: a model that will not load, a host that does not answer, a closed
    pool."""

    default_retryable = True


class ProviderAuthError(TranscriptionError):
    """The provider refused our credentials; retrying with the same key cannot help."""


class RecognitionFailed(TranscriptionError):
    """The engine returned an error for one piece of audio."""


class StreamClosedError(TranscriptionError):
    """Audio was pushed to a stream that was already ended or closed (a caller bug)."""


__all__ = [
    "ProviderAuthError",
    "ProviderUnavailable",
    "RecognitionFailed",
    "StreamClosedError",
    "TranscriptionError",
]
