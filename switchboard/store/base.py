"""Records and the :class:`Store` protocol: the seam between the call pipeline and the database.

The protocol is deliberately small so another backend (or an in-memory fake) can slot in. Times are aware
``datetime`` values for wall-clock events and integer milliseconds of *media time* for audio positions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Literal, Protocol

if TYPE_CHECKING:
    from .call_query import CallFilter

CallMode = Literal["operator", "voicemail", "agent"]
Track = Literal["inbound", "outbound"]

TRACKS: Final = frozenset({"inbound", "outbound"})
TERMINAL_STATUSES: Final = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})
"""Twilio CallStatus values after which a call never changes again."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    """One row of ``calls``; ``None`` means "not known yet"."""

    id: int
    call_sid: str
    account_sid: str | None
    from_number: str | None
    to_number: str | None
    direction: str | None
    mode: str | None
    status: str | None
    status_seq: int | None
    created_at: datetime
    answered_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    duration_s: int | None
    media_ms: int | None
    stream_sid: str | None
    end_reason: str | None
    recording_key: str | None
    recording_status: str | None
    providers: tuple[str, ...]
    stats: dict[str, Any] | None
    recording_incomplete: bool = False
    """The recording stopped short on a write error (full disk, I/O error); it holds what reached the disk."""
    usage: dict[str, Any] | None = None
    """Agent calls: model tokens, TTS characters and STT seconds per provider."""
    turn_latencies_ms: tuple[int, ...] = ()
    """Agent calls: each agent turn's voice-to-voice latency (end of the caller's speech → first audio sent)."""


@dataclass(frozen=True, slots=True)
class Segment:
    """A final transcript segment; ``(call_sid, part, track, seq)`` identifies it, so re-inserting is harmless."""

    call_sid: str
    track: str
    seq: int
    start_ms: int
    end_ms: int
    text: str
    provider: str
    confidence: float | None = None
    part: int = 1
    """Which of the call's media streams said it (1, 2, …): ``seq`` restarts per stream, ``start_ms`` does not (it
    is on the call's timeline, the stream's offset added)."""

    def __post_init__(self) -> None:
        # Rejected here, on the producer's stack, rather than failing a whole batch in the writer later.
        if self.track not in TRACKS:
            raise ValueError(f"segment track must be one of {sorted(TRACKS)}, got {self.track!r}")


@dataclass(frozen=True, slots=True)
class ExtractionRecord:
    """One stored extraction; ``data`` is the :class:`~switchboard.extract.CallFacts` dump (the store stays
    ignorant of the schema so old versions keep loading after it changes)."""

    id: int
    call_sid: str
    version: int
    final: bool
    data: dict[str, Any]
    source: str
    model: str | None
    fallback_reason: str | None
    created_at: datetime
    part: int = 1
    """A final extraction is made after each stream of the call ends, over the whole transcript so far."""


@dataclass(frozen=True, slots=True)
class StreamPlacement:
    """Where a media stream sits in its call: its ``part`` (1 for the first) and the call-timeline ms of its media
    time 0 (past the end of every earlier stream, so one timeline holds the whole call)."""

    part: int = 1
    offset_ms: int = 0


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """One media stream of a call (``call_streams``): its place on the call's timeline and its recording."""

    part: int
    stream_sid: str
    offset_ms: int
    started_at: datetime
    ended_at: datetime | None
    media_ms: int | None
    recording_key: str | None
    end_reason: str | None


@dataclass(frozen=True, slots=True)
class LeadFields:
    """What one call says about its lead; ``phone`` is the caller ID (the dedupe key), None when withheld."""

    phone: str | None
    name: str | None = None
    callback_number: str | None = None
    address: str | None = None
    postcode: str | None = None
    urgency: str | None = None
    issue_category: str | None = None
    segment: str | None = None
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class LeadRecord:
    """One row of ``leads`` with its calls, oldest first; ``call_sid`` is the latest of them."""

    id: int
    call_sid: str
    phone: str | None
    name: str | None
    callback_number: str | None
    address: str | None
    postcode: str | None
    urgency: str | None
    issue_category: str | None
    segment: str | None
    summary: str | None
    status: str
    call_count: int
    created_at: datetime
    updated_at: datetime
    calls: tuple[str, ...]
    unconfirmed: tuple[str, ...] = ()
    """Contact fields (``caller_name``, ``callback_number``, ``address``, ``postcode``) whose value the latest
    call heard with low confidence (its final extraction's ``needs_confirmation``): to be confirmed."""


@dataclass(frozen=True, slots=True)
class CallListing:
    """A call as the history lists it: the row and the lead it fed, if any."""

    call: CallRecord
    lead_id: int | None
    lead_name: str | None
    lead_status: str | None
    urgency: str | None


LEAD_STATUSES: Final = frozenset({"new", "contacted", "closed"})


def status_applies(stored_status: str | None, stored_seq: int | None, status: str, sequence: int | None) -> bool:
    """Decide whether a status callback supersedes what is stored.

    Twilio delivers status callbacks out of order and may retry them; ``SequenceNumber`` orders them per call.
    Rules, in order: a terminal status is never replaced by a non-terminal one; anything beats "nothing
    stored"; a terminal status beats a non-terminal one whatever the numbers; otherwise a sequenced callback
    applies only if its number is higher than the stored one, and an unsequenced one only while nothing
    sequenced has been stored (last unsequenced writer wins).
    """
    new_terminal = status in TERMINAL_STATUSES
    old_terminal = stored_status in TERMINAL_STATUSES
    if old_terminal and not new_terminal:
        return False
    if stored_status is None or (new_terminal and not old_terminal):
        return True
    if sequence is None:
        return stored_seq is None
    return stored_seq is None or sequence > stored_seq


class Store(Protocol):
    """Durable calls and transcript segments. Every method may raise :class:`~.errors.StoreError`."""

    async def create_call(
        self,
        call_sid: str,
        *,
        account_sid: str | None,
        from_number: str | None,
        to_number: str | None,
        direction: str | None,
        mode: CallMode | None,
        status: str | None,
        at: datetime,
    ) -> None:
        """Upsert from the voice webhook; known fields are never overwritten with ``None``."""
        ...

    async def apply_status(
        self,
        call_sid: str,
        *,
        status: str,
        sequence: int | None,
        duration_s: int | None,
        at: datetime,
        account_sid: str | None = None,
        from_number: str | None = None,
        to_number: str | None = None,
        direction: str | None = None,
    ) -> bool:
        """Apply a status callback if :func:`status_applies`; creates the row if missing; True if applied."""
        ...

    async def stream_started(self, call_sid: str, *, stream_sid: str, at: datetime, instance_id: str | None = None,
                             recording_key: str | None = None, after_ms: int = 0) -> StreamPlacement:
        """Record a media stream's start and place it in the call: the next part, at an offset past every earlier
        stream's end (ended ones by their length, live ones by the wall time since they started), the wall time
        since the call's first stream started, and ``after_ms`` (what this instance knows). The same stream again
        gets its first placement. The call is live again until this stream ends. First start and recording key
        win on the call row; the latest instance holds the media; creates the row if missing."""
        ...

    async def call_streams(self, call_sid: str) -> list[StreamRecord]:
        """The call's media streams, in order."""
        ...

    async def orphaned_calls(self, instance_id: str) -> list[CallRecord]:
        """Calls whose media stream ``instance_id`` held and that were never marked ended (it died mid-call)."""
        ...

    async def record_usage(self, call_sid: str, *, usage: Mapping[str, Any], turn_latencies_ms: Sequence[int]) -> None:
        """An agent call's usage and turn latencies (its totals, replacing what was stored)."""
        ...

    async def end_call(
        self,
        call_sid: str,
        *,
        at: datetime,
        reason: str,
        media_ms: int,
        recording_key: str | None,
        recording_status: str | None,
        providers: Sequence[str],
        stats: Mapping[str, Any],
        recording_incomplete: bool = False,
        part: int = 1,
    ) -> None:
        """Mark stream ``part`` ended (``media_ms`` is its own length) and the call with it unless a later stream
        has started; idempotent, the first end wins for ``ended_at`` and ``end_reason``."""
        ...

    async def consume_stream_token(self, nonce: str, call_sid: str, expires_at: datetime) -> bool:
        """Record a stream token as used (single use across instances); False if it already was."""
        ...

    async def add_segments(self, segments: Sequence[Segment]) -> None:
        """Insert a batch in one round trip; segments already stored are ignored."""
        ...

    async def get_call(self, call_sid: str) -> CallRecord | None: ...

    async def list_calls(self, *, limit: int = 50, before_id: int | None = None) -> list[CallRecord]:
        """Newest first; pass the last ``id`` seen as ``before_id`` for the next page."""
        ...

    async def search_calls(self, f: CallFilter, *, limit: int = 50, before_id: int | None = None,
                           ) -> list[CallListing]:
        """Calls matching ``f`` with their leads, newest first, keyset-paged like :meth:`list_calls`."""
        ...

    async def get_segments(self, call_sid: str) -> list[Segment]:
        """Segments in media-time order (``start_ms``, then track, then ``seq``)."""
        ...

    async def add_extraction(
        self,
        call_sid: str,
        data: Mapping[str, Any],
        source: str,
        model: str | None,
        fallback_reason: str | None,
        *,
        final: bool = False,
        part: int = 1,
    ) -> int:
        """Store the next version for the call and return it (atomic: concurrent adds get distinct versions).

        With ``final`` the post-call extraction after stream ``part`` is stored at most once: a second final add
        for that part returns the version already stored, so a retried job does not grow the history."""
        ...

    async def latest_extraction(self, call_sid: str, *, final_only: bool = False) -> ExtractionRecord | None:
        """The final extraction once there is one (a live run finishing after it is stale), else the highest
        version unless ``final_only``; None if there is none."""
        ...

    async def upsert_lead(self, call_sid: str, fields: LeadFields) -> LeadRecord:
        """Create or update the open lead of ``fields.phone`` from this call and link the call to it.

        Idempotent per call: running it again for a call already linked updates the same lead, and only while
        this call is still the lead's latest (an older call's retry never overwrites a newer call's fields)."""
        ...

    async def get_lead(self, lead_id: int) -> LeadRecord | None: ...

    async def lead_for_call(self, call_sid: str) -> LeadRecord | None:
        """The lead this call fed, if any."""
        ...

    async def list_leads(self, *, limit: int = 50, before_id: int | None = None, open_only: bool = False,
                         ) -> list[LeadRecord]:
        """Newest lead first; pass the last ``id`` seen as ``before_id`` for the next page. ``open_only``
        leaves out closed (handled) leads."""
        ...

    async def set_lead_status(self, lead_id: int, status: str) -> LeadRecord | None:
        """Set a lead's status (one of :data:`LEAD_STATUSES`); None if there is no such lead."""
        ...

    async def ping(self) -> None:
        """Raise :class:`~.errors.StoreUnavailable` unless the database answers."""
        ...

    async def close(self) -> None: ...
