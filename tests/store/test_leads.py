"""Extractions (versioned, one final) and leads (one open lead per caller number) against a real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.store import PgStore
from switchboard.store.base import LeadFields
from switchboard.store.errors import StoreQueryError

FACTS = {"caller_name": "Ann Lee", "urgency": "emergency", "postcode": "LS6 2AB"}


async def test_extraction_versions_count_up_per_call(store: PgStore) -> None:
    assert await store.add_extraction("CA1", FACTS, "offline", None, None) == 1
    assert await store.add_extraction("CA1", {**FACTS, "urgency": "urgent"}, "openai", "gpt-4o-mini", None) == 2
    assert await store.add_extraction("CA2", FACTS, "offline", None, "rate limited") == 1
    latest = await store.latest_extraction("CA1")
    assert latest is not None
    assert (latest.version, latest.source, latest.model, latest.final) == (2, "openai", "gpt-4o-mini", False)
    assert latest.data == {**FACTS, "urgency": "urgent"}
    other = await store.latest_extraction("CA2")
    assert other is not None and other.fallback_reason == "rate limited"
    assert await store.latest_extraction("CA404") is None


async def test_concurrent_adds_get_distinct_versions(store: PgStore) -> None:
    versions = await asyncio.gather(*(store.add_extraction("CA1", {"n": i}, "offline", None, None) for i in range(12)))
    assert sorted(versions) == list(range(1, 13))


async def test_final_extraction_is_stored_once(store: PgStore) -> None:
    await store.add_extraction("CA1", {"live": 1}, "offline", None, None)
    first = await store.add_extraction("CA1", FACTS, "offline", None, None, final=True)
    again = await store.add_extraction("CA1", {"other": True}, "openai", "m", None, final=True)
    assert first == again == 2
    await store.add_extraction("CA1", {"late": 1}, "offline", None, None)  # a straggling live run
    final = await store.latest_extraction("CA1", final_only=True)
    assert final is not None and final.version == 2 and final.final and final.data == FACTS
    latest = await store.latest_extraction("CA1")
    assert latest is not None and latest.version == 2  # the final one outranks a later live run
    await store.add_extraction("CA9", {"live": 1}, "offline", None, None)
    assert await store.latest_extraction("CA9", final_only=True) is None


async def test_extraction_source_is_checked(store: PgStore) -> None:
    with pytest.raises(StoreQueryError):
        await store.add_extraction("CA1", FACTS, "guess", None, None)


def fields(phone: str | None, **values: str | None) -> LeadFields:
    return LeadFields(phone=phone, **values)


async def test_repeat_caller_updates_one_lead(store: PgStore) -> None:
    first = await store.upsert_lead("CA1", fields("+447700900001", name="Ann", summary="leak", urgency="urgent"))
    assert (first.call_count, first.calls, first.status, first.call_sid) == (1, ("CA1",), "new", "CA1")
    second = await store.upsert_lead("CA2", fields("+447700900001", summary="leak worse", urgency="emergency"))
    assert second.id == first.id
    assert second.calls == ("CA1", "CA2") and second.call_count == 2 and second.call_sid == "CA2"
    assert (second.name, second.summary, second.urgency) == ("Ann", "leak worse", "emergency")  # None keeps
    assert second.updated_at >= first.updated_at
    assert len(await store.list_leads()) == 1


async def test_upsert_is_idempotent_per_call(store: PgStore) -> None:
    await store.upsert_lead("CA1", fields("+447700900001", summary="first"))
    await store.upsert_lead("CA2", fields("+447700900001", summary="second"))
    retried_old = await store.upsert_lead("CA1", fields("+447700900001", summary="first"))
    assert retried_old.summary == "second" and retried_old.call_count == 2  # an older call never rolls back
    retried_new = await store.upsert_lead("CA2", fields("+447700900001", summary="second, corrected"))
    assert retried_new.summary == "second, corrected" and retried_new.call_count == 2
    assert retried_new.calls == ("CA1", "CA2")


async def test_closed_lead_is_not_reopened(store: PgStore) -> None:
    first = await store.upsert_lead("CA1", fields("+447700900001"))
    async with store.pool.acquire() as conn:
        await conn.execute("UPDATE leads SET status = 'closed' WHERE id = $1", first.id)
    second = await store.upsert_lead("CA2", fields("+447700900001"))
    assert second.id != first.id and second.calls == ("CA2",)
    closed = await store.get_lead(first.id)
    assert closed is not None and closed.status == "closed" and closed.calls == ("CA1",)


async def test_withheld_numbers_are_never_merged(store: PgStore) -> None:
    a = await store.upsert_lead("CA1", fields(None, name="A"))
    b = await store.upsert_lead("CA2", fields(None, name="B"))
    assert a.id != b.id and a.phone is None


async def test_concurrent_calls_from_one_number_make_one_lead(store: PgStore) -> None:
    leads = await asyncio.gather(*(store.upsert_lead(f"CA{i}", fields("+447700900001")) for i in range(6)))
    assert len({lead.id for lead in leads}) == 1
    final = await store.get_lead(leads[0].id)
    assert final is not None and final.call_count == 6 and sorted(final.calls) == [f"CA{i}" for i in range(6)]


async def test_lookup_and_pagination(store: PgStore) -> None:
    made = [await store.upsert_lead(f"CA{i}", fields(f"+4477009000{i:02d}")) for i in range(5)]
    page1 = await store.list_leads(limit=2)
    assert [lead.id for lead in page1] == [made[4].id, made[3].id]
    page2 = await store.list_leads(limit=2, before_id=page1[-1].id)
    assert [lead.id for lead in page2] == [made[2].id, made[1].id]
    found = await store.lead_for_call("CA3")
    assert found is not None and found.id == made[3].id
    assert await store.lead_for_call("CA99") is None
    assert await store.get_lead(10_000) is None
    with pytest.raises(ValueError):
        await store.list_leads(limit=0)
