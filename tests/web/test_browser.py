"""The dashboard in a real browser (Debian's Chromium through Playwright) against the real server.

The server transcribes through the Deepgram emulator (interim and final results, the real SDK as client) with
the local recogniser behind it; both recognise with the failover tests' fixture oracle, so the words of a call
are the fixture's words and a fault on Deepgram mid-call fails over to the local leg as in production. The
browser goes through a TCP proxy, which cuts its connections mid-call to test the live feed's resume.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from switchboard.config import Secret
from switchboard.replay.fixture import build_schedule
from switchboard.replay.twilio_fake import CallResult, new_sid, post_signed, replay_call
from switchboard.store.base import LeadFields, Segment
from switchboard.store.pg import PgStore
from switchboard.transcribe.moonshine import RecognizerPool
from switchboard.tts.factory import VoiceConfig
from tests.e2e.conftest import API_TOKEN, AUTH_TOKEN, Server, fresh_database, running_server
from tests.e2e.test_failover import FixtureOracle, OracleEngine
from tests.emulators import deepgram_server as dg
from tests.emulators.recognizer import EmulatorRecognizer
from tests.emulators.twilio_rest import TwilioRestEmulator
from tests.web.conftest import artifact
from tests.web.proxy import TcpProxy

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore:websockets.legacy is deprecated:DeprecationWarning")]

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
LEEDS = FIXTURES / "tts_leak_emergency_leeds.wav"
SPELLED = FIXTURES / "real_ivr_spelled_name.wav"  # the caller spells a name: heard with 70 % confidence
OURS = "+447700900000"
SPEED = 3.0
WAIT_MS = 30_000


@dataclass
class Rig:
    server: Server
    deepgram: dg.DeepgramEmulator
    twilio: TwilioRestEmulator
    proxy: TcpProxy
    store: PgStore

    @property
    def base(self) -> str:
        """Where the browser goes: through the proxy."""
        return self.proxy.base


@pytest.fixture(scope="module")
async def rig(pg_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Rig]:
    moonshine = EmulatorRecognizer()  # only for audio the oracle cannot place: none in these fixtures
    oracle = FixtureOracle([LEEDS, SPELLED], moonshine)
    local = RecognizerPool(workers=1, engine_factory=lambda: OracleEngine(oracle))
    dsn = await fresh_database(pg_dsn, "dashboard")
    try:
        async with dg.DeepgramEmulator(recognizer=oracle) as deepgram, \
                TwilioRestEmulator(auth_token=AUTH_TOKEN) as twilio, \
                running_server(dsn, tmp_path_factory.mktemp("dashboard"), recognizers=local,
                               deepgram_api_key=Secret("test-key"), deepgram_url=deepgram.url, stt_workers=1,
                               breaker_failures=10_000, voices=VoiceConfig(None, ("espeak",)),
                               twilio_phone_number=OURS, twilio_api_url=twilio.base_url,
                               twilio_account_sid=twilio.account_sid) as server:
            proxy = TcpProxy(server.settings.port)
            await proxy.start()
            store = await PgStore.connect(dsn, max_size=2)
            try:
                yield Rig(server, deepgram, twilio, proxy, store)
            finally:
                await store.close()
                await proxy.cut()
    finally:
        await local.aclose()
        await moonshine.aclose()


@pytest.fixture
async def page(browser: Any, rig: Rig) -> AsyncIterator[Any]:
    context = await browser.new_context(viewport={"width": 1280, "height": 860}, locale="en-GB",
                                        timezone_id="Asia/Tokyo")
    context.set_default_timeout(WAIT_MS)
    await context.add_init_script(OBSERVER)
    page = await context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("dialog", lambda dialog: page.errors.append(f"dialog: {dialog.message}"))
    page.on("console", lambda message: message.type == "error" and print(f"browser console: {message.text}"))
    try:
        yield page
    finally:
        await context.close()


async def sign_in(page: Any, base: str) -> None:
    await page.goto(f"{base}/")
    assert "/signin" in page.url  # no session yet: sent to sign in
    await page.fill("#token", API_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")


async def start_call(rig: Rig, client: httpx.AsyncClient, *, gate: asyncio.Event | None = None,
                     speed: float = SPEED) -> asyncio.Task[CallResult]:
    return asyncio.create_task(replay_call(rig.server.target, build_schedule(LEEDS), speed=speed, client=client,
                                           end_timeout_s=120, media_gate=gate))


async def final_lines(page: Any) -> list[tuple[str, str]]:
    rows = await page.eval_on_selector_all(
        "#transcript .line:not(.interim)",
        "els => els.map(e => [e.querySelector('.who').textContent, e.querySelector('.text').textContent])")
    return [(who, text) for who, text in rows]


def stored_lines(call: dict[str, Any]) -> list[tuple[str, str]]:
    names = {"caller": "Caller", "agent": "Agent"}
    return [(names[s["speaker"]], s["text"]) for s in call["transcript"]]


async def stored_call(rig: Rig, sid: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=rig.server.base, headers=rig.server.auth()) as client:
        return dict((await client.get(f"/api/calls/{sid}")).json())


# -- tests ----------------------------------------------------------------------------------------------------------

async def test_sign_in_refuses_a_wrong_token_then_lets_the_right_one_in(page: Any, rig: Rig) -> None:
    await page.goto(f"{rig.base}/calls")
    assert page.url.startswith(f"{rig.base}/signin")
    await page.fill("#token", "not-the-token")
    await page.click("button[type=submit]")
    assert await page.text_content("#error") == "That token is not right."
    assert await page.context.cookies() == []
    await page.fill("#token", API_TOKEN)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{rig.base}/calls")  # back where the operator was going
    [cookie] = await page.context.cookies()
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > time.time() + 3600
    assert API_TOKEN not in page.url and await page.evaluate("document.cookie") == ""  # not readable by scripts
    await page.click(".signout button")
    await page.wait_for_url(f"{rig.base}/signin")
    await page.goto(f"{rig.base}/leads")
    assert page.url.startswith(f"{rig.base}/signin")  # the session is gone


async def test_live_call_fills_the_board_and_call_view_then_moves_to_history(page: Any, rig: Rig) -> None:
    await sign_in(page, rig.base)
    assert await page.is_visible("#empty")
    async with httpx.AsyncClient(timeout=60) as client:
        replay = await start_call(rig, client)
        card = page.locator("#board .card").first
        await card.wait_for()
        sid = await card.get_attribute("data-sid")
        await page.locator(f'#board .card[data-sid="{sid}"] .who', has_text="+447700900123").wait_for()
        await page.locator(f'#board .card[data-sid="{sid}"] .last .text').first.wait_for()
        await page.locator(f'#board .card[data-sid="{sid}"] .tracks', has_text="caller: deepgram").wait_for()
        await page.locator(f'#board .card[data-sid="{sid}"] .tracks', has_text="agent: deepgram").wait_for()
        await page.screenshot(path=artifact("board.png"))
        await card.locator("a.who").click()
        await page.wait_for_url(f"{rig.base}/calls/{sid}")
        seen = await watch_live_view(page)
        await page.locator("#player:not([hidden])").wait_for()  # ended: the recording replaces the live view
        result = await replay
    assert result.call_sid == sid and result.ended is not None
    stored = await stored_call(rig, sid)
    lines = await final_lines(page)
    assert lines == stored_lines(stored) and len(lines) >= 6  # every final, once, in spoken order
    assert seen.interim_seen and seen.lines_before_end >= 3 and seen.fields_before_end
    await page.goto(f"{rig.base}/")
    await page.locator(f'#ended li[data-sid="{sid}"]').wait_for()
    assert await page.locator(f'#board .card[data-sid="{sid}"]').count() == 0
    await page.goto(f"{rig.base}/calls")
    await page.locator(f'#calls li[data-sid="{sid}"]').wait_for()
    assert page.errors == []


OBSERVER = """
document.addEventListener("DOMContentLoaded", () => {
  const log = (window.__log = []);
  const watch = (id, fn) => {
    const el = document.getElementById(id);
    if (el) new MutationObserver((records) => records.forEach(fn)).observe(el, { childList: true, subtree: true,
      characterData: true });
  };
  watch("transcript", (r) => r.addedNodes.forEach((n) => {
    if (n.classList?.contains("line")) log.push({ t: performance.now(), kind: n.classList.contains("interim") ?
      "interim" : "final", text: n.querySelector(".text").textContent });
  }));
  watch("fields", () => {
    const name = document.querySelector("[data-field=caller_name]")?.textContent;
    if (name && name !== "—") log.push({ t: performance.now(), kind: "field", text: name });
  });
  watch("timeline", (r) => r.addedNodes.forEach((n) => {
    if (n.textContent?.includes("call ended")) log.push({ t: performance.now(), kind: "ended", text: "" });
  }));
});
"""


@dataclass
class Seen:
    interim_seen: bool = False
    lines_before_end: int = 0
    fields_before_end: bool = False


async def watch_live_view(page: Any) -> Seen:
    """What the call view showed while the call ran (recorded in the page by ``OBSERVER``): interims, finals
    accumulating, fields filling. A screenshot is taken once the conversation is under way."""
    async with asyncio.timeout(WAIT_MS / 1000 * 3):
        await page.locator("#transcript .line:not(.interim)").nth(4).wait_for()
        await page.screenshot(path=artifact("live-call.png"))
        await page.locator("#timeline li", has_text="call ended").wait_for()
    log = await page.evaluate("window.__log")
    ended = next(e["t"] for e in log if e["kind"] == "ended")
    return Seen(interim_seen=any(e["kind"] == "interim" for e in log),
                lines_before_end=sum(e["kind"] == "final" and e["t"] < ended for e in log),
                fields_before_end=any(e["kind"] == "field" and e["t"] < ended for e in log))


async def test_failover_and_a_dropped_live_connection_resume_with_no_gap_and_no_duplicate(
        page: Any, rig: Rig) -> None:
    """Deepgram closes its socket 4 s into the call: the timeline and the board show the switch to local. Mid-call
    the browser's connections are cut; while it is away finals keep coming; it resumes with after=N."""
    await sign_in(page, rig.base)
    rig.deepgram.inject(dg.Fault(dg.FaultKind.CLOSE, after_ms=4000, code=1011, reason="NET-0000"), connections=None)
    try:
        async with httpx.AsyncClient(timeout=60) as client:
            gate = asyncio.Event()
            replay = await start_call(rig, client, gate=gate)
            card = page.locator("#board .card").first
            await card.wait_for()
            sid = await card.get_attribute("data-sid")
            await page.goto(f"{rig.base}/calls/{sid}")
            async with connect(f"{rig.server.ws_base}/api/live/{sid}",
                               additional_headers=rig.server.auth()) as watcher:
                gate.set()
                await page.locator("#timeline .switch", has_text="deepgram → local").first.wait_for()
                await page.locator("#transcript .line:not(.interim)").first.wait_for()
                shown_before = len(await final_lines(page))
                await drain(watcher)
                assert not replay.done()
                await rig.proxy.cut()
                await page.locator("#conn[data-state=reconnecting]").wait_for()
                missed = await finals_published(watcher, count=2)  # finals the browser cannot have received
                await rig.proxy.start()
                await page.locator("#conn[data-state=live]").wait_for()
                await page.locator("#player:not([hidden])").wait_for(timeout=90_000)
            result = await replay
    finally:
        rig.deepgram.clear_faults()
        if rig.proxy.port and not rig.proxy.serving:
            await rig.proxy.start()
    stored = await stored_call(rig, result.call_sid)
    lines = await final_lines(page)
    assert lines == stored_lines(stored)  # no gap, no duplicate
    assert len(lines) >= shown_before + len(missed)
    assert all(text in [t for _, t in lines] for text in missed)
    switches = [(s["track"], s["from"], s["to"]) for s in stored["stats"]["switches"]]
    assert ("inbound", "deepgram", "local") in switches
    assert "local" in stored["providers"] and page.errors == []


async def drain(watcher: Any) -> None:
    """Read what the watcher has been sent so far, so the next events read are the ones published from now on."""
    while True:
        try:
            async with asyncio.timeout(0.3):
                await watcher.recv()
        except TimeoutError:
            return


async def finals_published(watcher: Any, count: int) -> list[str]:
    texts: list[str] = []
    async with asyncio.timeout(60):
        while len(texts) < count:
            event = orjson.loads(await watcher.recv())
            if event["type"] == "transcript" and event["is_final"] and event["text"]:
                texts.append(event["text"])
    return texts


async def test_past_call_plays_its_recording_and_seeks_from_the_transcript(page: Any, rig: Rig) -> None:
    sid = await newest_replayed_call(rig)
    await sign_in(page, rig.base)
    await page.goto(f"{rig.base}/calls/{sid}")
    await page.locator("#player:not([hidden])").wait_for()
    await until(page, "document.getElementById('audio').readyState >= 1")
    stored = await stored_call(rig, sid)
    duration = await page.evaluate("document.getElementById('audio').duration")
    assert abs(duration - stored["media_ms"] / 1000) < 0.1  # the real recording, read by the browser
    line = page.locator("#transcript .line").nth(3)
    start_ms = int(await line.get_attribute("data-start"))
    await line.locator("button.at").click()
    await until(page, f"Math.abs(document.getElementById('audio').currentTime - {start_ms / 1000}) < 1.5"
                      " && document.querySelector('#transcript .line.playing') !== null")
    playing = page.locator("#transcript .line.playing")
    assert int(await playing.get_attribute("data-start")) >= start_ms
    await until(page, f"document.getElementById('audio').currentTime > {start_ms / 1000 + 0.3}")
    await page.evaluate("document.getElementById('audio').pause()")
    assert await page.text_content("[data-field=postcode]") == "LS6 2AB"
    await page.screenshot(path=artifact("past-call.png"))
    assert page.errors == []


async def until(page: Any, condition: str, within_s: float = WAIT_MS / 1000) -> None:
    """Poll a JavaScript condition (``wait_for_function`` evaluates strings, which the page's CSP forbids)."""
    async with asyncio.timeout(within_s):
        while True:
            if await page.evaluate(f"() => Boolean({condition})"):
                return
            await asyncio.sleep(0.05)


async def newest_replayed_call(rig: Rig) -> str:
    """A call replayed by an earlier test, or one replayed now when this test runs alone."""
    async with httpx.AsyncClient(base_url=rig.server.base, headers=rig.server.auth(), timeout=60) as client:
        calls = (await client.get("/api/calls", params={"live": "false", "q": "+447700900123"})).json()["calls"]
        if not calls:
            await replay_call(rig.server.target, build_schedule(LEEDS), speed=SPEED * 2, client=client)
            calls = (await client.get("/api/calls", params={"live": "false"})).json()["calls"]
    return str(calls[0]["call_sid"])


AGENT_TURN = "Thanks, an engineer will call you back within the hour."
XSS = ['<script>window.__xss = 1</script>', '<img src=x onerror="window.__xss = 2">',
       'javascript:window.__xss = 3', '"><svg onload="window.__xss = 4">']


async def test_what_callers_said_stays_text(page: Any, rig: Rig) -> None:
    sid = "CA" + "f" * 32
    store = rig.store
    at = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
    await store.create_call(sid, account_sid=None, from_number=XSS[1], to_number="+447700900999",
                            direction="inbound", mode="operator", status="completed", at=at)
    await store.stream_started(sid, stream_sid="MZ" + "f" * 32, at=at)
    await store.end_call(sid, at=at, reason="stop", media_ms=4000, recording_key=None, recording_status=None,
                         providers=["local"], stats={})
    await store.add_segments([*(Segment(sid, "inbound", i + 1, i * 1000, i * 1000 + 900, text, "local")
                                for i, text in enumerate(XSS)),
                              Segment(sid, "outbound", 1, 4500, 5200, AGENT_TURN, "tts")])  # the voice agent's turn
    await store.add_extraction(sid, {"caller_name": XSS[0], "address": XSS[2], "postcode": None, "urgency": "urgent",
                                     "callback_number": None, "issue_category": "other", "summary": XSS[3],
                                     "lead_segment": "other"}, "offline", None, None, final=True)
    await store.upsert_lead(sid, LeadFields(phone=XSS[1], name=XSS[0], address=XSS[2], summary=XSS[3],
                                            urgency="urgent"))
    await sign_in(page, rig.base)
    await page.goto(f"{rig.base}/calls/{sid}")
    await page.locator("#transcript .line").nth(4).wait_for()
    assert await final_lines(page) == [*(("Caller", t) for t in XSS), ("Agent", AGENT_TURN)]
    agent = page.locator("#transcript .line").nth(4)
    assert await agent.get_attribute("class") == "line agent" and await agent.locator(".prov").text_content() == "tts"
    assert await page.text_content("#title") == f"{XSS[1]} · {XSS[0]}"
    assert await page.text_content("[data-field=address]") == XSS[2]
    await page.goto(f"{rig.base}/calls?q=svg")
    await page.locator(f'#calls li[data-sid="{sid}"]').wait_for()
    assert "09:00" not in await page.text_content(f'#calls li[data-sid="{sid}"]')
    assert "18:00" in await page.text_content(f'#calls li[data-sid="{sid}"]')  # the operator's zone (Tokyo)
    await page.goto(f"{rig.base}/leads")
    await page.locator(".lead .who", has_text=XSS[0]).wait_for()
    for where, rendered in ((f"/calls/{sid}", "#transcript .line >> nth=4"), ("/calls?q=svg", "#calls li"),
                            ("/leads", ".lead")):
        await page.goto(f"{rig.base}{where}")
        await page.locator(rendered).first.wait_for()
        assert await page.evaluate("window.__xss") is None
        assert await page.locator("main img, main svg, main script").count() == 0
        assert await page.locator("a[href^='javascript']").count() == 0
    assert page.errors == []


async def test_phone_width_and_keyboard(browser: Any, rig: Rig) -> None:
    context = await browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True,
                                        locale="en-GB")
    context.set_default_timeout(WAIT_MS)
    page = await context.new_page()
    try:
        await sign_in(page, rig.base)
        sid = await newest_replayed_call(rig)
        for where, rendered in (("/", "#conn[data-state=live]"), ("/calls", "#calls li"), ("/leads", "#leads li"),
                                (f"/calls/{sid}", "#transcript .line")):
            await page.goto(f"{rig.base}{where}")
            await page.locator(rendered).first.wait_for()
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 375, f"{where} is {width} px wide at a 375 px viewport"
            assert await page.is_visible("nav a[href='/calls']")
        await page.screenshot(path=artifact("past-call-phone.png"), full_page=False)
        await page.goto(f"{rig.base}/leads")
        button = page.locator(".lead button.handled").first
        await button.wait_for()
        lead_id = await page.locator(".lead").first.get_attribute("data-lead")
        await button.focus()
        await page.keyboard.press("Enter")  # keyboard only
        await page.locator("#status", has_text="marked handled").wait_for()
        lead = await rig.store.get_lead(int(lead_id))
        assert lead is not None and lead.status == "closed"
    finally:
        await context.close()


async def seed_answered_call(rig: Rig, *, phone: str, callback: str, name: str) -> tuple[str, int]:
    """An ended inbound call with its lead (the caller asked to be called back on ``callback``)."""
    sid = new_sid("CA")
    at = datetime.now(UTC)
    await rig.store.create_call(sid, account_sid=None, from_number=phone, to_number=OURS, direction="inbound",
                                mode="operator", status="completed", at=at)
    await rig.store.stream_started(sid, stream_sid=new_sid("MZ"), at=at)
    await rig.store.end_call(sid, at=at, reason="stop", media_ms=3000, recording_key=None, recording_status=None,
                             providers=["deepgram"], stats={})
    await rig.store.add_extraction(sid, {"caller_name": name, "address": None, "postcode": None, "urgency": "routine",
                                         "callback_number": callback, "issue_category": "other", "summary": "boiler",
                                         "lead_segment": "other"}, "offline", None, None, final=True)
    lead = await rig.store.upsert_lead(sid, LeadFields(phone=phone, name=name, callback_number=callback,
                                                       urgency="routine"))
    return sid, lead.id


async def test_call_back_places_the_call_through_the_public_api_and_the_board_shows_it(page: Any, rig: Rig) -> None:
    """"Call back" on a lead posts to POST /api/calls with the page's session and CSRF token (the page holds no API
    token): the Twilio REST emulator receives calls.create with our voice URL carrying the lead, the board (open
    in another tab) shows the new call ringing, and it leaves the board when Twilio says nobody answered. The
    call's own page has the button too."""
    inbound_sid, lead_id = await seed_answered_call(rig, phone="+447700900321", callback="07700 900456",
                                                    name="Priya Shah")
    await sign_in(page, rig.base)  # the board, in this tab
    await page.locator("#conn[data-state=live]").wait_for()
    leads = await page.context.new_page()
    leads.on("pageerror", lambda exc: page.errors.append(str(exc)))
    await leads.goto(f"{rig.base}/leads")
    row = leads.locator(f'.lead[data-lead="{lead_id}"]')
    await row.locator("button.call-back", has_text="07700 900456").click()
    link = leads.locator("#status a.placed")
    await link.wait_for()
    sid = (await link.get_attribute("href")).rsplit("/", 1)[1]
    request = next(c for c in rig.twilio.calls if c["sid"] == sid)["request"]
    assert request["Url"] == f"{rig.server.base}/api/twilio/voice?lead={lead_id}"
    assert (request["To"], request["From"], request["MachineDetection"]) == ("+447700900456", OURS,
                                                                              "DetectMessageEnd")
    card = page.locator(f'#board .card[data-sid="{sid}"]')
    await card.locator(".who", has_text="+447700900456").wait_for()
    await card.locator(".meta", has_text="outbound-api").wait_for()
    form = {"CallSid": sid, "AccountSid": rig.twilio.account_sid, "From": OURS, "To": "+447700900456",
            "Direction": "outbound-api"}
    async with httpx.AsyncClient(timeout=30) as http:  # Twilio's status callbacks for the call it placed
        await post_signed(http, rig.server.target, "/api/twilio/status", {**form, "CallStatus": "ringing",
                                                                           "SequenceNumber": "0"})
        await card.locator(".meta", has_text="ringing").wait_for()
        await page.screenshot(path=artifact("board-call-back.png"))
        await link.click()  # the call's page follows it while it rings
        await leads.wait_for_url(f"{rig.base}/calls/{sid}")
        await leads.locator("#title", has_text="+447700900456").wait_for()
        await leads.locator("#timeline li", has_text="status: ringing").wait_for()
        await post_signed(http, rig.server.target, "/api/twilio/status", {**form, "CallStatus": "no-answer",
                                                                           "SequenceNumber": "1"})
    await page.locator(f'#ended li[data-sid="{sid}"]').wait_for()  # never answered: off the board
    assert await card.count() == 0
    await leads.locator("#timeline li", has_text="status: no-answer").wait_for()
    placed = len(rig.twilio.calls)
    await leads.goto(f"{rig.base}/calls/{inbound_sid}")  # a past call's page calls its caller back too
    await leads.locator("#actions button.call-back", has_text="07700 900456").click()
    await leads.locator("#call-status a.placed").wait_for()
    assert len(rig.twilio.calls) == placed + 1
    assert rig.twilio.calls[-1]["request"]["Url"].endswith(f"/api/twilio/voice?lead={lead_id}")
    assert page.errors == []


async def test_unconfirmed_fields_are_marked_live_on_the_call_page_and_in_the_leads(page: Any, rig: Rig) -> None:
    """The caller spells a name (heard with 70 % confidence, under the 80 % the extraction trusts): the live view
    marks it unconfirmed while the call runs, and so do the ended call's details, its lead and the leads list, in
    words (for screen readers too) as well as in style."""
    await sign_in(page, rig.base)
    sid = new_sid("CA")
    async with httpx.AsyncClient(timeout=60) as client:
        gate = asyncio.Event()
        replay = asyncio.create_task(replay_call(rig.server.target, build_schedule(SPELLED), speed=SPEED,
                                                 client=client, end_timeout_s=120, media_gate=gate, call_sid=sid))
        await until_live(rig, sid)
        await page.goto(f"{rig.base}/calls/{sid}")
        gate.set()
        name = page.locator("#fields dd[data-field=caller_name].unconfirmed")
        await name.wait_for()
        live_text = await name.text_content()
        ended_already = await page.locator("#timeline li", has_text="call ended").count()
        await replay
    assert live_text is not None and live_text.startswith("Okafor") and "unconfirmed" in live_text
    assert ended_already == 0  # flagged while the call ran
    await page.locator("#lead-box:not([hidden]) dd[data-field=caller_name].unconfirmed").wait_for()
    assert "unconfirmed (spelled out, 70% sure)" in (await page.locator(
        "#fields dd[data-field=caller_name]").text_content() or "")
    assert await page.locator("#fields dd[data-field=callback_number].unconfirmed").count() == 0  # 92 %: trusted
    lead = await rig.store.lead_for_call(sid)
    assert lead is not None and lead.unconfirmed == ("caller_name",)
    await page.goto(f"{rig.base}/leads")
    flagged = page.locator(f'.lead[data-lead="{lead.id}"] [data-unconfirmed=caller_name]')
    await flagged.wait_for()
    assert "Okafor" in (await flagged.text_content() or "") and "unconfirmed" in (await flagged.text_content() or "")
    await page.screenshot(path=artifact("leads.png"))
    assert page.errors == []


async def until_live(rig: Rig, sid: str) -> None:
    async with httpx.AsyncClient(base_url=rig.server.base, headers=rig.server.auth(), timeout=30) as client:
        async with asyncio.timeout(WAIT_MS / 1000):
            while True:
                response = await client.get(f"/api/calls/{sid}")
                if response.status_code == 200 and response.json()["live"]:
                    return
                await asyncio.sleep(0.05)
