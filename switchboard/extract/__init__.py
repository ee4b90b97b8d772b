"""Call extraction: transcript in, lead fields (:class:`CallFacts`) out.

    schema.py         CallFacts (the strict JSON schema), Transcript/Turn (input), Extraction (result)
    errors.py         ExtractionError tree (retryable, reason)
    patterns.py       spoken numbers, phone numbers, postcodes and addresses in ASR text
    offline.py        OfflineExtractor: rules and keyword tables (default with no key; the fallback)
    openai_client.py  OpenAIExtractor: gpt-4o-mini structured outputs through the official SDK
    extractor.py      Extractor protocol, FallbackExtractor (OpenAI → offline), IncrementalExtractor (when to run
                      during a call)
    cli.py            run_extract: ``switchboard extract FILE [--json]``

Only pure modules are imported here; the OpenAI SDK loads with ``switchboard.extract.openai_client``.
"""

from switchboard.extract.errors import (
    ContentFiltered,
    ExtractionError,
    ExtractionRefused,
    ExtractionTruncated,
    InvalidTranscript,
    MalformedResponse,
    ProviderAuthError,
    ProviderStatusError,
    ProviderUnavailable,
)
from switchboard.extract.extractor import Extractor, FallbackExtractor, IncrementalExtractor
from switchboard.extract.offline import OfflineExtractor
from switchboard.extract.schema import CallFacts, Extraction, Transcript, Turn

__all__ = [
    "CallFacts",
    "ContentFiltered",
    "Extraction",
    "ExtractionError",
    "ExtractionRefused",
    "ExtractionTruncated",
    "Extractor",
    "FallbackExtractor",
    "IncrementalExtractor",
    "InvalidTranscript",
    "MalformedResponse",
    "OfflineExtractor",
    "ProviderAuthError",
    "ProviderStatusError",
    "ProviderUnavailable",
    "Transcript",
    "Turn",
]
