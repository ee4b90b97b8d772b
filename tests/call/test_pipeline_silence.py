"""TrackPipeline: silence for a track that goes quiet or starts late is released as time moves on, in bounded steps,
with media times kept; a track that never had media costs its recogniser nothing."""

from __future__ import annotations

import numpy as np

from switchboard.call.pipeline import TrackPipeline


class Pushes:
    """A transcript stream that keeps what it is given (sizes and media times), as the recogniser would get it."""

    def __init__(self) -> None:
        self.pushes: list[tuple[int, int]] = []
        self.ended = False

    def push(self, pcm: np.ndarray, pts_ms: int) -> None:
        self.pushes.append((pcm.size, pts_ms))

    def end(self) -> None:
        self.ended = True

    def samples(self) -> int:
        return sum(n for n, _ in self.pushes)


def pipeline() -> tuple[TrackPipeline, Pushes]:
    stream = Pushes()
    return TrackPipeline("outbound", stream, lambda *_: None), stream  # type: ignore[arg-type]


def test_a_track_that_never_had_media_gets_no_silence() -> None:
    pipe, stream = pipeline()
    for i in range(3000):  # a minute of the other track
        pipe.keep_up(i * 20)
    assert stream.pushes == []


def test_a_quiet_track_is_kept_within_a_few_seconds() -> None:
    pipe, stream = pipeline()
    pipe.push(1, 0, b"\x01" * 160)
    for i in range(1, 3000):
        pipe.keep_up(i * 20)
    heard_ms = stream.samples() / 16  # 16 kHz out
    assert 59_980 - 2_000 - 200 <= heard_ms <= 59_980 - 2_000  # behind by the keep-up distance (+ resampler delay)
    assert max(n for n, _ in stream.pushes) <= 16 * 1_000  # released as it goes, never in one lump


def test_a_track_starting_fifteen_minutes_late_is_caught_up_in_steps() -> None:
    pipe, stream = pipeline()
    start = 15 * 60_000
    pipe.push(1, start, b"\x01" * 160)
    pipe.finish()
    assert stream.samples() == (start + 20) * 16  # media time kept: the first words are at 15 min
    assert max(n for n, _ in stream.pushes) <= 16 * 61_000  # at most about a minute at a time
    pts = [p for _, p in stream.pushes]
    assert pts == sorted(pts) and stream.ended
