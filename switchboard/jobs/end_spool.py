"""CallEndSpool: the end of a call (its row and its post-call jobs), kept on disk while PostgreSQL cannot take it.

When a call ends the session marks its row ended and enqueues its jobs (extract → lead → sms, archive). If the
database is down at that moment, both would be lost until an operator noticed. Instead the whole end is written here
as one JSON file (temp file, fsync, rename, fsync of the directory) and :meth:`CallEndSpool.run` applies it once the
database is back, retrying with backoff, also after a restart (files left by an earlier process are applied first).

Applying is idempotent, so at-least-once is safe: the row upsert and ``end_call`` keep the first end, and the jobs
have dedupe keys per call. Before applying, the spool waits until the segment writer has no transcript left on its
own spool (``settled``), so the extract job never reads a transcript missing the words spooled during the outage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from switchboard.archive.local import write_atomic
from switchboard.backoff import backoff_s
from switchboard.store.base import Store
from switchboard.store.errors import StoreError

from .handlers import PostCallHandlers

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallEnd:
    """Everything the end of one call writes to the database."""

    call_sid: str
    account_sid: str | None
    started_at: datetime
    ended_at: datetime
    reason: str
    media_ms: int
    recording_key: str | None
    recording_path: str | None
    providers: list[str]
    stats: dict[str, Any]
    recording_incomplete: bool = False
    part: int = 1
    """Which stream of the call ended (files spooled before streams had parts read as 1)."""

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_NON_STR_KEYS)

    @classmethod
    def from_json(cls, raw: bytes) -> CallEnd:
        data = orjson.loads(raw)
        data["started_at"] = datetime.fromisoformat(data["started_at"])
        data["ended_at"] = datetime.fromisoformat(data["ended_at"])
        return cls(**data)


async def apply_call_end(store: Store, handlers: PostCallHandlers | None, end: CallEnd) -> None:
    """Mark the call ended and record its post-call jobs; raises ``StoreError`` if the database cannot take it."""
    await store.create_call(end.call_sid, account_sid=end.account_sid, from_number=None, to_number=None,
                            direction=None, mode=None, status=None, at=end.started_at)
    await store.end_call(end.call_sid, at=end.ended_at, reason=end.reason, media_ms=end.media_ms,
                         recording_key=end.recording_key, recording_status="local", providers=end.providers,
                         stats=end.stats, recording_incomplete=end.recording_incomplete, part=end.part)
    if handlers is not None:
        path = Path(end.recording_path) if end.recording_path is not None else None
        await handlers.call_ended(end.call_sid, recording_path=path, recording_key=end.recording_key, part=end.part)


@dataclass
class CallEndSpool:
    """Durable ends of calls waiting for the database; see the module docstring."""

    directory: Path
    store: Store
    handlers: PostCallHandlers | None
    settled: Callable[[], bool] = lambda: True
    """True once the transcript segments spooled during an outage are in the database."""
    retry_min_s: float = 0.5
    retry_max_s: float = 30.0
    _wake: asyncio.Event = field(default_factory=asyncio.Event)
    _closed: bool = False
    _failures: int = 0
    applied: int = 0

    def pending(self) -> int:
        """Ends of calls on disk, not yet applied (a directory listing: small, and only while the database is down)."""
        return len(self._files())

    async def put(self, end: CallEnd) -> bool:
        """Keep ``end`` on disk (durably, before returning) until :meth:`run` has applied it; False (logged) if the
        disk refused it too, and the end of the call is lost."""
        path = self.directory / f"{end.call_sid}.{end.ended_at.timestamp():.6f}.json"
        try:
            await asyncio.to_thread(write_atomic, path, lambda out: out.write(end.to_json()))
        except OSError as exc:
            log.error("call %s: the end of the call is lost: the database and the spool both failed (%s)",
                      end.call_sid, exc)
            return False
        log.warning("call %s: end of call spooled to %s until the database is back", end.call_sid, path)
        self._wake.set()
        return True

    async def run(self) -> None:
        """Apply spooled ends, oldest first, until :meth:`aclose`; back off while the database refuses them."""
        while not self._closed:
            self._wake.clear()
            files = self._files()
            if not files:
                await self._wake.wait()
                continue
            if not self.settled() or not await self._apply(files[0]):
                self._failures += 1
                try:
                    async with asyncio.timeout(backoff_s(self._failures, self.retry_min_s, self.retry_max_s)):
                        await self._wake.wait()
                except TimeoutError:
                    pass  # time to try again
            else:
                self._failures = 0

    async def aclose(self) -> None:
        """Stop :meth:`run` after its current step; what is not applied stays on disk for the next start."""
        self._closed = True
        self._wake.set()

    async def _apply(self, path: Path) -> bool:
        try:
            end = CallEnd.from_json(await asyncio.to_thread(path.read_bytes))
        except (ValueError, TypeError, KeyError) as exc:  # unreadable: keep it aside for an operator
            log.error("%s is not a call end (%s); moved to failed/", path, exc)
            await asyncio.to_thread(_set_aside, path)
            return True
        try:
            await apply_call_end(self.store, self.handlers, end)
        except StoreError as exc:
            log.warning("call %s: end of call still waiting for the database: %s", end.call_sid, exc)
            return False
        await asyncio.to_thread(path.unlink)
        self.applied += 1
        log.info("call %s: spooled end of call applied", end.call_sid)
        return True

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob("CA*.json"), key=lambda p: p.stat().st_mtime)


def _set_aside(path: Path) -> None:
    failed = path.parent / "failed"
    failed.mkdir(exist_ok=True)
    path.rename(failed / path.name)
