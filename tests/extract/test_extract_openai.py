"""OpenAIExtractor through the real openai SDK against the loopback emulator: success, every fault, fallback."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import httpx
import openai
import pytest

from switchboard.extract.errors import (
    ContentFiltered,
    ExtractionError,
    ExtractionRefused,
    ExtractionTruncated,
    MalformedResponse,
    ProviderAuthError,
    ProviderStatusError,
    ProviderUnavailable,
)
from switchboard.extract.extractor import FallbackExtractor
from switchboard.extract.ground import UNGROUNDED
from switchboard.extract.offline import OfflineExtractor
from switchboard.extract.openai_client import OpenAIExtractor
from switchboard.extract.schema import Transcript
from tests.emulators.openai_server import MODEL, Fault, OpenAIEmulator

CALL = Transcript.from_text("""\
agent: Northgate Property Maintenance, how can I help?
caller: Hi, there's water pouring through my kitchen ceiling.
agent: Can I take your name, please?
caller: It's Joanne Whitaker.
agent: And the address?
caller: Flat three, twenty seven Ashgrove Terrace, Leeds, postcode L S six, two A B.
agent: What's the best number to call you back on?
caller: Oh seven seven double oh, nine double oh, one two three.""")


@pytest.fixture(scope="module")
async def shared_emulator() -> AsyncIterator[OpenAIEmulator]:
    async with OpenAIEmulator() as emu:
        yield emu


@pytest.fixture(scope="module")
async def shared_client(shared_emulator: OpenAIEmulator) -> AsyncIterator[OpenAIExtractor]:
    # One SDK client for the module: building one loads the CA bundle (~0.3 s on this machine).
    async with OpenAIExtractor(shared_emulator.api_key, base_url=shared_emulator.base_url) as ex:
        yield ex


@pytest.fixture
def emulator(shared_emulator: OpenAIEmulator) -> OpenAIEmulator:
    shared_emulator.clear()
    shared_emulator.requests.clear()
    return shared_emulator


@pytest.fixture
def client(shared_client: OpenAIExtractor) -> OpenAIExtractor:
    return shared_client.with_options(timeout_s=2, max_retries=2)


async def test_success_returns_facts_from_the_transcript(client: OpenAIExtractor, emulator: OpenAIEmulator) -> None:
    result = await client.extract(CALL)
    assert (result.source, result.model, result.fallback_reason) == ("openai", MODEL, None)
    facts = result.facts
    assert (facts.caller_name, facts.callback_number, facts.postcode) == ("Joanne Whitaker", "+447700900123", "LS6 2AB")
    assert (facts.urgency, facts.issue_category) == ("emergency", "leak")
    [request] = emulator.requests
    assert request.headers["authorization"] == "Bearer test-key"
    assert request.body["model"] == "gpt-4o-mini"
    assert [m["role"] for m in request.body["messages"]] == ["system", "user"]
    assert request.body["messages"][1]["content"] == CALL.render()
    spec = request.body["response_format"]["json_schema"]
    assert spec["strict"] is True and spec["schema"]["additionalProperties"] is False


async def test_scripted_answer_is_normalised(client: OpenAIExtractor, emulator: OpenAIEmulator) -> None:
    emulator.scripted = {"caller_name": "Jo", "callback_number": "07700 900999", "address": None, "postcode": "ls62ab",
                         "urgency": "routine", "issue_category": "other", "summary": "two\nlines",
                         "lead_segment": "other"}
    facts = (await client.extract(CALL)).facts
    assert (facts.callback_number, facts.postcode, facts.summary) == ("+447700900999", "LS6 2AB", "two lines")


async def test_model_values_are_checked_against_the_transcript(client: OpenAIExtractor,
                                                               emulator: OpenAIEmulator) -> None:
    sure = {"source": "said", "confidence": 1.0, "alternatives": []}
    emulator.scripted = {"caller_name": "Joanne Whitaker", "callback_number": "07700 900999", "address": None,
                         "postcode": "LS6 2AB", "urgency": "emergency", "issue_category": "leak", "summary": "leak",
                         "lead_segment": "tenant",
                         "evidence": {"caller_name": sure, "callback_number": sure, "address": None,
                                      "postcode": sure, "urgency": None, "issue_category": None,
                                      "lead_segment": None}}
    facts = (await client.extract(CALL)).facts
    assert facts.evidence is not None and facts.evidence.callback_number is not None
    assert facts.callback_number == "+447700900999"  # the model's value stays …
    assert facts.evidence.callback_number.confidence == UNGROUNDED  # … but nobody said it
    assert facts.evidence.callback_number.alternatives == ["+447700900123"]
    assert facts.needs_confirmation == ["callback_number"]
    assert facts.evidence.postcode is not None and facts.evidence.postcode.confidence > 0.9


async def test_429_then_success_is_retried_by_the_sdk(client: OpenAIExtractor, emulator: OpenAIEmulator) -> None:
    emulator.inject(Fault.http(429, retry_after_ms=10))
    result = await client.extract(CALL)
    assert result.facts.caller_name == "Joanne Whitaker"
    assert [(r.status, r.retry_count) for r in emulator.requests] == [(429, 0), (200, 1)]


@pytest.mark.parametrize("status", [500, 503])
async def test_5xx_then_success(client: OpenAIExtractor, emulator: OpenAIEmulator, status: int) -> None:
    emulator.inject(Fault.http(status, retry_after_ms=10), times=2)
    assert (await client.extract(CALL)).source == "openai"
    assert [r.status for r in emulator.requests] == [status, status, 200]


async def test_429_every_time_gives_up_after_the_retries(client: OpenAIExtractor, emulator: OpenAIEmulator) -> None:
    emulator.inject(Fault.http(429, retry_after_ms=10), times=None)
    with pytest.raises(ProviderStatusError) as info:
        await client.extract(CALL)
    assert (info.value.status, info.value.retryable, info.value.reason) == (429, True, "http_429")
    assert [r.retry_count for r in emulator.requests] == [0, 1, 2]


async def test_should_retry_false_is_not_retried(client: OpenAIExtractor, emulator: OpenAIEmulator) -> None:
    emulator.inject(Fault.http(500, should_retry=False))
    with pytest.raises(ProviderStatusError) as info:
        await client.extract(CALL)
    assert (info.value.status, info.value.retryable) == (500, True)
    assert len(emulator.requests) == 1


async def test_wrong_key_is_an_auth_error_and_not_retried(emulator: OpenAIEmulator) -> None:
    async with OpenAIExtractor("sk-wrong", base_url=emulator.base_url) as ex:
        with pytest.raises(ProviderAuthError) as info:
            await ex.extract(CALL)
    assert (info.value.status, info.value.retryable) == (401, False)
    assert len(emulator.requests) == 1


async def test_injected_401(client: OpenAIExtractor, emulator: OpenAIEmulator) -> None:
    emulator.inject(Fault.http(401))
    with pytest.raises(ProviderAuthError):
        await client.extract(CALL)


@pytest.mark.parametrize("fault,error,reason,retryable", [
    ("refusal", ExtractionRefused, "refusal", False),
    ("length", ExtractionTruncated, "length", False),
    ("content_filter", ContentFiltered, "content_filter", False),
    ("schema_violation", MalformedResponse, "schema", True),
    ("empty_body", MalformedResponse, "no_choices", True),
    ("truncated_body", MalformedResponse, "bad_json", True),
])
async def test_bad_answers(client: OpenAIExtractor, emulator: OpenAIEmulator, fault: str,
                           error: type[ExtractionError], reason: str, retryable: bool) -> None:
    emulator.inject(Fault.named(fault))
    with pytest.raises(error) as info:
        await client.extract(CALL)
    assert (type(info.value), info.value.reason, info.value.retryable) == (error, reason, retryable)
    assert len(emulator.requests) == 1
    assert (await client.extract(CALL)).source == "openai"  # the next request is fine again


async def test_connection_reset_is_retried_then_unavailable(client: OpenAIExtractor,
                                                             emulator: OpenAIEmulator) -> None:
    emulator.inject(Fault.named("reset"), times=2)
    ex = client.with_options(max_retries=1)
    with pytest.raises(ProviderUnavailable) as info:
        await ex.extract(CALL)
    assert (info.value.reason, info.value.retryable) == ("connection", True)
    assert isinstance(info.value.__cause__, openai.APIConnectionError)
    assert len(emulator.requests) == 2
    emulator.inject(Fault.named("reset"))
    assert (await ex.extract(CALL)).source == "openai"  # one reset, then the retry succeeds


async def test_slow_answer_times_out_per_attempt(client: OpenAIExtractor, emulator: OpenAIEmulator) -> None:
    emulator.inject(Fault.slow(5.0), times=None)
    started = time.monotonic()
    with pytest.raises(ProviderUnavailable) as info:
        await client.with_options(timeout_s=0.3, max_retries=1).extract(CALL)
    elapsed = time.monotonic() - started
    assert info.value.reason == "timeout"
    assert len(emulator.requests) == 2
    assert 0.6 <= elapsed < 3.0  # two 0.3 s attempts plus the SDK's backoff (≤ 0.5 s)


async def test_nothing_listening_is_unavailable() -> None:
    async with OpenAIEmulator() as emu:
        base_url = emu.base_url
    async with OpenAIExtractor("k", base_url=base_url, max_retries=0) as ex:
        with pytest.raises(ProviderUnavailable):
            await ex.extract(CALL)


async def test_fallback_records_why(client: OpenAIExtractor, emulator: OpenAIEmulator) -> None:
    emulator.inject(Fault.named("refusal"))
    extractor = FallbackExtractor(client, OfflineExtractor())
    fell_back = await extractor.extract(CALL)
    primary = await extractor.extract(CALL)
    assert (fell_back.source, fell_back.model) == ("offline", None)
    assert fell_back.fallback_reason is not None and fell_back.fallback_reason.startswith("refusal:")
    assert fell_back.facts.caller_name == "Joanne Whitaker"
    assert (primary.source, primary.fallback_reason) == ("openai", None)
    assert extractor.stats() == {"primary_ok": 1, "fallbacks": {"refusal": 1}}


async def test_fallback_after_sdk_retries_are_spent(client: OpenAIExtractor, emulator: OpenAIEmulator) -> None:
    emulator.inject(Fault.http(503, retry_after_ms=1), times=None)
    result = await FallbackExtractor(client.with_options(max_retries=1), OfflineExtractor()).extract(CALL)
    assert (result.source, result.fallback_reason and result.fallback_reason.split(":")[0]) == ("offline", "http_503")
    assert len(emulator.requests) == 2


async def test_without_primary_runs_offline_only() -> None:
    result = await FallbackExtractor(None, OfflineExtractor()).extract(CALL)
    assert (result.source, result.fallback_reason) == ("offline", None)


async def test_emulator_rejects_a_non_strict_schema(emulator: OpenAIEmulator) -> None:
    schema = {"type": "object", "properties": {"caller_name": {"type": "string"}, "urgency": {"type": "string"}},
              "required": ["caller_name"], "additionalProperties": False}
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "caller: hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "Lead", "strict": True,
                                                                       "schema": schema}}}
    async with httpx.AsyncClient(base_url=emulator.base_url, headers={"Authorization": "Bearer test-key"}) as http:
        missing_required = await http.post("/chat/completions", json=body)
        schema["required"] = ["caller_name", "urgency"]
        body["response_format"]["json_schema"]["strict"] = False  # type: ignore[index]
        not_strict = await http.post("/chat/completions", json=body)
        body["response_format"]["json_schema"]["strict"] = True  # type: ignore[index]
        del schema["additionalProperties"]
        open_object = await http.post("/chat/completions", json=body)
        schema["additionalProperties"] = False
        ok = await http.post("/chat/completions", json=body)
    for response in (missing_required, not_strict, open_object):
        assert response.status_code == 400
        assert response.json()["error"]["param"] == "response_format"
    assert ok.status_code == 200 and ok.headers["x-request-id"].startswith("req_")
    content = ok.json()["choices"][0]["message"]["content"]
    assert set(json.loads(content)) == {"caller_name", "urgency"}
    assert ok.json()["usage"]["total_tokens"] > 0
