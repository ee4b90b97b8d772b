"""TranscriptHub: per-call order, snapshot + resume without gaps, bounded subscribers."""

from __future__ import annotations

import asyncio

import pytest

from switchboard.live import InMemoryHub, Overflow
from switchboard.live.events import CallEnded, CallStarted, CallStatus, TranscriptUpdate


def final(text: str, is_final: bool = True) -> TranscriptUpdate:
    return TranscriptUpdate("inbound", "caller", text, is_final, 0, 100, "scripted", None)


async def take(sub, n: int) -> list[dict]:
    out = []
    async with asyncio.timeout(2):
        async for event in sub:
            out.append(event)
            if len(out) == n:
                break
    return out


async def test_sequence_numbers_are_per_call_and_ids_global() -> None:
    hub = InMemoryHub()
    a1 = hub.publish("CA1", final("a"))
    b1 = hub.publish("CA2", final("b"))
    a2 = hub.publish("CA1", final("c"))
    assert (a1["seq"], b1["seq"], a2["seq"]) == (1, 1, 2)
    assert a1["id"] < b1["id"] < a2["id"]
    assert a2["call_sid"] == "CA1"


async def test_snapshot_then_live_then_resume_misses_nothing() -> None:
    hub = InMemoryHub()
    for i in range(3):
        hub.publish("CA1", final(f"w{i}"))
    sub = hub.subscribe("CA1")
    first = await take(sub, 2)
    assert [e["text"] for e in first] == ["w0", "w1"]
    hub.unsubscribe(sub)  # the client drops after seeing seq 2
    hub.publish("CA1", final("w3"))
    resumed = hub.subscribe("CA1", after=first[-1]["seq"])
    rest = await take(resumed, 2)
    assert [e["text"] for e in rest] == ["w2", "w3"]
    assert [e["seq"] for e in first + rest] == [1, 2, 3, 4]


async def test_all_calls_feed_resumes_by_id() -> None:
    hub = InMemoryHub()
    hub.publish("CA1", final("x"))
    second = hub.publish("CA2", final("y"))
    hub.publish("CA1", final("z"))
    sub = hub.subscribe(None, after=second["id"] - 1)
    got = await take(sub, 2)
    assert [(e["call_sid"], e["text"]) for e in got] == [("CA2", "y"), ("CA1", "z")]


async def test_partials_are_live_only() -> None:
    hub = InMemoryHub()
    live = hub.subscribe("CA1")
    hub.publish("CA1", final("hel", is_final=False))
    hub.publish("CA1", final("hello"))
    assert [e["text"] for e in await take(live, 2)] == ["hel", "hello"]
    late = hub.subscribe("CA1")
    assert [e["text"] for e in await take(late, 1)] == ["hello"]


async def test_slow_subscriber_is_closed_with_a_resume_point_and_publisher_never_blocks() -> None:
    hub = InMemoryHub(queue_size=10)
    slow = hub.subscribe("CA1")
    got = await take(slow, 0) if False else []
    for i in range(25):  # publish never awaits: this cannot block however slow the reader is
        hub.publish("CA1", final(str(i)))
    with pytest.raises(Overflow) as info:
        async for event in slow:
            got.append(event)
    assert info.value.resume_after == 0
    resumed = hub.subscribe("CA1", after=info.value.resume_after)
    assert [e["seq"] for e in await take(resumed, 10)] == list(range(1, 11))


async def test_overflow_resume_point_is_last_delivered() -> None:
    hub = InMemoryHub(queue_size=10)
    sub = hub.subscribe("CA1")
    for i in range(5):
        hub.publish("CA1", final(str(i)))
    delivered = await take(sub, 5)
    for i in range(5, 30):
        hub.publish("CA1", final(str(i)))
    with pytest.raises(Overflow) as info:
        async for _ in sub:
            pass
    assert info.value.resume_after == delivered[-1]["seq"] == 5


async def test_truncated_backlog_announces_resync() -> None:
    hub = InMemoryHub(per_call=5)
    for i in range(12):
        hub.publish("CA1", final(str(i)))
    sub = hub.subscribe("CA1", after=2)
    first = (await take(sub, 1))[0]
    assert first["type"] == "resync" and first["first"] == 8


async def test_close_ends_subscriptions_and_ended_calls_are_evicted_beyond_retention() -> None:
    hub = InMemoryHub(retain_calls=2)
    for n in range(4):
        hub.publish(f"CA{n}", final("x"))
        hub.publish(f"CA{n}", CallEnded("stop", 0, "2026-01-01T00:00:00+00:00", ""))
    assert hub.stats()["calls"] <= 3
    assert hub.last_seq("CA3") == 2
    sub = hub.subscribe("CA3", after=2)
    hub.close()
    assert [e async for e in sub] == []


async def test_status_only_calls_are_forgotten_beyond_retention_but_live_calls_never() -> None:
    hub = InMemoryHub(retain_calls=50)
    hub.publish("CAlive", CallStarted("MZ1", ("inbound", "outbound"), "2026-01-01T00:00:00+00:00"))
    for n in range(10_000):  # status callbacks of calls that never streamed here (another instance, busy, ...)
        hub.publish(f"CA{n}", CallStatus("completed"))
    assert hub.stats()["calls"] == 50
    assert hub.last_seq("CAlive") == 1 and hub.last_seq("CA9999") == 1 and hub.last_seq("CA0") == 0
    hub.publish("CAlive", CallEnded("stop", 0, "2026-01-01T00:00:01+00:00", ""))
    for n in range(50):
        hub.publish(f"CB{n}", CallStatus("ringing"))
    assert hub.last_seq("CAlive") == 0  # ended: now the oldest idle call, forgotten like the rest
