"""WisprFlow sessions: one dictation utterance per socket, and the supply that opens them ahead of need.

Lifecycle of a :class:`Session` (its own task, owned by the :class:`SessionSupply` that made it)::

    CONNECTING ──ack──▶ READY ──feed──▶ STREAMING ──commit──▶ COMMITTED ──final──▶ DONE
        └──────────────────┴──────────────┴──────────────────────┴──(error, close, timeout)──▶ FAILED

``feed``/``commit`` are sync, so the media path never waits on the network; the task sends, receives and
closes. Failures are translated once, here: refused upgrade (401/403), an auth-worded error or a policy close
(1008) before the ack → :class:`ProviderAuthError`; anything else (no ack within ``auth_timeout_s``, close
before the final, an error reply, a non-JSON frame, no final ``final_timeout_s`` after commit) →
:class:`ProviderUnavailable`. A session that fails after its auth ack but before any ``append`` went out is
flagged ``lost_unused`` (typically a pre-opened socket the server closed as idle): the server saw no audio, so
the caller may replace it and send the utterance again instead of failing.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from switchboard.clock_timeout import ClockTimeout
from switchboard.transcribe.errors import ProviderAuthError, ProviderUnavailable, TranscriptionError
from switchboard.transcribe.wisprflow_wire import (
    PROVIDER,
    ReplyKind,
    WireError,
    append_message,
    auth_message,
    commit_message,
    parse_reply,
)

log = logging.getLogger(__name__)

_AUTH_WORDS: Final = re.compile(r"auth|api[ _-]?key|token|credential|unauthori[sz]ed|forbidden|permission", re.I)
_AUTH_CLOSE_CODES: Final = frozenset({1008, 4001, 4003, 4401, 4403})
"""Close codes during the handshake phase that mean "not allowed" (1008 = policy violation, RFC 6455 §7.4.1)."""


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """Everything a session needs; ``url`` carries the key in its query, so neither is shown in a repr."""

    url: str = field(repr=False)
    token: str = field(repr=False)
    language: tuple[str, ...] = ("en",)
    packet_s: float = 1.0
    auth_timeout_s: float = 3.0
    final_timeout_s: float = 5.0
    close_timeout_s: float = 1.0
    context: Mapping[str, Any] | None = None
    clock: Callable[[], float] | None = field(default=None, compare=False)
    """The clock the auth and final timeouts run on (the app's effective loop time); None = the loop's."""


class SessionState(enum.Enum):
    CONNECTING = "connecting"
    READY = "ready"
    STREAMING = "streaming"
    COMMITTED = "committed"
    DONE = "done"
    FAILED = "failed"


class IllegalSessionUse(RuntimeError):
    """The caller fed or committed a session in a state that does not take it (a bug in the caller)."""


class Session:
    """One utterance on one socket. ``feed``/``commit`` are sync (the media path never waits); the session's
    own task sends, receives and closes. Results are read from attributes, after the ``wake`` callback."""

    def __init__(self, config: SessionConfig, wake: Callable[[], None]) -> None:
        self._config = config
        self._wake = wake
        self.state = SessionState.CONNECTING
        self.failure: TranscriptionError | None = None
        self.lost_unused = False
        """It failed after the auth ack and before any ``append`` was sent: the server has seen no audio."""
        self.partial: str | None = None
        self.partial_version = 0
        self.final: str | None = None
        self.language: str | None = None
        self.fed_packets = 0
        self.ready_at: float | None = None
        self._outbox: list[bytes] = []
        self._total: int | None = None
        self._commit_sent = False
        self._appended = 0  # packets written to the socket
        self._commit_at: float | None = None
        self._final_timeout_s = config.final_timeout_s
        self._deadline: ClockTimeout | None = None
        self._work = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @classmethod
    def start(cls, config: SessionConfig, wake: Callable[[], None]) -> Session:
        """Open a session now (connect + auth in its own task); it waits READY for packets."""
        session = cls(config, wake)
        session._task = asyncio.get_running_loop().create_task(session._run(), name="wisprflow-session")
        return session

    @property
    def finished(self) -> bool:
        """The task has ended: the socket is closed (or was never opened)."""
        return self._task is None or self._task.done()

    def feed(self, packets: Sequence[bytes]) -> None:
        """Queue full-length packets for sending, in order."""
        if self.state not in (SessionState.CONNECTING, SessionState.READY, SessionState.STREAMING):
            if self.state is SessionState.FAILED:
                return  # the failure is reported through `failure`; the audio has nowhere to go
            raise IllegalSessionUse(f"feed in state {self.state.name}")
        self.state = SessionState.STREAMING
        self._outbox.extend(packets)
        self.fed_packets += len(packets)
        self._work.set()

    def commit(self, final_timeout_s: float | None = None) -> None:
        """No more packets; the final must arrive within ``final_timeout_s`` (default: the config's) from now."""
        if self.state is SessionState.FAILED:
            return
        if self.state in (SessionState.COMMITTED, SessionState.DONE) or not self.fed_packets:
            raise IllegalSessionUse(f"commit in state {self.state.name} after {self.fed_packets} packets")
        self.state = SessionState.COMMITTED
        self._total = self.fed_packets
        if final_timeout_s is not None:
            self._final_timeout_s = final_timeout_s
        self._commit_at = self._now()
        self._arm_deadline()
        self._work.set()

    def unsent(self) -> tuple[list[bytes], bool]:
        """Packets fed but not written to the socket, and whether ``commit`` was called: for a
        ``lost_unused`` session, the whole utterance, ready to go out again on another one."""
        return list(self._outbox), self._total is not None

    def check(self) -> None:
        """Raise what made the session fail; a non-provider error (a bug) from the task is re-raised as is."""
        if self.failure is not None:
            raise self.failure
        task = self._task
        if task is not None and task.done() and not task.cancelled() and (bug := task.exception()) is not None:
            raise bug

    def cancel(self) -> None:
        """Abandon the session: the task closes its socket (bounded by ``close_timeout_s``) and ends."""
        if self._task is not None:
            self._task.cancel()

    async def wait_closed(self) -> None:
        """Wait until the task has ended. Provider failures are read through :meth:`check`; only a bug (any
        other exception) is raised here, so none goes unseen even from a retired session."""
        task = self._task
        if task is not None:
            await asyncio.wait([task])
            if not task.cancelled() and (bug := task.exception()) is not None:
                raise bug

    # -- task ---------------------------------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            deadline = self._now() + self._config.auth_timeout_s
            ws = await self._connect(deadline)
            try:
                await self._authenticate(ws, deadline)
                self.ready_at = asyncio.get_running_loop().time()
                if self.state is SessionState.CONNECTING:
                    self.state = SessionState.READY
                self._wake()
                async with asyncio.TaskGroup() as tasks:
                    tasks.create_task(self._pump(ws))
                    await self._receive(ws)
            finally:
                await ws.close()
        except* TranscriptionError as group:
            failure = group.exceptions[0]
            self._fail(failure if isinstance(failure, TranscriptionError) else TranscriptionError(str(failure)))

    def _fail(self, exc: TranscriptionError) -> None:
        self.lost_unused = self.ready_at is not None and not self._appended
        self.state = SessionState.FAILED
        self.failure = exc
        log.debug("wisprflow session failed (%s)", exc)
        self._wake()

    async def _connect(self, deadline: float) -> ClientConnection:
        """TCP (+TLS) and the HTTP upgrade; permessage-deflate is off: base64 PCM barely compresses and zlib
        would cost more CPU than the whole rest of the stream."""
        c = self._config
        try:
            async with ClockTimeout(c.clock, deadline):
                return await connect(c.url, compression=None, open_timeout=None,
                                     close_timeout=c.close_timeout_s, max_size=2**20)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise ProviderAuthError(f"upgrade refused with HTTP {status}", provider=PROVIDER) from exc
            raise ProviderUnavailable(f"upgrade refused with HTTP {status}", provider=PROVIDER) from exc
        except (InvalidHandshake, ConnectionClosed, OSError, TimeoutError) as exc:
            raise ProviderUnavailable(f"cannot connect: {exc!r}", provider=PROVIDER) from exc

    async def _authenticate(self, ws: ClientConnection, deadline: float) -> None:
        c = self._config
        try:
            async with ClockTimeout(c.clock, deadline):
                await ws.send(auth_message(c.token, c.language, c.context))
                while True:
                    reply = parse_reply(await ws.recv())
                    if reply.kind is ReplyKind.AUTH:
                        return
                    if reply.kind is ReplyKind.ERROR:
                        kind = ProviderAuthError if _AUTH_WORDS.search(reply.text) else ProviderUnavailable
                        raise kind(f"auth failed: {reply.text}", provider=PROVIDER)
        except TimeoutError as exc:
            raise ProviderUnavailable(f"no auth ack within {c.auth_timeout_s} s", provider=PROVIDER) from exc
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            kind = ProviderAuthError if code in _AUTH_CLOSE_CODES else ProviderUnavailable
            raise kind(f"closed during auth (code {code})", provider=PROVIDER) from exc
        except WireError as exc:
            raise ProviderUnavailable(str(exc), provider=PROVIDER) from exc

    async def _pump(self, ws: ClientConnection) -> None:
        """Send queued packets (all that are waiting, in one ``append``) and, last, the ``commit``."""
        try:
            while True:
                await self._work.wait()
                self._work.clear()
                if self._outbox:
                    batch = list(self._outbox)  # dropped from the outbox only once written
                    await ws.send(append_message(self._appended, batch, self._config.packet_s))
                    del self._outbox[: len(batch)]
                    self._appended += len(batch)
                if self._total is not None and not self._outbox:
                    self._commit_sent = True
                    await ws.send(commit_message(self._total))
                    return
        except ConnectionClosed:
            return  # the receiver sees the same close and reports it

    async def _receive(self, ws: ClientConnection) -> None:
        """Read until the final (after our commit); partials replace each other."""
        try:
            async with ClockTimeout(self._config.clock, None) as self._deadline:
                self._arm_deadline()
                while True:
                    reply = parse_reply(await ws.recv())
                    if reply.kind is ReplyKind.ERROR:
                        raise ProviderUnavailable(f"server error: {reply.text}", provider=PROVIDER)
                    if reply.kind is not ReplyKind.TEXT:
                        continue
                    self.language = reply.language or self.language
                    if reply.final and self._commit_sent:
                        self.final = reply.text
                        self.state = SessionState.DONE
                        self._wake()
                        return
                    self.partial, self.partial_version = reply.text, self.partial_version + 1  # a final before
                    self._wake()  # our commit cannot be the whole utterance's: it is only a hypothesis
        except TimeoutError as exc:
            raise ProviderUnavailable(f"no final within {round(self._final_timeout_s, 2)} s of commit",
                                      provider=PROVIDER) from exc
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            raise ProviderUnavailable(f"closed before the final (code {code})", provider=PROVIDER) from exc
        except WireError as exc:
            raise ProviderUnavailable(str(exc), provider=PROVIDER) from exc
        finally:
            self._deadline = None

    def _now(self) -> float:
        clock = self._config.clock
        return clock() if clock is not None else asyncio.get_running_loop().time()

    def _arm_deadline(self) -> None:
        if self._deadline is not None and self._commit_at is not None:
            self._deadline.reschedule(self._commit_at + self._final_timeout_s)


class SessionSupply:
    """Hands out sessions, keeping one opened ahead of need (at stream start and after each commit), and owns
    every session it made until its socket is closed.

    A pre-opened socket is kept READY for at most ``warm_ttl_s`` (the server's idle limit is undocumented; the
    note says not to idle past ~10 s); then it is closed and the next utterance opens one cold, which the
    endpointer's hangover still mostly hides.
    """

    def __init__(self, config: SessionConfig, wake: Callable[[], None], warm_ttl_s: float) -> None:
        self._config, self._wake, self._ttl = config, wake, warm_ttl_s
        self._warm: Session | None = None
        self._retired: list[Session] = []
        self.counts = dict.fromkeys(("warm_hits", "cold_opens", "warm_expired", "warm_lost", "aborted"), 0)

    def preopen(self) -> None:
        if self._warm is None:
            self._warm = Session.start(self._config, self._wake)

    def take(self) -> Session:
        """A session for a new utterance: the pre-opened one if it is still good, else a new one."""
        warm, self._warm = self._warm, None
        if warm is not None and warm.state is not SessionState.FAILED:
            self.counts["warm_hits"] += 1
            return warm
        if warm is not None:
            self.retire(warm)
        self.counts["cold_opens"] += 1
        return Session.start(self._config, self._wake)

    def replace(self, lost: Session) -> Session:
        """A new session carrying on for a ``lost_unused`` one: its packets (and commit) move across."""
        self.counts["warm_lost"] += 1
        self.retire(lost)
        self.counts["cold_opens"] += 1
        session = Session.start(self._config, self._wake)
        packets, committed = lost.unsent()
        if packets:
            session.feed(packets)
        if committed:
            session.commit()
        return session

    def give_back(self, session: Session) -> None:
        """An utterance dropped by the endpointer: an unused session becomes the warm one, a used one is
        aborted."""
        if not session.fed_packets and self._warm is None and session.state is not SessionState.FAILED:
            self._warm = session
            return
        self.counts["aborted"] += 1
        self.retire(session, abort=True)

    def retire(self, session: Session, abort: bool = False) -> None:
        """Done with ``session``: it closes its socket (at once if ``abort``) and is awaited at shutdown."""
        if abort:
            session.cancel()
        self._retired = [s for s in self._retired if not s.finished]  # forget the closed ones as we go
        self._retired.append(session)

    def tend(self, now: float) -> None:
        """Raise a pre-opened socket's connect/auth failure; drop one lost while idle or kept past its TTL."""
        warm = self._warm
        if warm is None:
            return
        if warm.state is SessionState.FAILED:
            if not warm.lost_unused:
                warm.check()
            self.counts["warm_lost"] += 1
        elif warm.ready_at is None or now - warm.ready_at < self._ttl:
            return
        else:
            self.counts["warm_expired"] += 1
        self.retire(warm, abort=True)
        self._warm = None

    def next_deadline(self) -> float | None:
        """Loop time at which :meth:`tend` will expire the pre-opened socket (the stream's wake-up timer)."""
        warm = self._warm
        return None if warm is None or warm.ready_at is None else warm.ready_at + self._ttl

    def stop_preopening(self) -> None:
        if self._warm is not None:
            self.retire(self._warm, abort=True)
            self._warm = None

    async def aclose(self, in_use: Iterable[Session] = ()) -> None:
        """Cancel the sessions ``in_use`` and the pre-opened one, then wait until every socket is closed
        (retired sessions finish their close handshake, bounded by ``close_timeout_s``)."""
        for session in in_use:
            self.retire(session, abort=True)
        self.stop_preopening()
        retired, self._retired = self._retired, []
        for session in retired:
            await session.wait_closed()


__all__ = ["IllegalSessionUse", "Session", "SessionConfig", "SessionState", "SessionSupply"]
