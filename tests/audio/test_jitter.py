"""JitterBuffer: ordered, contiguous output equal to the sent stream under reordering, loss, duplicates, late frames."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio import FRAME_SAMPLES, MULAW_SILENCE, SAMPLES_PER_MS
from audio.errors import AudioError, TimestampJumpError
from audio.jitter import Frame, JitterBuffer, JitterStats

SIL = bytes([MULAW_SILENCE])


def pattern(start: int, end: int) -> bytes:
    """Audio whose every byte names its sample position (mod 251, so never the silence code 0xFF)."""
    return bytes(i % 251 for i in range(start, end))


def frame_20ms(index: int) -> tuple[int, int, bytes]:
    """(chunk, timestamp_ms, payload) of the index-th 20 ms frame of a stream starting at 0."""
    return index + 1, index * 20, pattern(index * FRAME_SAMPLES, (index + 1) * FRAME_SAMPLES)


@dataclass
class Sent:
    chunk: int
    start: int
    payload: bytes

    @property
    def end(self) -> int:
        return self.start + len(self.payload)


def make_stream(first_ms: int, sizes_ms: list[int]) -> list[Sent]:
    frames, pos = [], first_ms * SAMPLES_PER_MS
    for i, size in enumerate(sizes_ms):
        frames.append(Sent(i + 1, pos, pattern(pos, pos + size * SAMPLES_PER_MS)))
        pos += size * SAMPLES_PER_MS
    return frames


def jittered(frames: list[Sent], delays: list[int]) -> list[Sent]:
    """Arrival order when frame i is delayed by delays[i] samples (ties keep send order)."""
    keyed = sorted(range(len(frames)), key=lambda i: (frames[i].start + delays[i], i))
    return [frames[i] for i in keyed]


def push_all(jb: JitterBuffer, arrivals: list[Sent]) -> list[Frame]:
    out: list[Frame] = []
    for f in arrivals:
        out += jb.push(f.chunk, f.start // SAMPLES_PER_MS, f.payload)
    return out + jb.flush()


def joined(frames: list[Frame], start: int = 0) -> tuple[bytes, bytes]:
    """Concatenated audio and a per-sample filled mask (b"1"/b"0"), asserting contiguity and frame invariants."""
    audio, mask, pos = bytearray(), bytearray(), start
    for f in frames:
        assert f.start_sample == pos, f"frame at {f.start_sample} does not continue {pos}"
        assert f.timestamp_ms == f.start_sample // SAMPLES_PER_MS and 0 <= f.offset < SAMPLES_PER_MS
        assert f.payload, "empty frame released"
        if f.filled:
            assert f.payload == SIL * len(f.payload) and len(f.payload) <= FRAME_SAMPLES
        audio += f.payload
        mask += (b"1" if f.filled else b"0") * len(f.payload)
        pos = f.end_sample
    return bytes(audio), bytes(mask)


def layout(frames: list[Frame]) -> list[tuple[int, bool]]:
    return [(f.timestamp_ms, f.filled) for f in frames]


def assert_accounted(s: JitterStats) -> None:
    assert s.received == s.empty + s.duplicates + s.late_dropped + s.accepted


def reorder_count(arrivals: list[Sent]) -> int:
    newest, count = -1, 0
    for f in arrivals:
        if f.start < newest:
            count += 1
        newest = max(newest, f.start)
    return count


sizes_ms = st.lists(st.sampled_from([1, 5, 10, 20, 20, 20, 30, 40]), min_size=1, max_size=60)


@settings(max_examples=150, deadline=None)
@given(
    sizes=sizes_ms,
    first_ms=st.integers(0, 100),
    window_ms=st.sampled_from([0, 20, 60, 100]),
    data=st.data(),
)
def test_reordering_within_window_restores_the_stream(
    sizes: list[int], first_ms: int, window_ms: int, data: st.DataObject
) -> None:
    frames = make_stream(first_ms, sizes)
    span = max(window_ms * SAMPLES_PER_MS - 1, 0)
    delays = data.draw(st.lists(st.integers(0, span), min_size=len(frames), max_size=len(frames)))
    arrivals = jittered(frames, delays)
    jb = JitterBuffer(window_ms=window_ms)
    audio, mask = joined(push_all(jb, arrivals))
    lead = first_ms * SAMPLES_PER_MS
    assert audio == SIL * lead + b"".join(f.payload for f in frames)
    assert mask == b"1" * lead + b"0" * (len(audio) - lead)
    s = jb.stats()
    assert_accounted(s)
    assert (s.received, s.accepted, s.released_frames) == (len(frames),) * 3
    assert (s.late_dropped, s.duplicates, s.overlaps_trimmed, s.held_frames, s.forced_releases) == (0, 0, 0, 0, 0)
    assert s.reordered == reorder_count(arrivals)
    assert s.silence_samples == lead and s.silence_ms == first_ms
    assert s.gap_filled_frames == -(-lead // FRAME_SAMPLES)
    assert s.max_held <= window_ms + 2  # at most a window of ≥1 ms frames plus the one that releases it


@settings(max_examples=150, deadline=None)
@given(sizes=sizes_ms, window_ms=st.sampled_from([20, 60]), data=st.data())
def test_lost_frames_become_exactly_their_duration_of_silence(
    sizes: list[int], window_ms: int, data: st.DataObject
) -> None:
    frames = make_stream(0, sizes)
    kept_mask = data.draw(st.lists(st.booleans(), min_size=len(frames), max_size=len(frames)).filter(any))
    delays = data.draw(st.lists(st.integers(0, window_ms * 8 - 1), min_size=len(frames), max_size=len(frames)))
    kept = [f for f, k in zip(frames, kept_mask, strict=True) if k]
    jb = JitterBuffer(window_ms=window_ms)
    audio, mask = joined(push_all(jb, jittered(kept, delays[: len(kept)])))
    end = kept[-1].end  # no trailing fill: the stream ends with the last frame received
    expected = b"".join(f.payload if k else SIL * len(f.payload) for f, k in zip(frames, kept_mask, strict=True))
    assert audio == expected[:end]
    expected_mask = b"".join((b"0" if k else b"1") * len(f.payload) for f, k in zip(frames, kept_mask, strict=True))
    assert mask == expected_mask[:end]
    s = jb.stats()
    assert_accounted(s)
    assert s.silence_samples == mask.count(b"1")
    holes = [len(h) for h in mask.replace(b"0", b" ").split()]
    assert s.gap_filled_frames == sum(-(-h // FRAME_SAMPLES) for h in holes)
    assert (s.accepted, s.released_frames, s.late_dropped) == (len(kept), len(kept), 0)


@settings(max_examples=100, deadline=None)
@given(sizes=sizes_ms, data=st.data())
def test_duplicates_are_dropped_and_counted(sizes: list[int], data: st.DataObject) -> None:
    frames = make_stream(0, sizes)
    delays = data.draw(st.lists(st.integers(0, 479), min_size=len(frames), max_size=len(frames)))
    arrivals = jittered(frames, delays)
    copies = data.draw(st.lists(st.tuples(st.integers(0, len(arrivals) - 1), st.integers(0, 100)), max_size=20))
    for src, later in copies:  # each copy goes somewhere after its original (the first equal entry)
        original = arrivals.index(arrivals[src])
        arrivals.insert(min(original + 1 + later, len(arrivals)), arrivals[src])
    jb = JitterBuffer(window_ms=60)
    audio, _ = joined(push_all(jb, arrivals))
    assert audio == b"".join(f.payload for f in frames)
    s = jb.stats()
    assert_accounted(s)
    assert (s.duplicates, s.late_dropped, s.accepted) == (len(copies), 0, len(frames))


@settings(max_examples=100, deadline=None)
@given(n=st.integers(6, 40), data=st.data())
def test_frames_older_than_the_window_are_late_dropped_and_counted(n: int, data: st.DataObject) -> None:
    """Frames held back until the stream is ≥ window past them arrive after their span was filled."""
    withheld = data.draw(st.sets(st.integers(0, n - 5), min_size=1))
    jb = JitterBuffer(window_ms=60)
    out: list[Frame] = []
    for i in range(n):
        if i not in withheld:
            out += jb.push(*frame_20ms(i))
    for i in sorted(withheld, reverse=True):
        assert jb.push(*frame_20ms(i)) == []
    audio, mask = joined(out + jb.flush())
    expected = b"".join(SIL * FRAME_SAMPLES if i in withheld else frame_20ms(i)[2] for i in range(n))
    assert audio == expected
    assert mask.count(b"1") == len(withheld) * FRAME_SAMPLES
    s = jb.stats()
    assert_accounted(s)
    assert (s.late_dropped, s.gap_filled_frames, s.duplicates) == (len(withheld), len(withheld), 0)


@settings(max_examples=100, deadline=None)
@given(sizes=st.lists(st.integers(8, 400), min_size=1, max_size=60))
def test_payloads_of_partial_milliseconds_stay_contiguous_without_waiting(sizes: list[int]) -> None:
    """Twilio timestamps are whole ms: a frame after a non-whole-ms one overlaps (trimmed) or leaves < 1 ms (filled)."""
    jb = JitterBuffer()
    out: list[Frame] = []
    true_pos = 0
    for i, size in enumerate(sizes):
        released = jb.push(i + 1, true_pos // SAMPLES_PER_MS, pattern(true_pos, true_pos + size))
        assert released and jb.stats().held_frames == 0  # never waits for a sub-ms discrepancy
        out += released
        true_pos += size
    audio, _ = joined(out)
    assert true_pos - SAMPLES_PER_MS < len(audio) <= true_pos
    assert jb.next_sample == len(audio)
    assert_accounted(jb.stats())


def test_in_order_frames_are_released_immediately_and_unchanged() -> None:
    jb = JitterBuffer()
    for i in range(5):
        chunk, ts, payload = frame_20ms(i)
        (frame,) = jb.push(chunk, ts, payload)
        assert frame == Frame(ts, payload, False) and frame.payload is payload
    assert jb.stats().released_frames == 5 and jb.stats().max_held == 0


def test_stream_starts_at_media_time_zero_so_a_late_first_frame_gets_leading_silence() -> None:
    jb = JitterBuffer(window_ms=60)
    out = [f for i in range(4) for f in jb.push(i + 1, 4000 + 20 * i, b"\x01" * 160)]
    assert [f.filled for f in out] == [True] * 200 + [False] * 4
    assert all(len(f.payload) == FRAME_SAMPLES for f in out)
    assert jb.stats().silence_ms == 4000.0


def test_start_ms_moves_the_origin() -> None:
    jb = JitterBuffer(start_ms=4000)
    assert jb.push(1, 4000, b"\x01" * 160) == [Frame(4000, b"\x01" * 160, False)]


def test_a_hole_waits_for_exactly_one_window_of_newer_audio() -> None:
    jb = JitterBuffer(window_ms=60)
    jb.push(*frame_20ms(0))
    assert jb.push(*frame_20ms(2)) == []
    assert jb.push(*frame_20ms(3)) == []
    assert jb.push(*frame_20ms(4)) == []
    out = jb.push(*frame_20ms(5))  # newest (100) >= 40 + 60: the hole at 20 is given up
    assert layout(out) == [(20, True), (40, False), (60, False), (80, False), (100, False)]
    assert jb.stats().max_held == 4  # counted on arrival, before the fourth frame releases the rest


def test_the_missing_frame_arriving_within_the_window_releases_everything_in_order() -> None:
    jb = JitterBuffer(window_ms=60)
    jb.push(*frame_20ms(0))
    jb.push(*frame_20ms(2))
    out = jb.push(*frame_20ms(1))
    assert layout(out) == [(20, False), (40, False)]
    assert (jb.stats().reordered, jb.stats().silence_samples) == (1, 0)


def test_zero_window_fills_holes_at_once() -> None:
    jb = JitterBuffer(window_ms=0)
    out = jb.push(1, 30, b"\x01" * 8)
    assert [(f.timestamp_ms, len(f.payload), f.filled) for f in out] == [(0, 160, True), (20, 80, True), (30, 8, False)]


def test_release_until_fills_holes_up_to_the_proven_time() -> None:
    jb = JitterBuffer(window_ms=1000)
    jb.push(*frame_20ms(0))
    jb.push(*frame_20ms(2))
    out = jb.release_until(100)
    assert layout(out) == [(20, True), (40, False), (60, True), (80, True)]
    assert jb.next_sample == 100 * SAMPLES_PER_MS
    assert jb.push(*frame_20ms(5)) == [Frame(100, frame_20ms(5)[2], False)]
    assert jb.release_until(50) == []  # already past


def test_release_until_also_releases_held_frames_it_makes_contiguous() -> None:
    jb = JitterBuffer(window_ms=1000)
    jb.push(*frame_20ms(0))
    jb.push(*frame_20ms(2))
    jb.push(*frame_20ms(3))
    out = jb.release_until(40)
    assert layout(out) == [(20, True), (40, False), (60, False)]


def test_a_frame_straddling_the_cursor_keeps_only_its_part_after_the_cursor() -> None:
    jb = JitterBuffer()
    jb.release_until(10)
    chunk, ts, payload = frame_20ms(0)
    assert jb.push(chunk, ts, payload) == [Frame(10, payload[80:], False)]
    assert (jb.stats().overlaps_trimmed, jb.stats().late_dropped) == (1, 0)


def test_flush_fills_between_held_frames_but_not_after_them() -> None:
    jb = JitterBuffer(window_ms=1000)
    jb.push(*frame_20ms(0))
    jb.push(*frame_20ms(3))
    out = jb.flush()
    assert layout(out) == [(20, True), (40, True), (60, False)]
    assert jb.flush() == [] and jb.next_sample == 80 * SAMPLES_PER_MS


def test_duplicate_by_chunk_or_by_timestamp_is_dropped() -> None:
    jb = JitterBuffer(window_ms=1000)
    jb.push(*frame_20ms(0))
    jb.push(*frame_20ms(2))
    assert jb.push(*frame_20ms(0)) == []  # same chunk, released
    assert jb.push(*frame_20ms(2)) == []  # same chunk, held
    assert jb.push(99, 0, b"\x05" * 160) == []  # new chunk, released timestamp
    assert jb.push(98, 40, b"\x05" * 160) == []  # new chunk, span already held
    assert jb.push(97, 40, b"\x05" * 80) == []  # shorter, wholly covered
    assert (jb.stats().duplicates, jb.stats().late_dropped) == (5, 0)


def test_a_frame_overlapping_held_ones_keeps_the_first_arrivals_samples() -> None:
    jb = JitterBuffer(window_ms=1000)
    jb.push(*frame_20ms(0))
    jb.push(*frame_20ms(2))  # 40-60 held
    jb.push(*frame_20ms(4))  # 80-100 held
    jb.push(50, 50, b"\x07" * (50 * SAMPLES_PER_MS))  # 50-100: only 60-80 is new
    audio, _ = joined(jb.flush(), start=20 * SAMPLES_PER_MS)
    assert audio == SIL * 160 + frame_20ms(2)[2] + b"\x07" * 160 + frame_20ms(4)[2]
    assert jb.stats().overlaps_trimmed == 1


def test_one_frame_spanning_two_held_frames_fills_both_sides() -> None:
    jb = JitterBuffer(window_ms=1000)
    jb.push(*frame_20ms(0))
    jb.push(*frame_20ms(2))  # 40-60
    out = jb.push(50, 20, b"\x07" * (60 * SAMPLES_PER_MS))  # 20-80: pieces 20-40 and 60-80, now contiguous
    audio, mask = joined(out, start=20 * SAMPLES_PER_MS)
    assert audio == b"\x07" * 160 + frame_20ms(2)[2] + b"\x07" * 160 and b"1" not in mask
    s = jb.stats()
    assert (s.overlaps_trimmed, s.accepted, s.released_frames) == (1, 3, 4)


def test_empty_payload_is_counted_and_ignored() -> None:
    jb = JitterBuffer()
    assert jb.push(1, 0, b"") == []
    assert (jb.stats().empty, jb.stats().received, jb.next_sample) == (1, 1, 0)


def test_held_set_is_capped_by_forcing_the_oldest_out() -> None:
    jb = JitterBuffer(window_ms=10_000, max_held_frames=3)
    jb.push(*frame_20ms(0))
    for i in (2, 3, 4):
        assert jb.push(*frame_20ms(i)) == []
    out = jb.push(*frame_20ms(5))
    assert layout(out) == [(20, True), (40, False), (60, False), (80, False), (100, False)]
    s = jb.stats()
    assert (s.forced_releases, s.max_held, s.held_frames) == (1, 4, 0)


@pytest.mark.parametrize("step", [1, 2], ids=["in-order", "every-other-frame-lost"])
def test_duplicate_memory_is_bounded_and_forgets_only_old_chunks(step: int) -> None:
    jb = JitterBuffer(window_ms=0)
    for i in range(0, 2000, step):
        jb.push(*frame_20ms(i))
    assert jb.push(*frame_20ms(1990)) == []
    assert jb.push(*frame_20ms(4)) == []
    s = jb.stats()
    assert (s.duplicates, s.late_dropped) == (1, 1)  # chunk 5 is long forgotten, so it counts as late


@pytest.mark.parametrize(("chunk", "ts", "payload"), [(-1, 0, b"\x01"), (1, -20, b"\x01"), (1, 0, b"\x01" * 8001)])
def test_impossible_frames_raise(chunk: int, ts: int, payload: bytes) -> None:
    with pytest.raises(AudioError):
        JitterBuffer().push(chunk, ts, payload)


def test_release_until_rejects_negative_time() -> None:
    with pytest.raises(AudioError):
        JitterBuffer().release_until(-1)


@pytest.mark.parametrize(
    "kwargs",
    [{"window_ms": -1}, {"max_frame_bytes": 0}, {"start_ms": -5}, {"max_held_frames": 0}],
)
def test_bad_config_raises(kwargs: dict[str, int]) -> None:
    with pytest.raises(AudioError):
        JitterBuffer(**kwargs)


def test_frame_positions() -> None:
    f = Frame(12, b"\x01" * 100, False, 4)
    assert (f.start_sample, f.end_sample) == (100, 200)


@pytest.mark.parametrize("jump_ms", [10**12, 600_100, 10**17])
def test_far_future_timestamp_is_refused_without_filling(jump_ms: int) -> None:
    """A frame 10^12 ms ahead used to make the buffer build ~5·10^10 silence frames; now it is refused at once,
    nothing is held or filled, and the stream goes on from where it was."""
    jb = JitterBuffer()
    for i in range(3):
        jb.push(*frame_20ms(i))
    with pytest.raises(TimestampJumpError, match="max_gap_ms"):
        jb.push(4, jump_ms, pattern(0, 160))
    with pytest.raises(TimestampJumpError):
        jb.release_until(jump_ms)
    stats = jb.stats()
    assert stats.held_frames == 0 and stats.gap_filled_frames == 0
    assert jb.push(*frame_20ms(3))[0].timestamp_ms == 60  # the buffer is still usable


def test_gap_bound_is_configurable_and_gaps_within_it_are_filled() -> None:
    jb = JitterBuffer(max_gap_ms=5_000)
    jb.push(*frame_20ms(0))
    jb.push(2, 20 + 5_000, pattern(0, 160))  # exactly at the bound: held behind a 5 s hole
    out = jb.flush()
    assert sum(len(f.payload) for f in out if f.filled) == 5_000 * SAMPLES_PER_MS
    with pytest.raises(TimestampJumpError):
        jb.push(3, 5_040 + 5_001, pattern(0, 160))
    with pytest.raises(AudioError):
        JitterBuffer(window_ms=60, max_gap_ms=59)
