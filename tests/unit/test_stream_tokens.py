"""Stream tokens: bound to the call, expiring (fake clock), single use across instances sharing PostgreSQL, and
remembered in memory while the database is down."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import asyncpg
import pytest

from switchboard.store.pg import PgStore
from switchboard.tokens import StreamTokens, TokenClaim, check_stream_token, stream_token
from tests.pg_plugin import PgProxy

KEY = "twilio-auth-token"
SID = "CA" + "1" * 32
NOW = float(int(time.time()))  # the database clears rows by its own clock, so the fake clock starts at now


def test_token_is_bound_to_its_call_and_expires() -> None:
    token = stream_token(KEY, SID, now=NOW, ttl_s=120)
    assert isinstance(check_stream_token(KEY, SID, token, now=NOW + 119), TokenClaim)
    assert check_stream_token(KEY, SID, token, now=NOW + 120) == "stream token expired"
    assert check_stream_token(KEY, "CA" + "2" * 32, token, now=NOW) == "invalid stream token for this call"
    assert check_stream_token("another key", SID, token, now=NOW) == "invalid stream token for this call"
    assert stream_token(KEY, SID, now=NOW, ttl_s=120) != token  # a fresh nonce each time


@pytest.mark.parametrize("bad", [None, "", "forged", "é" * 10, "v1.x.y.z", "v1.99999999999.n.mac", "v1..." * 100,
                                 "v1.1.nonce.\u0000"])
def test_malformed_tokens_are_refused_with_a_reason(bad: str | None) -> None:
    reason = check_stream_token(KEY, SID, bad, now=NOW)
    assert isinstance(reason, str) and "token" in reason


def test_extending_the_expiry_breaks_the_mac() -> None:
    version, expires, nonce, mac = stream_token(KEY, SID, now=NOW, ttl_s=120).split(".")
    longer = ".".join((version, str(int(expires) + 86_400), nonce, mac))
    assert check_stream_token(KEY, SID, longer, now=NOW + 200) == "invalid stream token for this call"


async def test_a_token_is_used_once_across_instances(store: PgStore) -> None:
    one, two = StreamTokens(KEY, 120, store), StreamTokens(KEY, 120, store)  # two instances, one database
    token = one.mint(SID, NOW)
    assert await one.consume(SID, token, NOW + 1) is None
    assert await one.consume(SID, token, NOW + 2) == "stream token already used"
    assert await two.consume(SID, token, NOW + 3) == "stream token already used"
    assert await two.consume(SID, two.mint(SID, NOW), NOW + 4) is None  # another token for the same call is fine


async def test_database_down_falls_back_to_memory_until_expiry(pg_proxy: PgProxy) -> None:
    store = await PgStore.connect(pg_proxy.dsn, max_size=2)
    try:
        tokens = StreamTokens(KEY, 120, store)
        token = tokens.mint(SID, NOW)
        await pg_proxy.stop()
        assert await tokens.consume(SID, token, NOW + 1) is None  # the call keeps its recording
        assert await tokens.consume(SID, token, NOW + 2) == "stream token already used"
        assert await tokens.consume(SID, token, NOW + 121) == "stream token expired"
    finally:
        await pg_proxy.start()
        await store.close()


async def test_expired_rows_are_cleared_as_new_tokens_are_used(store: PgStore, pg_migrated_dsn: str) -> None:
    old = datetime.fromtimestamp(NOW - 7_200, UTC)
    assert await store.consume_stream_token("old-nonce", SID, old)
    assert await store.consume_stream_token("new-nonce", SID, datetime.fromtimestamp(NOW + 120, UTC))
    conn = await asyncpg.connect(pg_migrated_dsn)
    try:
        assert await conn.fetchval("SELECT array_agg(nonce) FROM stream_tokens") == ["new-nonce"]
    finally:
        await conn.close()
