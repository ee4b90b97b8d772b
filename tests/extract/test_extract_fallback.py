"""FallbackExtractor with in-repo fakes: which errors fall back, what is recorded, what is closed."""

from __future__ import annotations

import pytest

from switchboard.extract.errors import ExtractionError, ProviderAuthError, ProviderUnavailable
from switchboard.extract.extractor import FallbackExtractor
from switchboard.extract.offline import OfflineExtractor
from switchboard.extract.schema import CallFacts, Extraction, Transcript

CALL = Transcript.from_text("agent: Your name?\ncaller: It's Ann Lee, the boiler is broken.")
FACTS = CallFacts(caller_name="Model Answer", callback_number=None, address=None, postcode=None, urgency="routine",
                  issue_category="other", summary="s", lead_segment="other")


class FakePrimary:
    def __init__(self, *outcomes: Exception | None) -> None:
        self.outcomes = list(outcomes)
        self.closed = False

    async def extract(self, transcript: Transcript) -> Extraction:
        outcome = self.outcomes.pop(0)
        if outcome is not None:
            raise outcome
        return Extraction(facts=FACTS, source="openai", model="fake-model")

    async def close(self) -> None:
        self.closed = True


async def test_primary_result_is_passed_through_and_close_reaches_it() -> None:
    primary = FakePrimary(None)
    extractor = FallbackExtractor(primary, OfflineExtractor())
    result = await extractor.extract(CALL)
    await extractor.close()
    assert (result.facts.caller_name, result.model, result.fallback_reason) == ("Model Answer", "fake-model", None)
    assert primary.closed


@pytest.mark.parametrize("error", [ProviderAuthError("bad key", status=401, reason="http_401"),
                                   ProviderUnavailable("timed out", reason="timeout")])
async def test_any_extraction_error_falls_back(error: ExtractionError) -> None:
    extractor = FallbackExtractor(FakePrimary(error, error), OfflineExtractor())
    first, second = await extractor.extract(CALL), await extractor.extract(CALL)
    assert first.source == second.source == "offline"
    assert first.facts.caller_name == "Ann Lee"
    assert first.fallback_reason == str(error) and str(error).startswith(error.reason + ": ")
    assert extractor.stats() == {"primary_ok": 0, "fallbacks": {error.reason: 2}}


async def test_bugs_are_not_hidden_by_the_fallback() -> None:
    extractor = FallbackExtractor(FakePrimary(KeyError("bug")), OfflineExtractor())
    with pytest.raises(KeyError):
        await extractor.extract(CALL)


async def test_offline_only_has_nothing_to_close() -> None:
    extractor = FallbackExtractor(None, OfflineExtractor())
    await extractor.close()
    assert (await extractor.extract(CALL)).source == "offline"
