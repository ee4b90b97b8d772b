"""TrackAligner: tracks on one sample timeline, zero drift over a simulated 2-hour call, bounded lag and memory.

Test audio is position-coded: sample i of channel c is ``(7 i + 101 c) mod 251``, never the silence code 0xFF and
never equal across channels, so any non-silence output byte proves exactly where (and on which track) it came from.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio import MULAW_SILENCE, SAMPLES_PER_MS
from audio.align import TrackAligner, TrackStats
from audio.errors import AudioError, TimestampJumpError
from audio.jitter import Frame, JitterBuffer

SIL = bytes([MULAW_SILENCE])
MS = SAMPLES_PER_MS


def coded(idx: np.ndarray, channel: int) -> np.ndarray:
    return ((idx.astype(np.int64) * 7 + channel * 101) % 251).astype(np.uint8)


PERIODS = [coded(np.arange(251), 0), coded(np.arange(251), 1)]


def coded_run(start: int, n: int, channel: int) -> np.ndarray:
    """``coded`` for samples start..start+n, built by tiling one period: the 2-hour test makes 115 M of them."""
    o = start % 251
    return np.tile(PERIODS[channel], n // 251 + 2)[o : o + n]


def coded_bytes(start: int, end: int, channel: int) -> bytes:
    return coded_run(start, end - start, channel).tobytes()


class Checker:
    """Consumes streamed stereo output in batches; asserts every audio byte sits at its own index and channel."""

    def __init__(self, markers: list[tuple[int, int]]) -> None:
        self.pos = 0
        self.audio = [0, 0]
        self.markers = sorted(markers)
        self.markers_seen = 0
        self._pending: list[bytes] = []
        self._pending_len = 0

    def add(self, out: bytes) -> None:
        assert len(out) % 2 == 0
        self._pending.append(out)
        self._pending_len += len(out)
        if self._pending_len > 2 * 8000 * 300:
            self.check()

    def check(self) -> None:
        data = np.frombuffer(b"".join(self._pending), np.uint8).reshape(-1, 2)
        self._pending, self._pending_len = [], 0
        for c in (0, 1):
            col = data[:, c]
            audio = col != MULAW_SILENCE
            assert np.all((col == coded_run(self.pos, len(col), c)) | ~audio), "audio sample off its position"
            self.audio[c] += int(np.count_nonzero(audio))
        while self.markers_seen < len(self.markers) and self.markers[self.markers_seen][0] < self.pos + len(data):
            sample, c = self.markers[self.markers_seen]
            assert data[sample - self.pos, c] == coded(np.array([sample]), c)[0], f"marker {sample} ch{c} lost"
            self.markers_seen += 1
        self.pos += len(data)


def segments(rng: random.Random, first_ms: int, end_ms: int, silent_stretches: bool) -> list[tuple[int, int]]:
    """(start_ms, size_ms) pushes of random size, with 3 % loss and optionally minutes-long silences."""
    out, pos = [], first_ms
    while pos < end_ms:
        if silent_stretches and rng.random() < 0.05:
            pos += rng.randint(1_000, 300_000)
            continue
        size = min(rng.randint(1, 2_000), end_ms - pos)
        if rng.random() >= 0.03:
            out.append((pos, size))
        pos += size
    return out


def test_two_hour_call_has_zero_drift() -> None:
    """Inbound silent for minutes at a time, outbound 30 s late, random push sizes and loss, arrival skew."""
    rng = random.Random(20240611)
    call_ms = 2 * 3600 * 1000
    tracks = [segments(rng, 0, call_ms, True), segments(rng, 30_000, call_ms, False)]
    events = []
    for c, segs in enumerate(tracks):
        arrival = 0  # each push arrives when its audio is complete, plus up to 0.5 s skew; in order per track
        for s, n in segs:
            arrival = max(arrival, s + n + rng.randint(0, 500))
            events.append((arrival, c, s, n))
    events.sort()
    markers = [(30_000 * MS, 1)] + [(s * MS, c) for c, segs in enumerate(tracks) for s, _ in rng.sample(segs, 100)]
    # Larger than a few consecutive lost 2 s pushes plus skew, so these coarse pushes never force-fill real audio.
    max_lag_ms = 10_000
    al = TrackAligner(max_lag_ms=max_lag_ms)
    check = Checker(markers)
    lead = 0
    for _, c, start, size in events:
        check.add(al.push(al.tracks[c], start, coded_bytes(start * MS, (start + size) * MS, c)))
        lead = max(lead, (start + size) * MS)
        assert lead - al.position_samples <= max_lag_ms * MS  # backlog, hence memory, stays bounded
    check.add(al.flush())
    check.check()

    assert check.pos == al.position_samples == lead  # output is 2 × (samples on the longest track) bytes
    assert check.markers_seen == len(markers)
    for c, name in enumerate(al.tracks):
        received = sum(n for _, n in tracks[c]) * MS
        assert al.stats()[name] == TrackStats(received, lead - received, 0)
        assert check.audio[c] == received  # every pushed sample is present, each at its own index


def test_jitter_buffers_into_aligner_keep_markers_in_place() -> None:
    """The production wiring at default settings: per-track JitterBuffer (reordering, loss) → TrackAligner."""
    rng = random.Random(7)
    frames = 30_000  # 10 minutes of 20 ms frames
    arrivals = []
    lost = [0, 0]
    for c in (0, 1):
        for i in range(frames):
            silent = c == 1 and (i < 1500 or (i // 3000) % 2 == 1)  # outbound: 30 s late, then 1-min silences
            if silent or rng.random() < 0.02:
                lost[c] += not silent
                continue
            arrivals.append((i * 160 + rng.randint(0, 479), c, i))
    arrivals.sort()
    jbs = [JitterBuffer(), JitterBuffer()]
    al = TrackAligner()
    check = Checker([(1500 * 160, 1), (0, 0)])

    def feed(c: int, released: list[Frame]) -> None:
        for f in released:
            if not f.filled:  # the aligner fills gaps itself from timestamps
                check.add(al.push(al.tracks[c], f.timestamp_ms, f.payload, f.offset))

    for _, c, i in arrivals:
        feed(c, jbs[c].push(i + 1, i * 20, coded_bytes(i * 160, (i + 1) * 160, c)))
    for c in (0, 1):
        feed(c, jbs[c].flush())
    check.add(al.flush())
    check.check()
    assert check.markers_seen == 2
    for c, name in enumerate(al.tracks):
        assert jbs[c].stats().late_dropped == 0
        assert check.audio[c] == jbs[c].stats().accepted * 160 == al.stats()[name].received_samples
        assert al.stats()[name].dropped_samples == 0
    assert check.audio[0] == (frames - lost[0]) * 160


track_pushes = st.lists(st.tuples(st.integers(0, 30), st.integers(1, 500)), max_size=25)


def place(pushes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(gap_samples, size) → (start_sample, size), in order."""
    out, pos = [], 0
    for gap, size in pushes:
        out.append((pos + gap, size))
        pos += gap + size
    return out


@settings(max_examples=150, deadline=None)
@given(a=track_pushes, b=track_pushes, order=st.randoms(use_true_random=False), lag_ms=st.sampled_from([0, 5, 40]))
def test_any_interleaving_places_every_sample_at_its_timestamp(
    a: list[tuple[int, int]], b: list[tuple[int, int]], order: random.Random, lag_ms: int
) -> None:
    """Sub-ms positions via ``offset``; with a tiny lag some audio is force-filled, but nothing ever drifts."""
    placed = [place(a), place(b)]
    tags = [0] * len(a) + [1] * len(b)
    order.shuffle(tags)  # random interleaving of the tracks, each track's own pushes in order
    pending = [list(placed[0]), list(placed[1])]
    queue = [(c, *pending[c].pop(0)) for c in tags]
    al = TrackAligner(max_lag_ms=lag_ms)
    out = b"".join(al.push(al.tracks[c], s // MS, coded_bytes(s, s + n, c), s % MS) for c, s, n in queue) + al.flush()
    ends = [max((s + n for s, n in p), default=0) for p in placed]
    assert len(out) == 2 * max(ends) == 2 * al.position_samples
    data = np.frombuffer(out, np.uint8).reshape(-1, 2)
    for c, name in enumerate(al.tracks):
        col = data[:, c]
        audio = col != MULAW_SILENCE
        np.testing.assert_array_equal(col[audio], coded(np.flatnonzero(audio), c))
        s = al.stats()[name]
        assert s.received_samples == sum(n for _, n in placed[c])
        assert s.received_samples - s.dropped_samples == int(audio.sum())
        assert s.silence_samples == len(col) - int(audio.sum())


def test_interleaves_in_track_order() -> None:
    al = TrackAligner()
    assert al.push("inbound", 0, b"\x01\x02") == b""
    assert al.push("outbound", 0, b"\x0a\x0b\x0c") == b"\x01\x0a\x02\x0b"
    assert al.push("inbound", 0, b"\x09\x09\x03") == b"\x03\x0c"  # first two samples overlap: dropped
    assert al.position_samples == 3
    assert al.stats()["inbound"] == TrackStats(received_samples=5, silence_samples=0, dropped_samples=2)


def test_channel_order_follows_tracks_and_any_count_works() -> None:
    al = TrackAligner(tracks=("b", "a", "c"))
    al.push("a", 0, b"\x02" * 8)
    al.push("c", 0, b"\x03" * 8)
    assert al.push("b", 0, b"\x01" * 8) == b"\x01\x02\x03" * 8


def test_gap_on_one_track_becomes_silence() -> None:
    al = TrackAligner()
    al.push("inbound", 0, b"\x01" * 8)
    al.push("inbound", 2, b"\x02" * 8)
    out = al.push("outbound", 0, b"\x05" * 24)
    assert out[0::2] == b"\x01" * 8 + SIL * 8 + b"\x02" * 8
    assert al.stats()["inbound"].silence_samples == 8


def test_a_lagging_track_is_filled_and_its_late_audio_dropped() -> None:
    al = TrackAligner(max_lag_ms=100)
    out = b"".join(al.push("inbound", t, b"\x01" * 160) for t in range(0, 1000, 20))
    assert al.position_samples == (1000 - 100) * MS  # outbound filled to leader − lag
    assert out[1::2] == SIL * len(out[1::2])
    assert al.push("outbound", 890, b"\x02" * 160) == b"\x01\x02" * 80  # 890-900 was filled: dropped
    s = al.stats()["outbound"]
    assert (s.dropped_samples, s.silence_samples, s.received_samples) == (80, 900 * MS, 160)


def test_flush_pads_the_short_track() -> None:
    al = TrackAligner()
    assert al.push("inbound", 0, b"\x01" * 4) == b""
    assert al.push("outbound", 0, b"\x02" * 2) == b"\x01\x02" * 2
    assert al.flush() == b"\x01" + SIL + b"\x01" + SIL
    assert al.flush() == b""


def test_flush_of_nothing_is_empty() -> None:
    assert TrackAligner().flush() == b""


def test_offset_places_sub_millisecond_frames() -> None:
    al = TrackAligner(tracks=("x",))
    assert al.push("x", 1, b"\x01", offset=3) == SIL * 11 + b"\x01"


@pytest.mark.parametrize(
    ("track", "ts", "offset"), [("dtmf", 0, 0), ("inbound", -1, 0), ("inbound", 0, 8), ("inbound", 0, -1)]
)
def test_bad_pushes_raise(track: str, ts: int, offset: int) -> None:
    with pytest.raises(AudioError):
        TrackAligner().push(track, ts, b"\x01", offset)


@pytest.mark.parametrize(("tracks", "lag"), [((), 1000), (("inbound", "inbound"), 1000), (("inbound", "outbound"), -1)])
def test_bad_config_raises(tracks: tuple[str, ...], lag: int) -> None:
    with pytest.raises(AudioError):
        TrackAligner(tracks, lag)


@pytest.mark.parametrize("ts_ms", [10**12, 600_100])
def test_far_future_timestamp_is_refused_before_allocating(ts_ms: int) -> None:
    """A frame 10^12 ms ahead used to allocate the whole gap of silence in one go (10^13 bytes); now it is refused
    and the timeline is untouched."""
    al = TrackAligner()
    al.push("inbound", 0, b"\x01" * 160)
    al.push("outbound", 0, b"\x02" * 160)
    with pytest.raises(TimestampJumpError, match="max_gap_ms"):
        al.push("outbound", ts_ms, b"\x02" * 160)
    assert al.position_samples == 160
    assert al.stats()["outbound"].silence_samples == 0
    assert al.push("inbound", 20, b"\x01" * 160) == b""  # still aligning normally
    assert al.push("outbound", 20, b"\x02" * 160) == b"\x01\x02" * 160


def test_aligner_gap_bound_is_relative_to_the_leading_track() -> None:
    """A silent track resuming minutes later is within the bound (the leader kept the timeline moving)."""
    al = TrackAligner(max_gap_ms=2_000)
    for i in range(500):  # 10 s of inbound alone
        al.push("inbound", i * 20, b"\x01" * 160)
    assert al.push("outbound", 9_980, b"\x02" * 160)  # 10 s after its own start, but level with the leader
    with pytest.raises(TimestampJumpError):
        al.push("outbound", 10_000 + 2_001, b"\x02" * 160)
