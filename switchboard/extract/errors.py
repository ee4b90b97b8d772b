"""Errors raised by call extraction.

    ExtractionError                 base: message, ``retryable``, ``reason`` (short code), ``status`` (HTTP or None)
    ├── InvalidTranscript           a text transcript that is not ``caller: …`` / ``agent: …`` lines (caller bug)
    ├── ExtractionRefused           the model refused (``message.refusal``); the same input will be refused again
    ├── ExtractionTruncated         ``finish_reason: "length"``: the JSON was cut at the token limit
    ├── ContentFiltered             ``finish_reason: "content_filter"``
    ├── MalformedResponse           a 200 whose body or content is not a valid ``CallFacts`` (bad JSON, ``{}``,
    │                               schema violation); retryable, a well-formed answer may follow
    ├── ProviderStatusError         an HTTP error status after the SDK's own retries; retryable for 408/409/429/5xx
    │   └── ProviderAuthError       401/403: the key is wrong; never retryable
    └── ProviderUnavailable         connection refused/reset or timed out (after the SDK's retries)

Foreign errors (openai, pydantic, json) are translated once, in :mod:`switchboard.extract.openai_client`, with
``raise … from exc``; ``reason`` is what :class:`~switchboard.extract.extractor.FallbackExtractor` records as the
fallback reason.
"""

from __future__ import annotations

RETRYABLE_STATUS = frozenset({408, 409, 429})
"""Statuses worth retrying besides 5xx: the same set the openai SDK retries."""


class ExtractionError(Exception):
    """Base of every error raised by :mod:`switchboard.extract`."""

    default_retryable: bool = False
    default_reason: str = "error"

    def __init__(self, message: str, *, retryable: bool | None = None, reason: str | None = None,
                 status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = self.default_retryable if retryable is None else retryable
        self.reason = reason or self.default_reason
        self.status = status

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


class InvalidTranscript(ExtractionError, ValueError):
    """A transcript line without a ``caller:`` or ``agent:`` prefix."""

    default_reason = "invalid_transcript"


class ExtractionRefused(ExtractionError):
    """The model answered with a refusal instead of content."""

    default_reason = "refusal"


class ExtractionTruncated(ExtractionError):
    """The answer hit the token limit; the JSON is incomplete."""

    default_reason = "length"


class ContentFiltered(ExtractionError):
    """The provider's content filter stopped the answer."""

    default_reason = "content_filter"


class MalformedResponse(ExtractionError):
    """A successful status whose body is not a usable completion."""

    default_retryable = True
    default_reason = "malformed"


class ProviderStatusError(ExtractionError):
    """The provider answered with an error status (the SDK has already retried what it retries)."""

    @classmethod
    def for_status(cls, status: int, message: str) -> ProviderStatusError:
        """The right subclass and ``retryable`` flag for ``status``."""
        if status in (401, 403):
            return ProviderAuthError(message, status=status, reason=f"http_{status}")
        retryable = status >= 500 or status in RETRYABLE_STATUS
        return cls(message, retryable=retryable, status=status, reason=f"http_{status}")


class ProviderAuthError(ProviderStatusError):
    """The provider rejected our API key."""

    default_reason = "auth"


class ProviderUnavailable(ExtractionError):
    """No answer: connection refused or reset, or the request timed out."""

    default_retryable = True
    default_reason = "unavailable"


__all__ = [
    "ContentFiltered",
    "ExtractionError",
    "ExtractionRefused",
    "ExtractionTruncated",
    "InvalidTranscript",
    "MalformedResponse",
    "ProviderAuthError",
    "ProviderStatusError",
    "ProviderUnavailable",
]
