"""OpenAI structured-output extraction (``chat.completions.parse`` with :class:`CallFacts` as a strict schema).

The SDK retries connection errors, timeouts, 408/409/429 and 5xx itself (``max_retries``, honouring
``retry-after-ms``), so this module does not retry again: it translates whatever finally comes out into the
:mod:`switchboard.extract.errors` tree, once, here. Two SDK leniencies are closed here (read in the openai SDK's
``_base_client.py``; shapes: https://platform.openai.com/docs/api-reference/chat/object): a 200 body of ``{}``
parses to a completion with no ``choices``, and a truncated 200 body raises a bare ``json.JSONDecodeError``. The raw
response is therefore checked before the SDK parses it. The model's facts are then checked against the transcript
(:func:`~switchboard.extract.ground.ground`): its values stay, the evidence is the grammar's where they agree and
low where nothing said supports the value.
"""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any, Final, NoReturn

import openai
from openai import AsyncOpenAI
from pydantic import ValidationError

from switchboard.extract.errors import (
    ContentFiltered,
    ExtractionError,
    ExtractionRefused,
    ExtractionTruncated,
    MalformedResponse,
    ProviderStatusError,
    ProviderUnavailable,
)
from switchboard.extract.ground import ground
from switchboard.extract.schema import CallFacts, Extraction, Transcript

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
SYSTEM_PROMPT: Final = (
    "You extract lead details from a phone call to a UK property maintenance line. The user message is the "
    "call transcript from speech recognition, one turn a line, 'caller:' or 'agent:'. Numbers and letters may be "
    "spoken as words ('oh seven seven double oh' = 07700; 'L S six' = LS6). Use only what was said: a field "
    "that was not said is null. The agent's own decision on urgency ('that's an emergency', 'book it as "
    "urgent') wins over your judgement. A later correction by the caller wins over what they said before; a "
    "read-back the caller agreed to is confirmed. For evidence: the source of each non-null field (said, "
    "spelled, confirmed, corrected; inferred for urgency, category and segment), your confidence that the value "
    "is right as heard (low when recognition looks garbled, e.g. a postcode area that does not exist), and "
    "other values it could be."
)
MAX_COMPLETION_TOKENS: Final = 500
"""A CallFacts answer is ~100–150 tokens; the cap bounds cost and time on a runaway answer."""


class OpenAIExtractor:
    """:class:`~switchboard.extract.extractor.Extractor` on OpenAI; raises only :class:`ExtractionError`.

    ``base_url`` None means the public API: the SDK's ``OPENAI_BASE_URL`` environment fallback is bypassed so the
    endpoint is always what configuration says. ``timeout_s`` applies per attempt, so a call may take up to
    about ``(max_retries + 1) × timeout_s`` plus backoff.
    """

    name = "openai"

    def __init__(self, api_key: str, *, base_url: str | None = None, model: str = "gpt-4o-mini",
                 timeout_s: float = 20, max_retries: int = 2) -> None:
        self.model = model
        self._client = AsyncOpenAI(api_key=api_key, base_url=base_url or DEFAULT_BASE_URL, timeout=timeout_s,
                                   max_retries=max_retries)

    async def extract(self, transcript: Transcript) -> Extraction:
        try:
            raw = await self._client.chat.completions.with_raw_response.parse(
                model=self.model,
                messages=[{"role": "system", "content": SYSTEM_PROMPT},
                          {"role": "user", "content": transcript.render()}],
                response_format=CallFacts,
                temperature=0,
                max_completion_tokens=MAX_COMPLETION_TOKENS,
            )
            _check_body(raw.http_response.content, raw.request_id)
            completion = raw.parse()
        except (openai.OpenAIError, ValidationError) as exc:
            _translate(exc)
        message = completion.choices[0].message
        if message.parsed is None:
            if message.refusal:
                raise ExtractionRefused(message.refusal)
            raise MalformedResponse("the completion has neither content nor a refusal", reason="no_content")
        facts = await asyncio.to_thread(ground, message.parsed, transcript)
        return Extraction(facts=facts, source="openai", model=completion.model or self.model)

    def with_options(self, *, timeout_s: float | None = None, max_retries: int | None = None) -> OpenAIExtractor:
        """A copy with other limits sharing this one's connection pool (e.g. a short timeout and no retries for
        the extractions during a call, the defaults for the final one). Close only the original."""
        clone = copy.copy(self)
        options: dict[str, Any] = {}
        if timeout_s is not None:
            options["timeout"] = timeout_s
        if max_retries is not None:
            options["max_retries"] = max_retries
        clone._client = self._client.with_options(**options)
        return clone

    async def close(self) -> None:
        """Close the connection pool."""
        await self._client.close()

    async def __aenter__(self) -> OpenAIExtractor:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


def _check_body(body: bytes, request_id: str | None) -> None:
    """Refuse a 200 body the SDK would accept but cannot be a completion: not JSON, or no ``choices``."""
    try:
        document = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"response body is not JSON (request {request_id})", reason="bad_json") from exc
    choices = document.get("choices") if isinstance(document, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict) \
            or not isinstance(choices[0].get("message"), dict):
        raise MalformedResponse(f"the completion has no choices (request {request_id})", reason="no_choices")


def _translate(exc: Exception) -> NoReturn:
    """Raise the :class:`ExtractionError` for a foreign error, chained to it."""
    if isinstance(exc, openai.LengthFinishReasonError):
        raise ExtractionTruncated("the answer hit the token limit") from exc
    if isinstance(exc, openai.ContentFilterFinishReasonError):
        raise ContentFiltered("the answer was stopped by the content filter") from exc
    if isinstance(exc, openai.APITimeoutError):
        raise ProviderUnavailable("request timed out", reason="timeout") from exc
    if isinstance(exc, openai.APIConnectionError):
        raise ProviderUnavailable(f"connection failed: {exc}", reason="connection") from exc
    if isinstance(exc, openai.APIStatusError):
        raise ProviderStatusError.for_status(exc.status_code, exc.message) from exc
    if isinstance(exc, ValidationError):
        raise MalformedResponse(f"content does not match CallFacts ({exc.error_count()} errors)",
                                reason="schema") from exc
    raise ExtractionError(f"openai: {exc}", reason="openai_error") from exc


__all__ = ["DEFAULT_BASE_URL", "SYSTEM_PROMPT", "OpenAIExtractor"]
