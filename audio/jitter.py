"""Per-track jitter buffer driven by Twilio's own ``chunk`` and ``timestamp`` fields.

Media Streams arrive over one TCP websocket, so frames are nearly always in order; what does happen is gaps (loss
upstream, an outbound track that is silent while nothing plays) and, behind relays, rare reordering or duplicates.
Position comes from ``timestamp`` (ms since stream start, Twilio's authoritative media time; twilio.md §(e)), never
from counting messages, so a lost frame becomes exactly its duration of μ-law silence. Position is tracked in
samples, so payloads that are not whole milliseconds keep their exact place.

Policy (arrival-driven, no clock):

* A frame that starts where the play-out cursor is, with nothing held, goes out at once: zero added latency for
  the in-order case. A hole shorter than 1 ms is timestamp rounding, not loss, and is filled at once.
* Behind a hole, frames are held until audio ``window_ms`` newer than a held frame has arrived; the hole is then
  filled with 0xFF (``Frame.filled``, split into ≤ 20 ms frames) and the held frames go out.
* A frame wholly behind the cursor is a *duplicate* if its chunk number or start was received recently, else
  *late*; either way it is dropped and counted. A frame straddling the cursor keeps only the part after it, and a
  frame overlapping a held one keeps the first arrival's samples; both count in ``overlaps_trimmed``.
* A frame starting more than ``max_gap_ms`` past the cursor raises :class:`TimestampJumpError` before anything is
  held or filled, so no timestamp can make the buffer produce more than ``max_gap_ms`` of silence at once. The bound
  is a last resort (10 min by default: an outbound track may be silent for minutes while nothing plays); the server
  refuses far smaller jumps at the protocol level first.
* Memory: held frames span at most ``window_ms`` plus one frame; past ``max_held_frames`` the oldest are forced
  out (``forced_releases``). Duplicate detection remembers the last few hundred frames only.
"""

import bisect
from dataclasses import dataclass
from typing import Final

from audio import FRAME_SAMPLES, MULAW_SILENCE, SAMPLES_PER_MS
from audio.errors import AudioError, TimestampJumpError

_SILENCE: Final = bytes([MULAW_SILENCE]) * FRAME_SAMPLES
MAX_GAP_MS: Final = 600_000
"""Default bound on a hole the buffer fills in one go (10 minutes: 4.8 MB of μ-law silence)."""
_RECENT_CAP: Final = 512
"""Frames remembered for duplicate detection (about 10 s of 20 ms frames); pruned to half when exceeded."""


@dataclass(frozen=True, slots=True)
class Frame:
    """μ-law audio released in play-out order; ``filled`` marks silence the buffer inserted for a hole.

    ``offset`` (0–7) is the sub-millisecond sample offset, non-zero only after payloads that were not whole ms.
    """

    timestamp_ms: int
    payload: bytes
    filled: bool
    offset: int = 0

    @property
    def start_sample(self) -> int:
        """Exact position in samples since stream start."""
        return self.timestamp_ms * SAMPLES_PER_MS + self.offset

    @property
    def end_sample(self) -> int:
        """Sample position where the next frame starts."""
        return self.start_sample + len(self.payload)


_new_object = object.__new__
_set_timestamp = Frame.__dict__["timestamp_ms"].__set__
_set_payload = Frame.__dict__["payload"].__set__
_set_filled = Frame.__dict__["filled"].__set__
_set_offset = Frame.__dict__["offset"].__set__


def _frame(timestamp_ms: int, payload: bytes, filled: bool, offset: int) -> Frame:
    """Build a Frame through its slot descriptors: half the cost of the frozen ``__init__`` on the per-frame path."""
    frame: Frame = _new_object(Frame)
    _set_timestamp(frame, timestamp_ms)
    _set_payload(frame, payload)
    _set_filled(frame, filled)
    _set_offset(frame, offset)
    return frame


@dataclass(frozen=True, slots=True)
class JitterStats:
    """Counters since creation; ``received == empty + duplicates + late_dropped + accepted``.

    ``released_frames`` counts received audio released (a frame split around held ones counts per piece) and
    ``gap_filled_frames`` the silence frames inserted; ``reordered`` counts frames that arrived after a later one
    (they filled a hole in time); ``max_held`` is the most frames held at once, counted on arrival.
    """

    received: int
    accepted: int
    released_frames: int
    reordered: int
    late_dropped: int
    duplicates: int
    overlaps_trimmed: int
    empty: int
    gap_filled_frames: int
    silence_samples: int
    forced_releases: int
    held_frames: int
    max_held: int

    @property
    def silence_ms(self) -> float:
        """Silence inserted for holes, in milliseconds."""
        return self.silence_samples / SAMPLES_PER_MS


class JitterBuffer:
    """Orders one track's frames by timestamp and fills holes with silence; see the module docstring."""

    def __init__(
        self, window_ms: int = 60, max_frame_bytes: int = 8000, start_ms: int = 0, max_held_frames: int = 1000,
        max_gap_ms: int = MAX_GAP_MS,
    ) -> None:
        if window_ms < 0 or start_ms < 0 or max_frame_bytes < 1 or max_held_frames < 1 or max_gap_ms < window_ms:
            raise AudioError(
                f"invalid jitter buffer config: window_ms={window_ms}, start_ms={start_ms}, "
                f"max_frame_bytes={max_frame_bytes}, max_held_frames={max_held_frames}, max_gap_ms={max_gap_ms}"
            )
        self._max_gap = max_gap_ms * SAMPLES_PER_MS
        self._window = window_ms * SAMPLES_PER_MS
        self._max_frame_bytes = max_frame_bytes
        self._max_held = max_held_frames
        self._cursor = start_ms * SAMPLES_PER_MS
        self._newest = self._cursor
        self._held: list[tuple[int, bytes]] = []
        self._recent: dict[int, int] = {}
        # Fast-path frames are counted once in ``_fast``; the other counters cover the slow path only.
        self._fast = self._received = self._accepted = self._released = self._reordered = 0
        self._late = self._duplicates = self._trimmed = self._empty = 0
        self._filled = self._silence = self._forced = self._max_held_seen = 0

    @property
    def next_sample(self) -> int:
        """Play-out cursor: the sample position the next released frame starts at."""
        return self._cursor

    def push(self, chunk: int, timestamp_ms: int, payload: bytes) -> list[Frame]:
        """Store one media frame and return the frames it releases, in order and contiguous."""
        if chunk < 0 or timestamp_ms < 0:
            raise AudioError(f"negative chunk {chunk} or timestamp {timestamp_ms} ms")
        n = len(payload)
        if n > self._max_frame_bytes:
            raise AudioError(f"frame of {n} bytes exceeds max_frame_bytes={self._max_frame_bytes}")
        start = timestamp_ms * SAMPLES_PER_MS
        if start == self._cursor and n and not self._held and chunk not in self._recent:
            # Fast path (the TCP in-order case): one counter, no held-set work. ``_remember`` is inlined.
            self._recent[chunk] = start
            if len(self._recent) > _RECENT_CAP:
                self._prune_recent()
            self._fast += 1
            self._cursor = start + n
            return [_frame(timestamp_ms, payload, False, 0)]
        if start - self._cursor > self._max_gap:
            self._jump(start, "ahead of the play-out cursor")
        return self._push_slow(chunk, start, payload)

    def release_until(self, timestamp_ms: int) -> list[Frame]:
        """Force out everything before ``timestamp_ms``, filling holes up to it: time is proven to have moved on."""
        if timestamp_ms < 0:
            raise AudioError(f"negative timestamp {timestamp_ms} ms")
        target = timestamp_ms * SAMPLES_PER_MS
        if target - self._cursor > self._max_gap:
            self._jump(target, "to release up to")
        out: list[Frame] = []
        held = self._held
        while held and held[0][0] < target:
            self._release_first(out)
        self._fill_to(target, out)
        self._release_ready(out)
        return out

    def flush(self) -> list[Frame]:
        """Release every held frame, filling holes between them; no silence is added after the last one."""
        out: list[Frame] = []
        while self._held:
            self._release_first(out)
        return out

    def stats(self) -> JitterStats:
        """Snapshot of the counters."""
        return JitterStats(
            received=self._fast + self._received,
            accepted=self._fast + self._accepted,
            released_frames=self._fast + self._released,
            reordered=self._reordered,
            late_dropped=self._late,
            duplicates=self._duplicates,
            overlaps_trimmed=self._trimmed,
            empty=self._empty,
            gap_filled_frames=self._filled,
            silence_samples=self._silence,
            forced_releases=self._forced,
            held_frames=len(self._held),
            max_held=self._max_held_seen,
        )

    def _jump(self, start: int, what: str) -> None:
        ahead_ms = (start - self._cursor) / SAMPLES_PER_MS
        raise TimestampJumpError(
            f"timestamp {start // SAMPLES_PER_MS} ms is {ahead_ms:.0f} ms {what} "
            f"(at {self._cursor // SAMPLES_PER_MS} ms; max_gap_ms={self._max_gap // SAMPLES_PER_MS})"
        )

    def _push_slow(self, chunk: int, start: int, payload: bytes) -> list[Frame]:
        self._received += 1
        if not payload:
            self._empty += 1
            return []
        if chunk in self._recent:
            self._duplicates += 1
            return []
        end = start + len(payload)
        if end <= self._cursor:
            # A scan, not an index: this path is rare and keeping a second index costs every in-order frame.
            if start in self._recent.values():
                self._duplicates += 1
            else:
                self._late += 1
            return []
        pieces = self._uncovered(start, end)
        if not pieces:
            self._duplicates += 1
            return []
        if pieces[0] != (start, end):
            self._trimmed += 1
        self._remember(chunk, start)
        self._accepted += 1
        if start < self._newest:
            self._reordered += 1
        else:
            self._newest = start
        for lo, hi in pieces:
            bisect.insort(self._held, (lo, payload[lo - start : hi - start]))
        self._max_held_seen = max(self._max_held_seen, len(self._held))
        out: list[Frame] = []
        while len(self._held) > self._max_held:
            self._forced += 1
            self._release_first(out)
        self._release_ready(out)
        return out

    def _uncovered(self, start: int, end: int) -> list[tuple[int, int]]:
        """Parts of [start, end) not behind the cursor and not already held (first arrival wins)."""
        held = self._held
        lo = max(start, self._cursor)
        i = bisect.bisect_left(held, (lo,))
        if i and held[i - 1][0] + len(held[i - 1][1]) > lo:
            lo = held[i - 1][0] + len(held[i - 1][1])
        pieces: list[tuple[int, int]] = []
        while i < len(held) and held[i][0] < end:
            if held[i][0] > lo:
                pieces.append((lo, held[i][0]))
            lo = max(lo, held[i][0] + len(held[i][1]))
            i += 1
        if lo < end:
            pieces.append((lo, end))
        return pieces

    def _release_ready(self, out: list[Frame]) -> None:
        held = self._held
        while held:
            start = held[0][0]
            if start - self._cursor >= SAMPLES_PER_MS and self._newest < start + self._window:
                return
            self._release_first(out)

    def _release_first(self, out: list[Frame]) -> None:
        start, payload = self._held.pop(0)
        self._fill_to(start, out)
        out.append(_frame(start // SAMPLES_PER_MS, payload, False, start % SAMPLES_PER_MS))
        self._released += 1
        self._cursor = start + len(payload)

    def _fill_to(self, target: int, out: list[Frame]) -> None:
        pos = self._cursor
        if pos >= target:
            return
        self._silence += target - pos
        while pos < target:
            n = min(FRAME_SAMPLES, target - pos)
            out.append(_frame(pos // SAMPLES_PER_MS, _SILENCE[:n], True, pos % SAMPLES_PER_MS))
            self._filled += 1
            pos += n
        self._cursor = target

    def _remember(self, chunk: int, start: int) -> None:
        self._recent[chunk] = start
        if len(self._recent) > _RECENT_CAP:
            self._prune_recent()

    def _prune_recent(self) -> None:
        """Keep the newer half: enough to catch relay duplicates, bounded for hour-long calls."""
        keep = list(self._recent.items())[_RECENT_CAP // 2 :]
        self._recent = dict(keep)
