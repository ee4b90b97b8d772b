"""UtteranceCutter: synthetic PCM with media times in, utterance boundaries out; no asyncio, no clock."""

from __future__ import annotations

import numpy as np
import pytest

from audio.cutter import Closed, CutEvent, Dropped, Opened, UtteranceCutter
from audio.endpoint import EndpointConfig, Utterance
from audio.errors import UnsupportedRateError

RATE = 16_000
WINDOW = 160  # 10 ms windows
CONFIG = EndpointConfig(sample_rate=RATE, hangover_ms=300, padding_ms=100, min_speech_ms=200,
                        max_utterance_ms=2_000, cut_search_ms=500)


class LoudDetector:
    """Speech wherever a window's peak is over 1000: exact, so every boundary below is known."""

    sample_rate = RATE
    frame_samples = WINDOW

    def probability(self, frame: np.ndarray) -> float:
        return 1.0 if int(np.abs(frame.astype(np.int32)).max()) > 1000 else 0.0


def audio(*parts: tuple[str, int]) -> np.ndarray:
    """``("s", ms)`` silence, ``("v", ms)`` voice (a loud square wave)."""
    out = [np.full(ms * RATE // 1000, 5000 if kind == "v" else 0, dtype=np.int16) for kind, ms in parts]
    return np.concatenate(out)


def run(cutter: UtteranceCutter, pcm: np.ndarray, pts_ms: int = 0, chunk_ms: int = 20) -> list[CutEvent]:
    step = chunk_ms * RATE // 1000
    events: list[CutEvent] = []
    for i in range(0, len(pcm), step):
        assert cutter.push(pcm[i : i + step], pts_ms + i * 1000 // RATE)
        events += cutter.step()
    return events


def samples(ms: int) -> int:
    return ms * RATE // 1000


def test_an_utterance_is_opened_then_closed_with_padding_and_media_time() -> None:
    cutter = UtteranceCutter(LoudDetector(), CONFIG, max_backlog_ms=10_000)
    events = run(cutter, audio(("s", 500), ("v", 600), ("s", 600)), pts_ms=7_000)
    assert events == [Opened(samples(400)), Closed(Utterance(samples(400), samples(1200)))]
    assert (cutter.ms(samples(400)), cutter.ms(samples(1200))) == (7_400, 8_200)


def test_speech_shorter_than_the_minimum_is_dropped() -> None:
    cutter = UtteranceCutter(LoudDetector(), CONFIG, max_backlog_ms=10_000)
    events = run(cutter, audio(("s", 300), ("v", 100), ("s", 600)))
    assert events == [Opened(samples(200)), Dropped()]


def test_a_forced_cut_closes_and_opens_the_rest_at_exactly_the_cut() -> None:
    cutter = UtteranceCutter(LoudDetector(), CONFIG, max_backlog_ms=10_000)
    events = run(cutter, audio(("s", 200), ("v", 3_000), ("s", 600)))
    closed = [e.cut for e in events if isinstance(e, Closed)]
    opened = [e.start for e in events if isinstance(e, Opened)]
    assert closed[0].forced and opened[1] == closed[0].end_sample
    assert closed[-1].end_sample == samples(3_300) and not closed[-1].forced
    assert all(c.n_samples <= samples(2_000) for c in closed)


def test_finish_scores_the_short_tail_and_closes_the_open_utterance() -> None:
    cutter = UtteranceCutter(LoudDetector(), CONFIG, max_backlog_ms=10_000)
    pcm = audio(("s", 200), ("v", 405))  # ends mid-window, mid-speech
    events = run(cutter, pcm)
    assert events == [Opened(samples(100))] and not cutter.flushed
    cutter.finish()
    assert cutter.step() == [Closed(Utterance(samples(100), len(pcm)))]
    assert cutter.flushed and cutter.position == len(pcm)


def test_a_pts_jump_re_anchors_media_time() -> None:
    cutter = UtteranceCutter(LoudDetector(), CONFIG, max_backlog_ms=10_000)
    run(cutter, audio(("s", 1_000)), pts_ms=0)
    events = run(cutter, audio(("s", 200), ("v", 500), ("s", 600)), pts_ms=60_000)  # 59 s the jitter buffer skipped
    closed = [e.cut for e in events if isinstance(e, Closed)]
    assert [(cutter.ms(c.start_sample), cutter.ms(c.end_sample)) for c in closed] == [(60_100, 60_800)]


def test_a_backlog_over_the_bound_is_dropped_and_counted_and_then_accepted_again() -> None:
    cutter = UtteranceCutter(LoudDetector(), CONFIG, max_backlog_ms=2_000)
    second = np.zeros(RATE, dtype=np.int16)
    assert cutter.push(second, 0) and cutter.push(second, 1_000)
    assert not cutter.push(second, 2_000)  # nobody stepped: the third second would exceed 2 s of backlog
    assert cutter.dropped_samples == RATE and cutter.end == 2 * RATE
    while cutter.pending:
        cutter.step()
    assert cutter.push(audio(("v", 500), ("s", 600)), 3_000)
    while cutter.pending:
        events = cutter.step()
        if events:
            break
    assert events == [Opened(2 * RATE - samples(100))]  # the padding reaches back into the accepted audio
    assert (cutter.ms(2 * RATE - samples(100)), cutter.ms(2 * RATE)) == (1_900, 3_000)  # re-anchored at the push


def test_a_step_runs_at_most_max_frames_windows() -> None:
    cutter = UtteranceCutter(LoudDetector(), CONFIG, max_backlog_ms=10_000)
    cutter.push(np.zeros(samples(1_000), dtype=np.int16), 0)
    cutter.step(max_frames=10)
    assert cutter.position == 10 * WINDOW and cutter.pending and cutter.backlog == samples(1_000) - 10 * WINDOW


def test_detector_and_endpointer_rates_must_agree() -> None:
    with pytest.raises(UnsupportedRateError):
        UtteranceCutter(LoudDetector(), EndpointConfig(sample_rate=8000), max_backlog_ms=10_000)
