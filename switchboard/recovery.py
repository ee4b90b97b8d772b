"""Finish the calls this instance was streaming when it died.

A call's session marks it ended and records its post-call jobs on every way out but one: the process being killed
(SIGKILL, OOM, a lost machine). Its row then stays open forever, its recording keeps the unknown-length header the
writer leaves until close, and no extraction, lead or archive job is ever made. The recording is on this instance's
disk, so the instance that held the stream is the one that finishes it: each stream start records the instance's
id, and on start-up, before it takes calls, the instance looks for its own calls never ended, finishes each
recording's header (:func:`audio.wav.repair`), marks the call ended and records its post-call jobs, as the session
would have. The transcript is what reached the database before the kill.

The id comes from ``SWITCHBOARD_INSTANCE_ID`` or is made once and kept in the data dir: instances must not share
a data dir (the embedded database and the recordings already require that).
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from audio import TWILIO_RATE
from audio.errors import AudioError
from audio.media_time import samples_to_ms
from audio.wav import repair
from switchboard.archive.base import recording_key
from switchboard.store.base import CallRecord, Store
from switchboard.store.errors import StoreError

if TYPE_CHECKING:
    from switchboard.postcall import PostCall

log = logging.getLogger(__name__)

RECOVERED_REASON = "server stopped mid-call (finished on restart)"


def instance_id(data_dir: Path, configured: str | None = None) -> str:
    """``configured`` if given, else the id kept in ``data_dir/instance-id`` (made on first use)."""
    if configured:
        return configured
    path = data_dir / "instance-id"
    try:
        found = path.read_text().strip()
    except FileNotFoundError:
        found = ""
    if found:
        return found
    made = f"sb-{uuid.uuid4().hex[:12]}"
    data_dir.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(made + "\n")
    tmp.replace(path)  # atomic: a crash leaves either no id or a whole one
    return made


async def recover_orphaned_calls(store: Store, instance: str, data_dir: Path,
                                 post_call: PostCall | None) -> list[str]:
    """End every call ``instance`` was streaming when it died; returns their CallSids."""
    finished = []
    for call in await store.orphaned_calls(instance):
        try:
            await _finish(store, call, data_dir, post_call)
        except StoreError as exc:  # one call's row must not keep the instance from starting; the next start retries
            log.error("call %s: could not be finished after the restart: %s", call.call_sid, exc)
            continue
        finished.append(call.call_sid)
    if finished:
        log.warning("finished %d call(s) that were live when this instance stopped: %s", len(finished),
                    ", ".join(finished))
    return finished


async def _finish(store: Store, call: CallRecord, data_dir: Path, post_call: PostCall | None) -> None:
    key, part = call.recording_key, 1
    streams = await store.call_streams(call.call_sid)
    if streams:  # the latest stream is the one that was live (an earlier one ended the usual way)
        key, part = streams[-1].recording_key or key, streams[-1].part
    if key is None and call.started_at is not None:
        key = recording_key(call.call_sid, call.started_at)
    path = data_dir / key if key is not None else None
    frames = 0
    if path is not None:
        try:
            frames = await asyncio.to_thread(repair, path)
        except (OSError, AudioError) as exc:
            log.error("call %s: recording %s cannot be finished: %s", call.call_sid, path, exc)
            path = key = None
    providers = sorted({s.provider for s in await store.get_segments(call.call_sid)})
    await store.end_call(call.call_sid, at=datetime.now(UTC), reason=RECOVERED_REASON,
                         media_ms=samples_to_ms(frames, TWILIO_RATE), recording_key=key,
                         recording_status="local" if key is not None else None, providers=providers,
                         stats={"recovered": True, "recording_frames": frames}, part=part)
    if post_call is not None:
        await post_call.handlers.call_ended(call.call_sid, recording_path=path, recording_key=key, part=part)


__all__ = ["RECOVERED_REASON", "instance_id", "recover_orphaned_calls"]
