"""PgStore against a real PostgreSQL: one fresh, migrated database per test."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from switchboard.store import PgStore, Segment, StoreQueryError, StoreUnavailable
from tests.pg_plugin import PgProxy

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def _voice(store: PgStore, sid: str, **overrides: object) -> None:
    fields: dict[str, object] = {
        "account_sid": "AC1",
        "from_number": "+15550001",
        "to_number": "+15550002",
        "direction": "inbound",
        "mode": "operator",
        "status": "ringing",
        "at": T0,
    }
    fields.update(overrides)
    await store.create_call(sid, **fields)  # type: ignore[arg-type]


async def test_create_and_get_call(store: PgStore) -> None:
    await _voice(store, "CA1")
    call = await store.get_call("CA1")
    assert call is not None
    assert (call.call_sid, call.account_sid, call.from_number, call.to_number) == (
        "CA1",
        "AC1",
        "+15550001",
        "+15550002",
    )
    assert (call.direction, call.mode, call.status, call.created_at) == ("inbound", "operator", "ringing", T0)
    assert call.providers == () and call.stats is None and call.ended_at is None
    assert await store.get_call("CA-missing") is None


async def test_create_call_after_status_callback_keeps_newer_status(store: PgStore) -> None:
    assert await store.apply_status("CA1", status="in-progress", sequence=2, duration_s=None, at=at(-5))
    await _voice(store, "CA1", from_number=None, at=at(-10))
    call = await store.get_call("CA1")
    assert call is not None
    assert call.status == "in-progress" and call.status_seq == 2  # the webhook's "ringing" does not regress it
    assert call.mode == "operator" and call.account_sid == "AC1"
    assert call.created_at == at(-10)  # earliest known time wins


async def test_create_call_never_overwrites_with_null(store: PgStore) -> None:
    await _voice(store, "CA1")
    await _voice(store, "CA1", account_sid=None, from_number=None, to_number=None, direction=None, status=None)
    call = await store.get_call("CA1")
    assert call is not None
    assert (call.account_sid, call.from_number, call.to_number, call.direction) == (
        "AC1", "+15550001", "+15550002", "inbound",
    )  # fmt: skip


async def test_unknown_mode_is_refused(store: PgStore) -> None:
    with pytest.raises(StoreQueryError) as info:
        await _voice(store, "CA1", mode="robot")
    assert not info.value.retryable


async def test_status_callbacks_out_of_order(store: PgStore) -> None:
    # Twilio's sequence for an answered call, delivered shuffled.
    callbacks = {0: "initiated", 1: "ringing", 2: "in-progress", 3: "completed"}
    applied = []
    for seq in (1, 3, 0, 2):
        applied.append(
            await store.apply_status(
                "CA1", status=callbacks[seq], sequence=seq, duration_s=42 if seq == 3 else None, at=at(seq)
            )
        )
    assert applied == [True, True, False, False]
    call = await store.get_call("CA1")
    assert call is not None
    assert (call.status, call.status_seq, call.duration_s) == ("completed", 3, 42)
    assert call.answered_at is None  # "in-progress" arrived after "completed" and was not applied


async def test_in_order_callbacks_record_answer_time(store: PgStore) -> None:
    await _voice(store, "CA1")
    for seq, status in enumerate(("ringing", "in-progress", "completed")):
        assert await store.apply_status(
            "CA1", status=status, sequence=seq, duration_s=7 if status == "completed" else None, at=at(seq)
        )
    call = await store.get_call("CA1")
    assert call is not None
    assert (call.status, call.answered_at, call.duration_s) == ("completed", at(1), 7)


async def test_status_callback_creates_row_and_fills_metadata(store: PgStore) -> None:
    assert await store.apply_status(
        "CA9",
        status="busy",
        sequence=None,
        duration_s=0,
        at=T0,
        account_sid="AC1",
        from_number="+1",
        direction="inbound",
    )
    # A late non-terminal callback is refused but still fills in what was unknown.
    assert not await store.apply_status("CA9", status="ringing", sequence=None, duration_s=None, at=T0, to_number="+2")
    call = await store.get_call("CA9")
    assert call is not None
    assert (call.status, call.from_number, call.to_number, call.created_at) == ("busy", "+1", "+2", T0)


async def test_concurrent_callbacks_serialise_per_call(store: PgStore) -> None:
    statuses = ["initiated", "ringing", "in-progress", "completed", "ringing", "in-progress"]
    results = await asyncio.gather(
        *(store.apply_status("CA1", status=s, sequence=i % 4, duration_s=None, at=T0) for i, s in enumerate(statuses))
    )
    call = await store.get_call("CA1")
    assert call is not None and (call.status, call.status_seq) == ("completed", 3)
    assert any(results) and not all(results)


async def test_stream_started_first_wins_and_creates_row(store: PgStore) -> None:
    await store.stream_started("CA1", stream_sid="MZ1", at=at(1))
    await store.stream_started("CA1", stream_sid="MZ2", at=at(2))
    call = await store.get_call("CA1")
    assert call is not None
    assert (call.stream_sid, call.started_at, call.created_at) == ("MZ1", at(1), at(1))


async def test_streams_of_one_call_are_placed_one_after_another(store: PgStore) -> None:
    end = {"recording_status": "local", "providers": ["local"], "stats": {}}
    first = await store.stream_started("CA1", stream_sid="MZ1", at=at(0), recording_key="r/CA1.wav")
    assert (first.part, first.offset_ms) == (1, 0)
    assert await store.stream_started("CA1", stream_sid="MZ1", at=at(5)) == first  # the same stream: same place
    await store.end_call("CA1", at=at(10), reason="stop", media_ms=40_000, recording_key="r/CA1.wav", **end)
    # a replay at 4x: the first stream ran 40 s of media in 10 s of wall time; the next goes after its media
    second = await store.stream_started("CA1", stream_sid="MZ2", at=at(12), recording_key="r/CA1-2.wav")
    assert (second.part, second.offset_ms) == (2, 40_000)
    call = await store.get_call("CA1")
    assert call is not None and call.ended_at is None  # the call goes on
    # the second is still live, at real pace as far as the store knows: the third goes after its 58 s so far
    third = await store.stream_started("CA1", stream_sid="MZ3", at=at(70), after_ms=1000)
    assert (third.part, third.offset_ms) == (3, 98_000)
    # the second ends late (it was finishing its transcript): the call stays live, the third is the latest
    await store.end_call("CA1", at=at(71), reason="stop", media_ms=20_000, recording_key="r/CA1-2.wav", **end,
                         part=2)
    call = await store.get_call("CA1")
    assert call is not None and call.ended_at is None and call.media_ms == 60_000
    await store.end_call("CA1", at=at(90), reason="hangup", media_ms=5_000, recording_key="r/CA1-3.wav", **end,
                         part=3)
    call = await store.get_call("CA1")
    assert call is not None and (call.ended_at, call.end_reason, call.media_ms) == (at(90), "hangup", 103_000)
    assert call.recording_key == "r/CA1-3.wav"
    streams = await store.call_streams("CA1")
    assert [(s.part, s.offset_ms, s.media_ms, s.recording_key) for s in streams] == [
        (1, 0, 40_000, "r/CA1.wav"), (2, 40_000, 20_000, "r/CA1-2.wav"), (3, 98_000, 5_000, "r/CA1-3.wav")]


async def test_segments_of_two_streams_with_the_same_seq_are_both_kept(store: PgStore) -> None:
    await _voice(store, "CA1")
    await store.add_segments([Segment("CA1", "inbound", 1, 100, 900, "first stream", "local"),
                              Segment("CA1", "inbound", 1, 40_100, 40_900, "second stream", "local", part=2)])
    await store.add_segments([Segment("CA1", "inbound", 1, 100, 900, "first stream", "local")])  # a replay
    assert [(s.part, s.text) for s in await store.get_segments("CA1")] == [(1, "first stream"),
                                                                         (2, "second stream")]


async def test_orphaned_calls_are_this_instances_started_and_never_ended(store: PgStore) -> None:
    end = {"at": at(60), "reason": "stop", "media_ms": 1000, "recording_key": None, "recording_status": None,
           "providers": [], "stats": {}}  # fmt: skip
    await store.stream_started("CA1", stream_sid="MZ1", at=at(1), instance_id="a", recording_key="r/CA1.wav")
    await store.stream_started("CA2", stream_sid="MZ2", at=at(2), instance_id="a")
    await store.stream_started("CA3", stream_sid="MZ3", at=at(3), instance_id="b")  # another instance's
    await store.stream_started("CA4", stream_sid="MZ4", at=at(4), instance_id="a")
    await store.end_call("CA4", **end)  # type: ignore[arg-type]
    await _voice(store, "CA5")  # answered, never streamed: nothing to finish
    orphans = await store.orphaned_calls("a")
    assert [(c.call_sid, c.recording_key) for c in orphans] == [("CA1", "r/CA1.wav"), ("CA2", None)]
    await store.end_call("CA1", **end)  # type: ignore[arg-type]
    assert [c.call_sid for c in await store.orphaned_calls("a")] == ["CA2"]
    assert [c.call_sid for c in await store.orphaned_calls("b")] == ["CA3"]


async def test_end_call_is_idempotent_first_end_wins(store: PgStore) -> None:
    await _voice(store, "CA1")
    first = {"at": at(60), "reason": "stop", "media_ms": 59_980, "recording_key": "calls/CA1.wav",
             "recording_status": "pending", "providers": ["local", "local"], "stats": {"frames": 2999}}  # fmt: skip
    await store.end_call("CA1", **first)  # type: ignore[arg-type]
    once = await store.get_call("CA1")
    await store.end_call("CA1", **first)  # type: ignore[arg-type]
    assert await store.get_call("CA1") == once
    assert once is not None and once.providers == ("local",)

    await store.end_call(
        "CA1", at=at(90), reason="shutdown", media_ms=60_000, recording_key=None, recording_status="archived",
        providers=["deepgram", "local"], stats={"frames": 1, "late": 3},
    )  # fmt: skip
    call = await store.get_call("CA1")
    assert call is not None
    assert (call.ended_at, call.end_reason) == (at(60), "stop")  # first end wins
    assert call.media_ms == 60_000  # audio received only grows
    assert (call.recording_key, call.recording_status) == ("calls/CA1.wav", "archived")
    assert call.providers == ("local", "deepgram")
    assert call.stats == {"frames": 2999, "late": 3}  # existing keys kept, new ones added


async def test_end_call_without_row_creates_it(store: PgStore) -> None:
    await store.end_call(
        "CA1", at=T0, reason="socket-closed", media_ms=0, recording_key=None, recording_status=None,
        providers=[], stats={},
    )  # fmt: skip
    call = await store.get_call("CA1")
    assert call is not None and call.end_reason == "socket-closed" and call.created_at == T0


async def test_jsonb_round_trips_as_dict(store: PgStore) -> None:
    stats = {"jitter": {"reordered": 3, "gap_ms": [20, 40]}, "ratio": 0.25, "note": "café ☎", "none": None}
    await store.end_call(
        "CA1", at=T0, reason="stop", media_ms=1, recording_key=None, recording_status=None, providers=[], stats=stats
    )
    call = await store.get_call("CA1")
    assert call is not None and call.stats == stats


def _segments(sid: str, n: int) -> list[Segment]:
    # Two interleaved tracks, delivered out of media-time order.
    segs = [
        Segment(sid, "inbound" if i % 2 else "outbound", i // 2, (n - i) * 100, (n - i) * 100 + 90, f"w{i}", "local",
                None if i % 3 else 0.5)
        for i in range(n)
    ]  # fmt: skip
    return segs


async def test_segments_batch_ordering_and_duplicate_retry(store: PgStore) -> None:
    await _voice(store, "CA1")
    batch = _segments("CA1", 200)
    batch.append(Segment("CA1", "inbound", 1000, 100, 150, "tie", "local", 0.75))  # same start_ms as another
    await store.add_segments(batch)
    await store.add_segments(batch)  # a retried batch is harmless
    await store.add_segments([*batch[:10], Segment("CA1", "outbound", 500, 1, 2, "new", "local")])
    stored = await store.get_segments("CA1")
    assert len(stored) == 202
    keys = [(s.start_ms, s.track, s.seq) for s in stored]
    assert keys == sorted(keys)
    assert stored[0].text == "new"
    assert {s for s in stored} >= set(batch)  # every field round-trips (confidence values exact in float32)


async def test_segments_for_unknown_call_are_refused(store: PgStore) -> None:
    with pytest.raises(StoreQueryError) as info:
        await store.add_segments([Segment("CA-nope", "inbound", 0, 0, 1, "x", "local")])
    assert not info.value.retryable
    await store.add_segments([])  # empty batch: nothing to do, no round trip


async def test_list_calls_keyset_pagination(store: PgStore) -> None:
    for i in range(7):
        await _voice(store, f"CA{i}", at=at(i))
    pages, before = [], None
    while page := await store.list_calls(limit=3, before_id=before):
        pages.append([c.call_sid for c in page])
        before = page[-1].id
    assert pages == [["CA6", "CA5", "CA4"], ["CA3", "CA2", "CA1"], ["CA0"]]
    await _voice(store, "CA7")  # a new call does not shift the pages already read
    assert [c.call_sid for c in await store.list_calls(limit=2, before_id=before)] == []
    assert [c.call_sid for c in await store.list_calls(limit=1)] == ["CA7"]
    with pytest.raises(ValueError):
        await store.list_calls(limit=0)


async def test_connect_to_missing_server_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(StoreUnavailable) as info:
        await PgStore.connect(f"postgresql://postgres@/postgres?host={tmp_path}")
    assert info.value.retryable and isinstance(info.value.__cause__, OSError)


async def test_outage_is_unavailable_then_recovers(pg_proxy: PgProxy) -> None:
    store = await PgStore.connect(pg_proxy.dsn, max_size=2, command_timeout=5)
    try:
        await store.ping()
        await pg_proxy.stop()
        with pytest.raises(StoreUnavailable):
            await store.ping()
        with pytest.raises(StoreUnavailable):
            await _voice(store, "CA1")
        await pg_proxy.start()
        await _voice(store, "CA1")  # the pool reconnects by itself
        assert (await store.get_call("CA1")) is not None
    finally:
        await store.close()


async def test_naive_timestamps_are_refused(store: PgStore) -> None:
    # asyncpg would silently read them as the host's local time.
    with pytest.raises(ValueError, match="timezone-aware"):
        await store.stream_started("CA1", stream_sid="MZ1", at=datetime(2026, 3, 1, 12, 0))
    assert await store.get_call("CA1") is None
