"""Replay every fixture through the real server (real uvicorn, real PostgreSQL, local recogniser)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect

from audio import FRAME_MS, MULAW_SILENCE, SAMPLES_PER_MS
from audio.wav import WavReader, read_tracks
from switchboard.replay.fixture import Impairments, build_schedule
from switchboard.replay.twilio_fake import CallResult, new_sid, replay_call
from switchboard.transcribe.wer import word_errors

pytestmark = pytest.mark.e2e

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
ALL = sorted(FIXTURES.glob("*.wav"))
# Word error rate bounds we hold on the phone channel with the local recogniser. espeak-ng's formant voices are
# much harder than people (see the closing note in ARCHITECTURE.md); real speech is the honest measure.
WER_BOUND = {"real": 0.20, "tts": 0.60}


def sidecar(path: Path) -> dict[str, Any]:
    return json.loads(path.with_suffix(".json").read_text())


async def replay(server: Any, http: httpx.AsyncClient, path: Path, imp: Impairments | None = None,
                 speed: float = 0, **kw: Any) -> CallResult:
    schedule = build_schedule(path, imp or Impairments())
    return await replay_call(server.target, schedule, speed=speed, client=http, **kw)


def recording(server: Any, stored: dict[str, Any]) -> bytes:
    with WavReader(server.settings.data_dir / stored["recording_key"]) as wav:
        assert (wav.channels, wav.sample_rate, wav.encoding) == (2, 8000, "mulaw")
        return wav.read(wav.n_frames)


def interleave(a: bytes, b: bytes) -> bytes:
    out = bytearray(len(a) * 2)
    out[0::2], out[1::2] = a, b
    return bytes(out)


@pytest.fixture(scope="session")
async def replayed(server: Any) -> dict[Path, CallResult]:
    """Every fixture replayed as concurrent calls (the recogniser pool works through them in parallel)."""
    async with httpx.AsyncClient(base_url=server.base, timeout=60) as client:
        # generous: ten calls' worth of recognition queue behind two recogniser threads on a 2-core machine
        results = await asyncio.gather(*(replay(server, client, path, end_timeout_s=900) for path in ALL))
    return dict(zip(ALL, results, strict=True))


@pytest.mark.parametrize("path", ALL, ids=[p.stem for p in ALL])
async def test_fixture_call_end_to_end(server: Any, replayed: dict[Path, CallResult], path: Path) -> None:
    meta = sidecar(path)
    result = replayed[path]
    assert result.ended is not None and result.ended["reason"] == "stop"
    stored = result.stored
    assert stored is not None

    # (1) the live transcript has the fixture's words, and the stored one is the same
    live = {t: " ".join(ws) for t, ws in result.live_finals.items()}
    assert live == result.transcript()
    for track in ("inbound", "outbound"):
        reference = meta["tracks"][track]["text"]
        errors = word_errors(reference, live.get(track, ""))
        assert errors.wer <= WER_BOUND[meta["kind"]], (track, errors.wer, live.get(track))

    # (2) the recording is the fixture's audio, byte for byte
    inbound, outbound = read_tracks(path)
    assert recording(server, stored) == interleave(inbound, outbound)

    # (3) the call row is complete
    assert stored["status"] == "completed" and stored["end_reason"] == "stop"
    assert stored["duration_s"] == max(1, round(meta["duration_ms"] / 1000))
    assert stored["media_ms"] == len(inbound) // SAMPLES_PER_MS
    assert stored["from_number"] == "+447700900123" and stored["direction"] == "inbound"
    assert stored["mode"] == "voicemail" and stored["providers"] == ["local"]
    assert stored["stream_sid"] == result.stream_sid and stored["ended_at"] and stored["started_at"]
    segments = stored["transcript"]
    assert [s["start_ms"] for s in segments] == sorted(s["start_ms"] for s in segments)
    assert {s["speaker"] for s in segments} <= {"caller", "agent"}
    for seg in segments:
        assert 0 <= seg["start_ms"] < seg["end_ms"] <= meta["duration_ms"] + 300


@pytest.mark.parametrize("imp", [
    Impairments(loss_pct=5, seed=1),
    Impairments(jitter_ms=40, reorder_pct=3, seed=2),
    Impairments(jitter_ms=30, loss_pct=3, reorder_pct=2, seed=3),
], ids=["loss", "jitter+reorder", "all"])
async def test_impaired_network_gives_exact_duration_and_silence_where_frames_were_lost(
        server: Any, http: httpx.AsyncClient, imp: Impairments) -> None:
    path = FIXTURES / "real_beckett_short.wav"
    schedule = build_schedule(path, imp)
    result = await replay_call(server.target, schedule, speed=0, client=http)
    assert result.stored is not None
    expected = [bytearray(t) for t in read_tracks(path)]
    frame = FRAME_MS * SAMPLES_PER_MS
    for track, channel in zip(("inbound", "outbound"), expected, strict=True):
        for ts in schedule.lost[track]:
            start = ts * SAMPLES_PER_MS
            channel[start:start + frame] = bytes([MULAW_SILENCE]) * frame
    got = recording(server, result.stored)
    assert len(got) == 2 * len(expected[0])
    assert got == interleave(bytes(expected[0]), bytes(expected[1]))
    assert result.stored["media_ms"] == schedule.duration_ms
    if imp.loss_pct:
        assert sum(len(v) for v in schedule.lost.values()) > 0


async def test_live_subscriber_resuming_with_after_misses_nothing(server: Any, http: httpx.AsyncClient) -> None:
    call_sid = new_sid("CA")
    url = f"{server.ws_base}/api/live/{call_sid}"
    headers = server.auth()
    first: list[dict[str, Any]] = []
    second: list[dict[str, Any]] = []

    async def flaky_subscriber() -> None:
        async with connect(url, additional_headers=headers) as ws:
            async for raw in ws:
                first.append(orjson.loads(raw))
                if first[-1]["type"] == "transcript":
                    break  # drop the connection mid-call
        async with connect(f"{url}?after={first[-1]['seq']}", additional_headers=headers) as ws:
            async for raw in ws:
                second.append(orjson.loads(raw))
                if second[-1]["type"] == "call.ended":
                    return

    async with asyncio.timeout(240):
        subscriber = asyncio.create_task(flaky_subscriber())
        await asyncio.sleep(0.2)
        result = await replay(server, http, FIXTURES / "real_librivox_reader.wav", speed=4, call_sid=call_sid)
        await subscriber
    seen = [e["seq"] for e in first + second]
    assert seen == list(range(1, len(seen) + 1))
    assert [e["seq"] for e in result.events] == seen[: len(result.events)]
    finals = [e["text"] for e in first + second if e["type"] == "transcript" and e["is_final"]]
    assert finals == [e["text"] for e in result.events if e["type"] == "transcript" and e["is_final"]]
    assert len(second) > 1


async def test_live_api_requires_the_token(server: Any) -> None:
    with pytest.raises(Exception) as info:
        async with connect(f"{server.ws_base}/api/live") as ws:
            await ws.recv()
    assert "403" in str(info.value) or "1008" in str(info.value)


async def test_forged_webhooks_get_403_and_store_nothing(server: Any, http: httpx.AsyncClient) -> None:
    sid = new_sid("CA")
    form = {"CallSid": sid, "From": "+447700900001", "To": "+447700900002", "CallStatus": "ringing"}
    for path in ("/api/twilio/voice", "/api/twilio/status"):
        for headers in ({}, {"X-Twilio-Signature": "forged="}):
            r = await http.post(path, data=form, headers=headers)
            assert r.status_code == 403
    # a correct signature over different parameters is still forged
    from switchboard.twilio.signature import sign_webhook
    good = sign_webhook(server.target.auth_token, server.base + "/api/twilio/voice", form)
    r = await http.post("/api/twilio/voice", data={**form, "From": "+15550000000"},
                        headers={"X-Twilio-Signature": good})
    assert r.status_code == 403
    r = await http.get(f"/api/calls/{sid}", headers=server.auth())
    assert r.status_code == 404


async def test_rest_requires_bearer_and_lists_calls(server: Any, http: httpx.AsyncClient) -> None:
    assert (await http.get("/api/calls")).status_code == 401
    assert (await http.get("/api/calls", headers={"Authorization": "Bearer nope"})).status_code == 401
    r = await http.get("/api/calls?limit=2", headers=server.auth())
    assert r.status_code == 200 and len(r.json()["calls"]) <= 2
    assert (await http.get("/api/calls?limit=x", headers=server.auth())).status_code == 400
    assert (await http.get("/api/leads?before=y", headers=server.auth())).status_code == 400
    assert (await http.get("/healthz")).json() == {"status": "ok"}
    ready = await http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] == "ok"
    loop = ready.json()["checks"]["event_loop"]  # the lag monitor runs for the app's whole life
    assert loop["ticks"] > 0 and 0 <= loop["lag_s"] <= loop["max_lag_s"] and loop["starved_s"] >= 0
    metrics = (await http.get("/metrics")).text
    assert "\nswitchboard_loop_lag_seconds " in metrics and "\nswitchboard_loop_starved_seconds " in metrics


async def test_recording_endpoint_serves_the_stored_wav(server: Any, http: httpx.AsyncClient,
                                                        replayed: dict[Path, CallResult]) -> None:
    path = FIXTURES / "real_beckett_short.wav"
    sid = replayed[path].call_sid
    assert (await http.get(f"/api/calls/{sid}/recording")).status_code == 401
    r = await http.get(f"/api/calls/{sid}/recording", headers=server.auth())
    assert r.status_code == 200 and r.headers["content-type"] == "audio/wav"
    stored = replayed[path].stored
    assert stored is not None
    assert r.content == (server.settings.data_dir / stored["recording_key"]).read_bytes()
    missing = await http.get(f"/api/calls/{new_sid('CA')}/recording", headers=server.auth())
    assert missing.status_code == 404
