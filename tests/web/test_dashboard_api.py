"""The API routes the dashboard needs, and its sign-in: session cookie, CSRF, origin checks, filters, leads.

A real server (null transcriber: no audio is recognised here) on a real PostgreSQL; calls, leads and segments are
seeded through the store, as the call pipeline and post-call jobs would write them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from switchboard.replay.twilio_fake import post_signed
from switchboard.store.base import LeadFields, Segment
from switchboard.store.pg import PgStore
from tests.e2e.conftest import API_TOKEN, Server, fresh_database, running_server

pytestmark = pytest.mark.e2e

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def sid(n: int) -> str:
    return f"CA{n:032x}"


@pytest.fixture(scope="module")
async def rig(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Server, PgStore]]:
    dsn = await fresh_database(pg_dsn, "dashapi")
    async with running_server(dsn, tmp_path_factory.mktemp("dashapi"), transcriber="null") as server:
        store = await PgStore.connect(dsn, max_size=2)
        try:
            await seed(store)
            yield server, store
        finally:
            await store.close()


async def seed(store: PgStore) -> None:
    """Six calls: 1 emergency (lead new), 2 routine (lead closed), 3 no lead, 4 live, 5 outbound agent call,
    6 a caller whose name has SQL wildcards."""
    rows: list[tuple[int, str, str, str]] = [
        (1, "+447700900001", "inbound", "operator"), (2, "+447700900002", "inbound", "voicemail"),
        (3, "+447700900003", "inbound", "operator"), (4, "+447700900004", "inbound", "operator"),
        (5, "+447700900005", "outbound-api", "agent"), (6, "+447700900006", "inbound", "operator"),
    ]
    for n, number, direction, mode in rows:
        at = T0 + timedelta(days=n - 1)
        await store.create_call(sid(n), account_sid=None, from_number=number, to_number="+447700900999",
                                direction=direction, mode=mode, status="in-progress", at=at)  # type: ignore[arg-type]
        await store.stream_started(sid(n), stream_sid=f"MZ{n:032x}", at=at)
        if n != 4:
            await store.end_call(sid(n), at=at + timedelta(minutes=2), reason="stop", media_ms=120_000,
                                 recording_key=None, recording_status=None, providers=["local"], stats={})
    await store.add_segments([Segment(sid(1), "inbound", 1, 0, 900, "water is pouring through the ceiling", "local"),
                              Segment(sid(3), "inbound", 1, 0, 900, "just a question about 100% of my bill",
                                      "local")])
    await store.upsert_lead(sid(1), LeadFields(phone="+447700900001", name="Joanne Whitaker", urgency="emergency",
                                               postcode="LS6 2AB"))
    closed = await store.upsert_lead(sid(2), LeadFields(phone="+447700900002", name="Sam Routine", urgency="routine"))
    await store.set_lead_status(closed.id, "closed")
    await store.upsert_lead(sid(6), LeadFields(phone="+447700900006", name="Ann_Percent%", urgency="urgent"))


@asynccontextmanager
async def signed_in(server: Server) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:
        response = await client.post("/signin", data={"token": API_TOKEN, "next": "/calls"},
                                     headers={"Origin": server.base})
        assert response.status_code == 303 and response.headers["location"] == "/calls"
        yield client


async def csrf_of(client: httpx.AsyncClient) -> str:
    page = (await client.get("/leads")).text
    marker = 'name="csrf-token" content="'
    return page.split(marker, 1)[1].split('"', 1)[0]


async def listed(server: Server, **params: str) -> list[str]:
    async with httpx.AsyncClient(base_url=server.base, headers=server.auth()) as client:
        response = await client.get("/api/calls", params=params)
    assert response.status_code == 200, response.text
    return [c["call_sid"] for c in response.json()["calls"]]


# -- sign-in, sessions -------------------------------------------------------------------------------------------

async def test_sign_in_sets_a_strict_httponly_expiring_cookie_and_refuses_a_wrong_token(
        rig: tuple[Server, PgStore]) -> None:
    server, _ = rig
    async with httpx.AsyncClient(base_url=server.base) as client:
        wrong = await client.post("/signin", data={"token": "nope"}, headers={"Origin": server.base})
        assert wrong.status_code == 401 and "set-cookie" not in wrong.headers
        assert "That token is not right" in wrong.text
        foreign = await client.post("/signin", data={"token": API_TOKEN}, headers={"Origin": "http://evil.test"})
        assert foreign.status_code == 400 and "set-cookie" not in foreign.headers
        assert (await client.get("/api/calls")).status_code == 401
        ok = await client.post("/signin", data={"token": API_TOKEN, "next": "//evil.test/x"},
                               headers={"Origin": server.base})
    assert ok.status_code == 303 and ok.headers["location"] == "/"  # no open redirect
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "max-age=43200" in cookie
    assert API_TOKEN.lower() not in cookie


async def test_session_cookie_reads_the_api_and_sign_out_revokes_it(rig: tuple[Server, PgStore]) -> None:
    server, _ = rig
    async with signed_in(server) as client:
        assert (await client.get("/api/calls")).status_code == 200
        assert (await client.get(f"/api/calls/{sid(1)}")).json()["lead"]["name"] == "Joanne Whitaker"
        cookie = client.cookies["sb_session"]
        refused = await client.post("/signout", data={"csrf": "wrong"}, headers={"Origin": server.base})
        assert refused.status_code == 403
        out = await client.post("/signout", data={"csrf": await csrf_of(client)}, headers={"Origin": server.base})
        assert out.status_code == 303
    async with httpx.AsyncClient(base_url=server.base, cookies={"sb_session": cookie}) as stale:
        assert (await stale.get("/api/calls")).status_code == 401
        page = await stale.get("/calls")
        assert page.status_code == 303 and page.headers["location"].startswith("/signin")


async def test_expired_session_is_refused(rig: tuple[Server, PgStore]) -> None:
    server, store = rig
    async with signed_in(server) as client:
        assert (await client.get("/api/leads")).status_code == 200
        await store.pool.execute("UPDATE web_sessions SET expires_at = now() - interval '1 second'")
        assert (await client.get("/api/leads")).status_code == 401


async def test_pages_carry_a_strict_csp_and_escape_what_they_echo(rig: tuple[Server, PgStore]) -> None:
    server, _ = rig
    async with httpx.AsyncClient(base_url=server.base) as client:
        page = await client.get("/signin", params={"next": '/"><script>alert(1)</script>'})
        static = await client.get("/static/common.js")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp and "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "<script>alert(1)" not in page.text and "&lt;script&gt;" in page.text
    assert static.status_code == 200 and static.headers["content-security-policy"] == csp
    assert static.headers["x-content-type-options"] == "nosniff"


# -- CSRF and origins ---------------------------------------------------------------------------------------------

async def test_mark_handled_needs_csrf_and_our_origin_with_a_cookie_but_not_with_the_bearer_token(
        rig: tuple[Server, PgStore]) -> None:
    server, store = rig
    lead = await store.lead_for_call(sid(6))
    assert lead is not None and lead.status == "new"
    path = f"/api/leads/{lead.id}/handled"
    async with signed_in(server) as client:
        token = await csrf_of(client)
        assert (await client.post(path, headers={"Origin": server.base})).status_code == 403
        assert (await client.post(path, headers={"X-CSRF-Token": token, "Origin": "http://evil.test"})
                ).status_code == 403
        assert (await client.post(path, headers={"X-CSRF-Token": token})).status_code == 403  # no Origin
        assert (await store.get_lead(lead.id)).status == "new"  # type: ignore[union-attr]
        done = await client.post(path, headers={"X-CSRF-Token": token, "Origin": server.base})
        assert done.status_code == 200 and done.json()["status"] == "closed"
    async with httpx.AsyncClient(base_url=server.base, headers=server.auth()) as bearer:
        again = await bearer.post(path)
        assert again.status_code == 200 and again.json()["status"] == "closed"  # idempotent
        assert (await bearer.post("/api/leads/999999/handled")).status_code == 404
        assert (await bearer.post("/api/leads/abc/handled")).status_code == 400
        open_leads = (await bearer.get("/api/leads", params={"status": "open"})).json()["leads"]
        every = (await bearer.get("/api/leads")).json()["leads"]
        assert (await bearer.get("/api/leads", params={"status": "x"})).status_code == 400
    assert [x["name"] for x in open_leads] == ["Joanne Whitaker"]
    assert {x["name"] for x in every} == {"Joanne Whitaker", "Sam Routine", "Ann_Percent%"}
    await store.set_lead_status(lead.id, "new")


async def test_placing_a_call_takes_the_session_only_with_csrf_from_our_origin(rig: tuple[Server, PgStore]) -> None:
    """``POST /api/calls`` is the dashboard's "Call back" too: a cookie alone must not place a call (a foreign page
    could), so it needs the CSRF token and our Origin. Past the checks, this server refuses for want of a caller
    ID (409): proof the session got through, without placing anything."""
    server, _ = rig
    body = {"to": "+447700900123", "lead_id": 1}
    async with signed_in(server) as client:
        token = await csrf_of(client)
        assert (await client.post("/api/calls", json=body, headers={"Origin": server.base})).status_code == 403
        foreign = await client.post("/api/calls", json=body, headers={"X-CSRF-Token": token,
                                                                      "Origin": "http://evil.test"})
        assert foreign.status_code == 403
        placed = await client.post("/api/calls", json=body, headers={"X-CSRF-Token": token, "Origin": server.base})
        assert placed.status_code == 409 and "TWILIO_PHONE_NUMBER" in placed.json()["error"]
    async with httpx.AsyncClient(base_url=server.base) as anonymous:
        assert (await anonymous.post("/api/calls", json=body)).status_code == 401


async def test_live_websocket_takes_the_cookie_from_our_origin_only(rig: tuple[Server, PgStore]) -> None:
    server, _ = rig
    async with signed_in(server) as client:
        cookie = f"sb_session={client.cookies['sb_session']}"
    url = f"{server.ws_base}/api/live"
    async with connect(url, additional_headers={"Cookie": cookie}, origin=server.base) as ws:  # type: ignore[arg-type]
        await ws.ping()
    with pytest.raises(InvalidStatus):
        async with connect(url, additional_headers={"Cookie": cookie}, origin="http://evil.test"):  # type: ignore[arg-type]
            pass
    with pytest.raises(InvalidStatus):
        async with connect(url, origin=server.base):  # type: ignore[arg-type]
            pass
    async with connect(url, additional_headers=server.auth()) as ws:  # scripts: bearer header, no origin
        await ws.ping()


# -- history filters -----------------------------------------------------------------------------------------------

async def test_history_filters(rig: tuple[Server, PgStore]) -> None:
    server, _ = rig
    assert await listed(server) == [sid(n) for n in (6, 5, 4, 3, 2, 1)]
    assert await listed(server, live="true") == [sid(4)]
    assert await listed(server, live="false") == [sid(n) for n in (6, 5, 3, 2, 1)]
    assert await listed(server, urgency="emergency") == [sid(1)]
    assert await listed(server, lead_status="closed") == [sid(2)]
    assert await listed(server, lead_status="open") == [sid(6), sid(1)]
    assert await listed(server, lead_status="none") == [sid(5), sid(4), sid(3)]
    assert await listed(server, direction="outbound-api") == [sid(5)]
    assert await listed(server, answered_by="voicemail") == [sid(2)]
    assert await listed(server, since=(T0 + timedelta(days=1)).isoformat(),
                        until=(T0 + timedelta(days=3)).isoformat()) == [sid(3), sid(2)]
    assert await listed(server, since="2026-12-05") == [sid(6)]  # a date alone is UTC midnight


async def test_history_search_matches_words_names_numbers_and_takes_wildcards_literally(
        rig: tuple[Server, PgStore]) -> None:
    server, _ = rig
    assert await listed(server, q="POURING") == [sid(1)]
    assert await listed(server, q="whitaker") == [sid(1)]
    assert await listed(server, q="ls6 2ab") == [sid(1)]
    assert await listed(server, q="900005") == [sid(5)]
    assert await listed(server, q=sid(3)) == [sid(3)]
    assert await listed(server, q="100%") == [sid(3)]
    assert await listed(server, q="%") == [sid(6), sid(3)]  # a literal percent sign, not "anything"
    assert await listed(server, q="a_n") == []  # "_" is no wildcard: "Ann", "Joanne" do not match
    assert await listed(server, q="Ann_P") == [sid(6)]


async def test_history_pages_with_the_cursor_and_rows_carry_their_lead(rig: tuple[Server, PgStore]) -> None:
    server, _ = rig
    async with httpx.AsyncClient(base_url=server.base, headers=server.auth()) as client:
        first = (await client.get("/api/calls", params={"limit": 4})).json()
        second = (await client.get("/api/calls", params={"limit": 4, "before": first["next_before"]})).json()
        live = (await client.get("/api/calls", params={"live": "true"})).json()
    assert [c["call_sid"] for c in first["calls"] + second["calls"]] == [sid(n) for n in (6, 5, 4, 3, 2, 1)]
    assert "next_before" not in second
    row = next(c for c in first["calls"] + second["calls"] if c["call_sid"] == sid(1))
    assert row["lead"]["name"] == "Joanne Whitaker" and row["lead"]["urgency"] == "emergency"
    assert row["live"] is False and live["calls"][0]["live"] is True
    assert isinstance(live["live_after"], int) and "live_after" not in first


@pytest.mark.parametrize(("params", "message"), [
    ({"urgency": "panic"}, "urgency must be one of"),
    ({"live": "maybe"}, "live must be true or false"),
    ({"since": "yesterday"}, "since must be an ISO 8601"),
    ({"q": "x" * 201}, "q is longer than 200"),
    ({"lead_status": "<script>"}, "lead_status must be one of"),
])
async def test_bad_filters_are_refused_with_a_clear_error(rig: tuple[Server, PgStore], params: dict[str, str],
                                                          message: str) -> None:
    server, _ = rig
    async with httpx.AsyncClient(base_url=server.base, headers=server.auth()) as client:
        response = await client.get("/api/calls", params=params)
    assert response.status_code == 400 and message in response.json()["error"]
    assert response.headers["content-type"].startswith("application/json")


async def test_live_after_resumes_the_all_calls_feed_from_the_listing(rig: tuple[Server, PgStore]) -> None:
    """Events published after the listing arrive on /api/live?after=live_after; earlier ones do not."""
    server, _ = rig
    async with httpx.AsyncClient(base_url=server.base, headers=server.auth()) as client:
        before = (await client.get("/api/calls", params={"live": "true"})).json()["live_after"]
        form = {"CallSid": sid(4), "CallStatus": "ringing"}
        await post_signed(client, server.target, "/api/twilio/status", form)
        after = (await client.get("/api/calls", params={"live": "true"})).json()["live_after"]
    assert after > before
    await asyncio.sleep(0.2)  # published before the subscription: sent_at is when *this* socket got it, later
    subscribed_ms = time.time_ns() // 1_000_000
    async with connect(f"{server.ws_base}/api/live?after={before}", additional_headers=server.auth()) as ws:
        event: dict[str, Any] = orjson.loads(await ws.recv())
    received_ms = time.time_ns() // 1_000_000
    assert event["id"] == after and event["type"] == "call.status" and event["call_sid"] == sid(4)
    assert subscribed_ms <= event["sent_at"] <= received_ms  # when the server wrote it to this socket

