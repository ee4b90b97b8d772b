"""REST: calls, their transcripts and recordings; health and readiness."""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, Response, StreamingResponse

from audio import SAMPLES_PER_MS
from audio.errors import AudioError
from audio.join import join
from switchboard.call.transcripts import SPEAKERS
from switchboard.redact import public_error
from switchboard.routes.call_filters import BadFilter, parse_filter
from switchboard.services import Services
from switchboard.store.base import CallListing, CallRecord, Segment, StreamRecord
from switchboard.store.errors import StoreError
from switchboard.twilio_ids import is_call_sid
from switchboard.web.auth import Caller, identify, may_change


def _json(data: Any, status_code: int = 200) -> JSONResponse:
    return JSONResponse(data, status_code=status_code)


def _unauthorized() -> JSONResponse:
    return JSONResponse({"error": "missing or invalid bearer token or session"}, status_code=401,
                        headers={"WWW-Authenticate": "Bearer"})


async def _caller(request: Request) -> Caller | Response:
    """The bearer token or a dashboard session, or the 401 that replaces them."""
    services: Services = request.state.services
    caller = await identify(request, services)
    return _unauthorized() if caller is None else caller


def call_json(call: CallRecord) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(call):
        value = getattr(call, f.name)
        out[f.name] = value.isoformat() if isinstance(value, datetime) else value
    if isinstance(out.get("providers"), tuple):
        out["providers"] = list(out["providers"])
    return out


def listing_json(listing: CallListing) -> dict[str, Any]:
    """A history row: the call, whether it is streaming now, and the lead it fed (if any)."""
    out = call_json(listing.call)
    out["live"] = listing.call.started_at is not None and listing.call.ended_at is None
    out["lead"] = None if listing.lead_id is None else {
        "id": listing.lead_id, "name": listing.lead_name, "status": listing.lead_status, "urgency": listing.urgency}
    return out


def segment_json(seg: Segment) -> dict[str, Any]:
    return {"track": seg.track, "speaker": SPEAKERS.get(seg.track, seg.track), "seq": seg.seq,
            "start_ms": seg.start_ms, "end_ms": seg.end_ms, "text": seg.text, "provider": seg.provider,
            "confidence": seg.confidence, "part": seg.part}


INT64_MAX = 2**63 - 1


def _page(request: Request) -> tuple[int, int | None] | Response:
    """Keyset pagination parameters: ``limit`` (1–500, default 50) and ``before`` (a row id, int64), or a 400."""
    limit_raw = request.query_params.get("limit", "50")
    before_raw = request.query_params.get("before") or None
    if not _plain_int(limit_raw) or (before_raw is not None and not _plain_int(before_raw)):
        return _json({"error": "limit and before must be non-negative decimal integers"}, 400)
    before = int(before_raw) if before_raw is not None else None
    if before is not None and before > INT64_MAX:  # ids are bigint: anything larger is past every row
        return _json({"error": f"before must be at most {INT64_MAX}"}, 400)
    return min(max(int(limit_raw), 1), 500), before


def _plain_int(text: str) -> bool:
    """ASCII digits only (``int()`` also takes '٣', '+3', ' 3', '3_0'), short enough to stay cheap."""
    return text.isascii() and text.isdigit() and len(text) <= 20


async def _paged(request: Request, name: str, fetch: Any, render: Any, key: Any = lambda row: row.id,
                 **extra: Any) -> Response:
    """A keyset-paginated, authenticated listing: ``{name: [...], "next_before": id, **extra}``."""
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    page = _page(request)
    if isinstance(page, Response):
        return page
    limit, before_id = page
    rows = await fetch(limit=limit, before_id=before_id)
    body: dict[str, Any] = {name: [render(row) for row in rows], **extra}
    if len(rows) == limit:
        body["next_before"] = key(rows[-1])
    return _json(body)


async def list_calls(request: Request) -> Response:
    """Newest first, filtered (:mod:`switchboard.routes.call_filters`). With ``live=true`` the answer carries
    ``live_after``: the live hub's position read *before* the query, so subscribing to ``/api/live`` with
    ``after=live_after`` misses no event of the calls listed or of calls that start after."""
    services: Services = request.state.services
    try:
        found = parse_filter(request.query_params)
    except BadFilter as exc:
        return _json({"error": str(exc)}, 400)
    extra = {"live_after": services.hub.last_id()} if found.live else {}

    async def fetch(limit: int, before_id: int | None) -> list[CallListing]:
        return await services.store.search_calls(found, limit=limit, before_id=before_id)

    return await _paged(request, "calls", fetch, listing_json, lambda row: row.call.id, **extra)


async def _find_call(request: Request) -> CallRecord | Response:
    """The call named in the path, or the error response (401, 400, 404) that replaces it."""
    services: Services = request.state.services
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    sid = request.path_params["call_sid"]
    if not is_call_sid(sid):
        return _json({"error": "malformed CallSid"}, 400)
    call = await services.store.get_call(sid)
    return _json({"error": "no such call"}, 404) if call is None else call


async def get_call(request: Request) -> Response:
    services: Services = request.state.services
    call = await _find_call(request)
    if isinstance(call, Response):
        return call
    sid = call.call_sid
    # Jobs are read first: whatever a job reports done, its effect (extraction, lead) is already visible in the
    # reads that follow, so a client polling until its jobs are done never sees a stale lead.
    post_call = services.post_call
    jobs = [job.to_json() for job in await post_call.queue.list_jobs(call_sid=sid)] if post_call else []
    body = call_json(call)
    live = services.registry.get(sid)
    body["live"] = live is not None
    if live is not None:
        body["live_stats"] = live.live_stats()
    body["recordings"] = [_plain(stream) for stream in await services.store.call_streams(sid)]
    body["transcript"] = [segment_json(s) for s in await services.store.get_segments(sid)]
    extraction = await services.store.latest_extraction(sid)
    body["extraction"] = _plain(extraction)
    lead = await services.store.lead_for_call(sid)
    body["lead"] = _plain(lead)
    body["jobs"] = jobs
    return _json(body)


async def list_leads(request: Request) -> Response:
    """Newest first; ``status=open`` leaves out the leads already handled (closed)."""
    services: Services = request.state.services
    status = request.query_params.get("status") or "all"
    if status not in ("all", "open"):
        return _json({"error": f"status must be all or open; got {status[:40]!r}"}, 400)

    async def fetch(limit: int, before_id: int | None) -> list[Any]:
        return await services.store.list_leads(limit=limit, before_id=before_id, open_only=status == "open")

    return await _paged(request, "leads", fetch, _plain)


async def mark_lead_handled(request: Request) -> Response:
    """``POST /api/leads/{id}/handled``: close the lead (idempotent); the caller's next call opens a new one."""
    services: Services = request.state.services
    caller = await _caller(request)
    if isinstance(caller, Response):
        return caller
    if not may_change(request, caller, services.settings.public_url):
        return _json({"error": "missing or wrong CSRF token, or not from this site"}, 403)
    raw = request.path_params["lead_id"]
    if not raw.isdigit() or len(raw) > 18:
        return _json({"error": "lead id must be a positive integer"}, 400)
    lead = await services.store.set_lead_status(int(raw), "closed")
    return _json({"error": "no such lead"}, 404) if lead is None else _json(_plain(lead))


async def get_recording(request: Request) -> Response:
    """The call's recording: one file, or its streams' files joined on the call's timeline (``?part=N``: one
    stream's own file)."""
    services: Services = request.state.services
    call = await _find_call(request)
    if isinstance(call, Response):
        return call
    sid = call.call_sid
    streams = [s for s in await services.store.call_streams(sid) if s.recording_key]
    wanted = request.query_params.get("part")
    if wanted is not None:
        if not _plain_int(wanted):
            return _json({"error": "part must be a positive integer"}, 400)
        streams = [s for s in streams if s.part == int(wanted)]
        if not streams:
            return _json({"error": f"no recording of part {wanted[:20]}"}, 404)
    elif len(streams) < 2:
        streams = []
    if not streams:
        key = call.recording_key if wanted is None else None
        path = _recording_path(services, key)
        if path is None:
            return _json({"error": "no recording for this call" if not key else "recording not available on this "
                          "instance"}, 404)
        return FileResponse(path, media_type="audio/wav", filename=f"{sid}.wav")
    if len(streams) == 1:
        path = _recording_path(services, streams[0].recording_key)
        if path is None:
            return _json({"error": "recording not available on this instance"}, 404)
        return FileResponse(path, media_type="audio/wav", filename=f"{sid}-{streams[0].part}.wav")
    return await _joined(services, sid, streams)


async def _joined(services: Services, sid: str, streams: list[StreamRecord]) -> Response:
    """Every stream's recording on the call's timeline, streamed as one WAV (nothing written)."""
    parts = []
    for stream in streams:
        path = _recording_path(services, stream.recording_key)
        if path is None:
            return _json({"error": f"recording of part {stream.part} not available on this instance"}, 404)
        parts.append((path, stream.offset_ms * SAMPLES_PER_MS))
    try:
        joined = await asyncio.to_thread(join, parts)
    except (OSError, AudioError) as exc:
        return _json({"error": f"the recordings cannot be joined: {public_error(str(exc))}"}, 500)
    headers = {"content-length": str(joined.n_bytes), "content-disposition": f'attachment; filename="{sid}.wav"'}
    return StreamingResponse(joined.chunks(), media_type="audio/wav", headers=headers)


def _recording_path(services: Services, key: str | None) -> Path | None:
    """The recording's file under the data dir, or None (no key, outside the data dir, not on this instance)."""
    if not key:
        return None
    root = services.settings.data_dir.resolve()
    path = (services.settings.data_dir / key).resolve()
    return path if path.is_relative_to(root) and path.is_file() else None


async def healthz(request: Request) -> Response:
    """Liveness: 503 once an essential background task is dead, so the orchestrator replaces the instance."""
    services: Services = request.state.services
    dead = services.supervisor.dead()
    if dead:
        return _json({"status": "unhealthy", "dead": {t.name: public_error(t.last_error) for t in dead}}, 503)
    return _json({"status": "ok"})


async def readyz(request: Request) -> Response:
    services: Services = request.state.services
    checks: dict[str, Any] = {}
    ok = True
    try:
        await services.store.ping()
        checks["database"] = "ok"
    except StoreError as exc:  # its text names the database host: this endpoint is unauthenticated
        ok = False
        checks["database"] = f"unavailable ({type(exc).__name__})"
    tasks = {t.name: {"state": t.state.value, "essential": t.essential, "crashes": t.crashes,
                      "last_error": public_error(t.last_error)} for t in services.supervisor.statuses()}
    checks["tasks"] = tasks
    ok = ok and not services.supervisor.dead()
    admission = _plain(services.admission.stats())
    checks["admission"] = admission
    ok = ok and not admission["draining"]
    writer = _plain(services.writer.stats())
    writer["last_error"] = public_error(writer["last_error"])
    checks["segment_writer"] = writer
    checks["live"] = services.hub.stats()
    checks["calls_live"] = len(services.registry)
    loop = _plain(services.loop_lag.stats())
    # An overloaded instance stays up but asks for no new calls: the load balancer routes them to another one
    # (its live calls go on; the lag monitor's clock already keeps providers from being blamed for it).
    loop["overloaded"] = loop["lag_s"] > services.settings.max_loop_lag_s
    loop["max_lag_allowed_s"] = services.settings.max_loop_lag_s
    ok = ok and not loop["overloaded"]
    checks["event_loop"] = loop
    checks["transcriber"] = services.transcriber.name
    checks["providers"] = _providers(services)
    if services.post_call is not None:
        archive = _plain(services.post_call.spool.backlog())
        archive["last_error"] = public_error(archive["last_error"])
        checks["archive"] = archive
        end_spool = services.post_call.end_spool
        if end_spool is not None:  # ends of calls the database missed, waiting on disk
            checks["call_ends_spooled"] = await asyncio.to_thread(end_spool.pending)
        try:
            checks["jobs"] = _plain(await services.post_call.queue.stats())
        except StoreError as exc:
            checks["jobs"] = f"unavailable ({type(exc).__name__})"
    status = "ok" if ok else "unhealthy" if services.supervisor.dead() else \
        "draining" if admission["draining"] else "degraded"
    return _json({"status": status, "checks": checks}, 200 if ok else 503)


def _providers(services: Services) -> dict[str, dict[str, Any]]:
    """Breaker state per provider. An open breaker does not make the server unready (the chain ends at the local
    recogniser); error texts are left out because this endpoint is unauthenticated."""
    shown = ("state", "failures", "recent_failures", "successes", "cooldown_s")
    return {name: {k: snap[k] for k in shown} for name, snap in services.breakers.snapshot().items()}


def _plain(stats: Any) -> Any:
    """A dataclass (record, stats snapshot) as JSON-ready data: datetimes as ISO 8601."""
    if dataclasses.is_dataclass(stats) and not isinstance(stats, type):
        return _jsonable(dataclasses.asdict(stats))
    return stats


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


async def metrics(request: Request) -> Response:
    services: Services = request.state.services
    return PlainTextResponse(services.metrics.render(), media_type="text/plain; version=0.0.4")
