"""Endpointer state machine: transitions, discard, hangover, padding, forced cuts, flush, frame-size independence.

Most tests run at 1 kHz so that one sample is one millisecond and boundaries read as plain ms.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audio.endpoint import (
    EndpointConfig,
    Endpointer,
    EndpointEvent,
    EndpointState,
    IllegalTransitionError,
    Utterance,
    next_state,
)
from audio.errors import AudioError

MS = EndpointConfig(sample_rate=1000)


def feed(ep: Endpointer, probs: Sequence[float], n: int = 10) -> list[Utterance]:
    out: list[Utterance] = []
    for p in probs:
        out += ep.push(p, n)
    return out


def run(probs: Sequence[float], n: int = 10, config: EndpointConfig = MS) -> list[Utterance]:
    ep = Endpointer(config)
    return feed(ep, probs, n) + ep.flush()


def frames_of(ms: int, p: float, frame_ms: int = 10) -> list[float]:
    return [p] * (ms // frame_ms)


# --- config -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {"threshold": 0.0},
        {"threshold": 1.5},
        {"hysteresis": -0.1},
        {"hysteresis": 0.5},
        {"hangover_ms": -1},
        {"padding_ms": 2.5},
        {"min_speech_ms": True},
        {"max_utterance_ms": 0},
        {"sample_rate": 0},
        {"cut_search_ms": 0},
        {"max_utterance_ms": 1, "sample_rate": 1000},
    ],
)
def test_config_rejects_bad_values_with_a_message_naming_the_field(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        EndpointConfig(**kwargs)  # type: ignore[arg-type]


def test_config_defaults_are_the_moonshine_settings_in_samples() -> None:
    c = EndpointConfig()
    assert (c.threshold, c.sample_rate) == (0.5, 16_000)
    assert [c.samples(ms) for ms in (c.hangover_ms, c.padding_ms, c.min_speech_ms, c.max_utterance_ms)] == [
        8000,
        3200,
        4000,
        160_000,
    ]


# --- state machine ------------------------------------------------------------------------------------------


def test_illegal_transition_names_state_and_event() -> None:
    with pytest.raises(IllegalTransitionError, match=r"EXPIRED.*SILENCE"):
        next_state(EndpointState.SILENCE, EndpointEvent.EXPIRED)
    with pytest.raises(IllegalTransitionError, match=r"EXPIRED.*SPEECH"):
        next_state(EndpointState.SPEECH, EndpointEvent.EXPIRED)


def test_states_follow_silence_speech_hangover_silence() -> None:
    ep = Endpointer(MS)
    seen = []
    for p in [0.1, 0.9, 0.9, 0.1, 0.9, *frames_of(600, 0.0)]:
        ep.push(p, 10)
        seen.append(ep.state)
    S = EndpointState
    assert seen[:6] == [S.SILENCE, S.SPEECH, S.SPEECH, S.HANGOVER, S.SPEECH, S.HANGOVER]
    assert seen[-1] is EndpointState.SILENCE and not ep.in_speech


def test_hysteresis_soft_frames_neither_start_nor_end_speech() -> None:
    ep = Endpointer(MS)  # threshold 0.5, off-threshold 0.35
    states = []
    for probs in ([0.4] * 5, [0.6, 0.4, 0.4], [0.3], [0.45]):
        feed(ep, probs)
        states.append(ep.state)
    # 0.45 is above the off-threshold but resuming from a hangover needs the full threshold.
    assert states == [EndpointState.SILENCE, EndpointState.SPEECH, EndpointState.HANGOVER, EndpointState.HANGOVER]


def test_soft_frames_count_as_speech_while_in_speech() -> None:
    # 10 ms loud + 290 ms soft = 300 ms of speech ≥ min 250 ms.
    assert run([0.9, *frames_of(290, 0.4), *frames_of(600, 0.0)]) == [Utterance(0, 500)]


def test_push_rejects_bad_input() -> None:
    ep = Endpointer(MS)
    for p, n in [(0.5, 0), (0.5, -10), (0.5, 2.5), (float("nan"), 10), (1.5, 10), (-0.1, 10)]:
        with pytest.raises(AudioError):
            ep.push(p, n)  # type: ignore[arg-type]
    assert ep.position == 0
    ep.push(np.float32(0.9), np.int64(10))  # type: ignore[arg-type]
    assert ep.position == 10 and ep.in_speech


# --- discard, hangover, padding -----------------------------------------------------------------------------


@pytest.mark.parametrize(("speech_ms", "emitted"), [(240, False), (250, True)])
def test_utterances_under_min_speech_are_discarded(speech_ms: int, emitted: bool) -> None:
    out = run(frames_of(1000, 0.0) + frames_of(speech_ms, 0.9) + frames_of(1000, 0.0))
    assert out == ([Utterance(800, 1000 + speech_ms + 200)] if emitted else [])


def test_speech_frames_are_summed_across_short_pauses_for_min_speech() -> None:
    # Three 100 ms bursts with 200 ms pauses: 300 ms of speech in total, one utterance.
    probs = (frames_of(100, 0.9) + frames_of(200, 0.0)) * 3 + frames_of(600, 0.0)
    assert run(probs) == [Utterance(0, 900)]


@pytest.mark.parametrize(("pause_ms", "count"), [(490, 1), (500, 2)])
def test_hangover_bridges_pauses_shorter_than_it(pause_ms: int, count: int) -> None:
    probs = frames_of(500, 0.0) + frames_of(300, 0.9) + frames_of(pause_ms, 0.0) + frames_of(300, 0.9)
    out = run(probs + frames_of(1000, 0.0))
    assert len(out) == count
    assert out[0].start_sample == 300 and out[-1].end_sample == 800 + pause_ms + 300 + 200


def test_end_is_emitted_as_soon_as_the_hangover_runs_out() -> None:
    ep = Endpointer(MS)
    feed(ep, frames_of(300, 0.9) + frames_of(490, 0.0))
    assert ep.in_speech
    assert ep.push(0.0, 10) == [Utterance(0, 500)]
    assert ep.position == 800  # padding ends 300 ms before what has been seen: no unseen audio named


def test_padding_is_clamped_at_zero_and_at_the_previous_utterance() -> None:
    config = EndpointConfig(sample_rate=1000, padding_ms=400, hangover_ms=500)
    probs = frames_of(100, 0.0) + frames_of(300, 0.9) + frames_of(500, 0.0) + frames_of(300, 0.9)
    first, second = run(probs + frames_of(600, 0.0), config=config)
    assert first == Utterance(0, 800)  # 100 − 400 → 0; 400 + 400
    assert second == Utterance(800, 1600)  # 900 − 400 = 500 would overlap; starts where the first ended


def test_padding_longer_than_hangover_never_names_unseen_audio() -> None:
    config = EndpointConfig(sample_rate=1000, padding_ms=300, hangover_ms=100)
    ep = Endpointer(config)
    out = feed(ep, frames_of(500, 0.0) + frames_of(300, 0.9) + frames_of(100, 0.0))
    assert out == [Utterance(200, 900)] and ep.position == 900  # not 800 + 300


def test_speech_start_and_retain_from_tell_the_consumer_what_to_buffer() -> None:
    ep = Endpointer(MS)
    feed(ep, frames_of(1000, 0.0))
    assert ep.speech_start is None and ep.retain_from == 800
    feed(ep, [0.9])
    assert ep.speech_start == ep.retain_from == 800
    feed(ep, frames_of(300, 0.9) + frames_of(500, 0.0))
    assert ep.speech_start is None and ep.retain_from == 1610  # a start now would be padded back to here
    ep.flush()
    feed(ep, frames_of(400, 0.9) + frames_of(500, 0.0))
    assert ep.retain_from == 2710 - 200  # the end of the last utterance: the next may not start before it


def test_settled_until_never_passes_the_end_the_utterance_gets() -> None:
    ep = Endpointer(MS)  # 1 sample per ms: padding 200, hangover 500
    feed(ep, frames_of(1000, 0.0))
    assert ep.settled_until == ep.position == 1000  # silence: everything seen is settled (as not speech)
    feed(ep, frames_of(400, 0.9))
    assert ep.settled_until == 1400  # the padding after the last speech is not seen yet
    feed(ep, frames_of(100, 0.0))
    assert ep.settled_until == 1500  # speech end 1400 + padding, now seen
    feed(ep, frames_of(300, 0.0))
    assert ep.in_speech and ep.position == 1800 and ep.settled_until == 1600  # hangover: 1600..1800 may drop
    [utterance] = feed(ep, frames_of(100, 0.0))
    assert utterance.end_sample == 1600


# --- flush --------------------------------------------------------------------------------------------------


def test_flush_closes_an_open_utterance_with_end_padding_clamped_at_the_end_of_stream() -> None:
    ep = Endpointer(MS)
    feed(ep, frames_of(300, 0.9) + frames_of(100, 0.0))
    assert ep.flush() == [Utterance(0, 400)]
    assert ep.state is EndpointState.SILENCE and ep.flush() == []


def test_flush_in_speech_discards_too_little_speech_and_positions_carry_on() -> None:
    ep = Endpointer(MS)
    feed(ep, frames_of(100, 0.9))
    assert ep.flush() == []
    assert feed(ep, frames_of(300, 0.9)) == [] and ep.flush() == [Utterance(0, 400)]


# --- forced cuts --------------------------------------------------------------------------------------------


def test_forced_cut_lands_in_the_longest_quiet_run_and_the_rest_starts_exactly_there() -> None:
    # Speech from 1 s, padded start 0.8 s: the cut comes at 10.8 s and searches 6.8..10.8 s.
    speech = frames_of(13_000, 0.9)
    speech[900] = 0.05  # a single deep dip at 10 s
    speech[700:710] = [0.3] * 3 + [0.2] * 2 + [0.3] * 5  # a 100 ms pause at 8.0..8.1 s
    speech[500:530] = [0.3] * 30  # a longer pause at 6.0..6.3 s, but before the search window
    ep = Endpointer(MS)
    out = feed(ep, frames_of(1000, 0.0) + speech)
    assert out == [Utterance(800, 8045, forced=True)]  # the middle of the 0.2 frame nearer the pause's centre
    assert ep.speech_start == 8045 and ep.in_speech
    assert ep.flush() == [Utterance(8045, 14_000)]


def test_forced_cut_with_no_low_point_cuts_mid_speech_at_the_least_likely_frame() -> None:
    probs = frames_of(12_000, 0.9)
    probs[800] = 0.6
    out = run(probs)
    assert out == [Utterance(0, 8005, forced=True), Utterance(8005, 12_000)]


def test_forced_cut_inside_the_final_pause_leaves_nothing_to_emit() -> None:
    config = EndpointConfig(sample_rate=1000, max_utterance_ms=2000)
    out = run(frames_of(1800, 0.9) + frames_of(1000, 0.0), config=config)
    assert out == [Utterance(0, 1895, forced=True)]  # mid-way through the pause seen so far (1.8..2.0 s)


def test_rest_of_a_forced_cut_is_kept_even_with_less_than_min_speech() -> None:
    config = EndpointConfig(sample_rate=1000, max_utterance_ms=2000)
    probs = frames_of(1800, 0.9) + frames_of(100, 0.0) + frames_of(150, 0.9) + frames_of(1000, 0.0)
    out = run(probs, config=config)
    assert out == [Utterance(0, 1845, forced=True), Utterance(1845, 2250)]  # 150 ms of speech after the cut


def test_frames_longer_than_the_search_window_still_cut_inside_the_utterance() -> None:
    config = EndpointConfig(sample_rate=1000, max_utterance_ms=100, cut_search_ms=1)
    ep = Endpointer(config)
    assert ep.push(0.9, 1) == []
    assert ep.push(0.9, 300) == [Utterance(0, 151, forced=True)]


def test_a_cut_never_lands_on_the_utterance_start() -> None:
    config = EndpointConfig(sample_rate=1000, max_utterance_ms=2, padding_ms=0)
    ep = Endpointer(config)
    assert ep.push(0.9, 1) == []
    assert ep.push(0.9, 1) == [Utterance(0, 1, forced=True)]
    assert ep.flush() == [Utterance(1, 2)]


# --- properties over long random sequences ------------------------------------------------------------------

segments = st.lists(st.tuples(st.integers(1, 400), st.floats(0.0, 1.0, allow_nan=False)), min_size=1, max_size=40)


def expand(segs: list[tuple[int, float]]) -> list[float]:
    return [p for length, p in segs for _ in range(length)]


@settings(max_examples=60, deadline=None)
@given(segs=segments, frame=st.sampled_from([5, 10, 16, 20]), max_ms=st.sampled_from([800, 2000, 5000]))
def test_utterances_are_ordered_disjoint_bounded_and_cover_every_loud_frame(
    segs: list[tuple[int, float]], frame: int, max_ms: int
) -> None:
    config = EndpointConfig(sample_rate=1000, max_utterance_ms=max_ms, min_speech_ms=0, cut_search_ms=300)
    probs = expand(segs)
    out = run(probs, n=frame, config=config)
    for u in out:
        assert 0 <= u.start_sample < u.end_sample <= frame * len(probs)
        assert u.n_samples <= max_ms + frame
    for a, b in itertools.pairwise(out):
        assert a.end_sample <= b.start_sample
        # The rest of a forced cut starts exactly at its end, unless it held no speech and was dropped.
        gap = probs[a.end_sample // frame + 1 : b.start_sample // frame]
        assert not a.forced or b.start_sample == a.end_sample or max(gap, default=0.0) < 0.5
    covered = np.zeros(frame * len(probs), dtype=bool)
    for u in out:
        covered[u.start_sample : u.end_sample] = True
    loud = np.repeat(np.asarray(probs) >= 0.5, frame)
    assert not np.any(loud & ~covered)  # with min_speech 0, no speech is ever lost, forced cuts included


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(1, 64), min_size=1, max_size=3000))
def test_history_stays_bounded_by_the_cut_search_window(sizes: list[int]) -> None:
    config = EndpointConfig(sample_rate=1000, max_utterance_ms=100_000, cut_search_ms=200)
    ep = Endpointer(config)
    for n in sizes:
        ep.push(0.9, n)
        assert len(ep._history) <= 200 // min(sizes) + 2  # white-box: the only per-frame state it keeps


# --- frame-size independence --------------------------------------------------------------------------------


def curve(t_ms: float) -> float:
    """Speech 1.0–3.2 s (with a 0.3 s pause), 4.5–4.6 s (too short), 6–19 s (forces a cut), low 0.1 elsewhere."""
    spans = [(1000, 2000), (2300, 3200), (4500, 4600), (6000, 19_000)]
    if any(a <= t_ms < b for a, b in spans):
        return 0.25 if 12_000 <= t_ms < 12_200 else 0.9
    return 0.1


def feed_curve(frame_ms: int, f: Callable[[float], float] = curve, total_ms: int = 21_000) -> list[Utterance]:
    n = 16 * frame_ms
    probs = [f((i + 0.5) * frame_ms) for i in range(total_ms // frame_ms)]
    return run(probs, n=n, config=EndpointConfig())


def test_boundaries_do_not_depend_on_the_detector_frame_size() -> None:
    results = {ms: feed_curve(ms) for ms in (10, 20, 32)}
    reference = results[20]
    assert [u.forced for u in reference] == [False, True, False]
    assert reference[0] == Utterance(800 * 16, 3400 * 16)
    assert abs(reference[1].end_sample - 12_100 * 16) <= 16 * 20 and reference[2].end_sample == 19_200 * 16
    for ms, out in results.items():
        assert len(out) == len(reference), ms
        for u, r in zip(out, reference, strict=True):
            assert abs(u.start_sample - r.start_sample) <= 16 * 32
            assert abs(u.end_sample - r.end_sample) <= 16 * 32
            assert u.forced == r.forced
