"""Utterance endpointer: a per-frame speech probability in, utterance boundaries (in samples) out.

Any detector plugs in (energy, webrtcvad, Silero): the endpointer sees only ``(probability, n_samples)`` per
frame, so frames may have any size and may differ in size. It keeps no audio; the consumer buffers audio from
:attr:`Endpointer.retain_from` and cuts what each :class:`Utterance` names.

Defaults are the settings that worked for Moonshine on our fixtures (``scripts/vad_accuracy.py``):
speech at probability ≥ 0.5, end after 0.5 s below, 0.2 s padding each side, at least 0.25 s of speech, forced
cut before 10 s because Moonshine's decode time is super-linear and it loops when cut mid-word.

States (transition table ``_TRANSITIONS``)::

    SILENCE ──loud──▶ SPEECH ──quiet──▶ HANGOVER ──expired──▶ SILENCE (utterance emitted or discarded)
                        ▲                  │
                        └──────loud────────┘          flush: any state ──▶ SILENCE

"loud" is ``p ≥ threshold``; "quiet" is ``p < threshold − hysteresis``. The hysteresis (0.15, as Silero's own
``VADIterator`` uses) keeps a wavering probability inside an utterance from starting a hangover, while
resuming from a hangover needs a full ``p ≥ threshold``.
"""

from __future__ import annotations

import enum
import operator
from collections import deque
from dataclasses import dataclass
from typing import Final, NamedTuple, SupportsIndex

from audio.errors import AudioError


class IllegalTransitionError(AudioError):
    """An event the endpointer's state machine does not take in its current state (a bug, not bad input)."""


class EndpointState(enum.Enum):
    SILENCE = "silence"
    SPEECH = "speech"
    HANGOVER = "hangover"

    # Members are singletons: identity hashing is correct and skips Enum's Python-level __hash__ (3.11),
    # which was a third of the cost of a push.
    __hash__ = object.__hash__


class EndpointEvent(enum.Enum):
    LOUD = "loud"  # p >= threshold
    SOFT = "soft"  # threshold - hysteresis <= p < threshold
    QUIET = "quiet"  # p < threshold - hysteresis
    EXPIRED = "expired"  # the hangover has run out
    FLUSH = "flush"

    __hash__ = object.__hash__  # see EndpointState


_TRANSITIONS: Final[dict[tuple[EndpointState, EndpointEvent], EndpointState]] = {
    (EndpointState.SILENCE, EndpointEvent.LOUD): EndpointState.SPEECH,
    (EndpointState.SILENCE, EndpointEvent.SOFT): EndpointState.SILENCE,
    (EndpointState.SILENCE, EndpointEvent.QUIET): EndpointState.SILENCE,
    (EndpointState.SILENCE, EndpointEvent.FLUSH): EndpointState.SILENCE,
    (EndpointState.SPEECH, EndpointEvent.LOUD): EndpointState.SPEECH,
    (EndpointState.SPEECH, EndpointEvent.SOFT): EndpointState.SPEECH,
    (EndpointState.SPEECH, EndpointEvent.QUIET): EndpointState.HANGOVER,
    (EndpointState.SPEECH, EndpointEvent.FLUSH): EndpointState.SILENCE,
    (EndpointState.HANGOVER, EndpointEvent.LOUD): EndpointState.SPEECH,
    (EndpointState.HANGOVER, EndpointEvent.SOFT): EndpointState.HANGOVER,
    (EndpointState.HANGOVER, EndpointEvent.QUIET): EndpointState.HANGOVER,
    (EndpointState.HANGOVER, EndpointEvent.EXPIRED): EndpointState.SILENCE,
    (EndpointState.HANGOVER, EndpointEvent.FLUSH): EndpointState.SILENCE,
}


def next_state(state: EndpointState, event: EndpointEvent) -> EndpointState:
    """Look ``event`` up in the transition table; a move the table lacks is a bug and raises."""
    try:
        return _TRANSITIONS[state, event]
    except KeyError:
        raise IllegalTransitionError(f"endpointer: {event.name} is illegal in {state.name}") from None


@dataclass(frozen=True, slots=True)
class EndpointConfig:
    """Endpointer settings; times in ms, converted once to samples of ``sample_rate``.

    ``cut_search_ms`` is how far back a forced cut looks for a low point; it is capped at half of
    ``max_utterance_ms`` so a forced utterance is never shorter than half the maximum.
    """

    threshold: float = 0.5
    hangover_ms: int = 500
    padding_ms: int = 200
    min_speech_ms: int = 250
    max_utterance_ms: int = 10_000
    sample_rate: int = 16_000
    hysteresis: float = 0.15
    cut_search_ms: int = 4_000

    def __post_init__(self) -> None:
        for name in ("hangover_ms", "padding_ms", "min_speech_ms"):
            _require_int(name, getattr(self, name), minimum=0)
        for name in ("max_utterance_ms", "sample_rate", "cut_search_ms"):
            _require_int(name, getattr(self, name), minimum=1)
        if not 0.0 < self.threshold <= 1.0:
            raise AudioError(f"EndpointConfig.threshold must be in (0, 1], got {self.threshold!r}")
        if not 0.0 <= self.hysteresis < self.threshold:
            raise AudioError(f"EndpointConfig.hysteresis must be in [0, threshold), got {self.hysteresis!r}")
        if self.samples(self.max_utterance_ms) < 2:
            raise AudioError(f"EndpointConfig.max_utterance_ms={self.max_utterance_ms} is under two samples")

    def samples(self, ms: int) -> int:
        """``ms`` as a whole number of samples at ``sample_rate``."""
        return ms * self.sample_rate // 1000


def _as_count(value: SupportsIndex) -> int:
    """``value`` as an int sample count (numpy integers included); 0, which push rejects, if it is not one."""
    try:
        return operator.index(value)
    except TypeError:
        return 0


def _require_int(name: str, value: object, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise AudioError(f"EndpointConfig.{name} must be an int >= {minimum}, got {value!r}")


@dataclass(frozen=True, slots=True)
class Utterance:
    """Samples ``[start_sample, end_sample)`` since the stream began, padding applied.

    ``forced`` marks an utterance cut at ``max_utterance_ms``; the next one starts exactly at its end.
    """

    start_sample: int
    end_sample: int
    forced: bool = False

    @property
    def n_samples(self) -> int:
        return self.end_sample - self.start_sample


class _Frame(NamedTuple):
    start: int
    end: int
    probability: float
    speech: bool


class Endpointer:
    """Cuts utterances from per-frame speech probabilities; sync, pure, no audio held.

    Padding: the start is ``first speech − padding`` (clamped at 0 and at the previous utterance's end, so
    utterances never overlap); the end is ``last speech + padding`` clamped at :attr:`position`, so it never
    names audio not yet seen. An utterance ends only after ``hangover_ms`` of quiet, so with
    ``padding_ms ≤ hangover_ms`` (the defaults) the clamp never binds except at :meth:`flush`.
    """

    def __init__(self, config: EndpointConfig | None = None) -> None:
        self.config = config if config is not None else EndpointConfig()
        c = self.config
        self._hangover = c.samples(c.hangover_ms)
        self._padding = c.samples(c.padding_ms)
        self._min_speech = c.samples(c.min_speech_ms)
        self._max_len = c.samples(c.max_utterance_ms)
        self._search = max(min(c.samples(c.cut_search_ms), self._max_len // 2), 1)
        self._on = c.threshold
        self._off = c.threshold - c.hysteresis
        self._state = EndpointState.SILENCE
        self._position = 0
        self._floor = 0  # end of the last emitted utterance: the next one may not start before it
        self._start = 0  # raw start of the open utterance
        self._from = 0  # its start with padding applied: what it will be emitted with
        self._speech = 0  # speech samples in the open utterance
        self._speech_end = 0  # end of its last speech frame
        self._continuation = False  # the open utterance is the rest of a forced cut
        # Plain (start, end, probability, speech) tuples: a NamedTuple per frame costs more than the rest of
        # push; they are viewed as _Frame only when a forced cut searches them.
        self._history: deque[tuple[int, int, float, bool]] = deque()

    @property
    def state(self) -> EndpointState:
        return self._state

    @property
    def in_speech(self) -> bool:
        """True while an utterance is open (speech or its hangover)."""
        return self._state is not EndpointState.SILENCE

    @property
    def position(self) -> int:
        """Samples seen since the stream began."""
        return self._position

    @property
    def speech_start(self) -> int | None:
        """Start sample (padding applied) the open utterance will be emitted with, or None in silence."""
        return self._from if self.in_speech else None

    @property
    def settled_until(self) -> int:
        """End of the audio the open utterance will certainly include, whatever comes next (short of a forced
        cut, which lands at a low point up to ``cut_search_ms`` back): its end will be at least the last speech
        plus padding. Audio past this, seen during a hangover, may yet fall outside it. :attr:`position` in
        silence."""
        if self.in_speech:
            return min(self._speech_end + self._padding, self._position)
        return self._position

    @property
    def retain_from(self) -> int:
        """Earliest sample the consumer may still need: older audio can be dropped."""
        if self.in_speech:
            return self._from
        return max(self._floor, self._position - self._padding, 0)

    def push(self, probability: float, n_samples: int) -> list[Utterance]:
        """Feed one detector frame of ``n_samples`` with speech ``probability`` in [0, 1]."""
        n = n_samples if type(n_samples) is int else _as_count(n_samples)
        if n <= 0 or not 0.0 <= probability <= 1.0:  # NaN fails the range test too
            raise AudioError(
                f"Endpointer.push: need 0 <= probability <= 1 and n_samples > 0, got {probability!r}, {n_samples!r}"
            )
        begin = self._position
        end = self._position = begin + n
        was = self._state
        if probability >= self._on:
            state = self._state = next_state(was, EndpointEvent.LOUD)
        else:
            event = EndpointEvent.SOFT if probability >= self._off else EndpointEvent.QUIET
            state = self._state = next_state(was, event)
        if state is EndpointState.SILENCE:
            return []
        if was is EndpointState.SILENCE:
            self._open(begin, continuation=False)
        speech = state is EndpointState.SPEECH
        if speech:
            self._speech += n
            self._speech_end = end
        history = self._history
        history.append((begin, end, probability, speech))
        if history[0][1] <= end - self._search and len(history) > 1:
            # One in, at most one out: the count grows only while every frame is inside the cut search window.
            history.popleft()
        if state is EndpointState.HANGOVER and end - self._speech_end >= self._hangover:
            self._state = next_state(state, EndpointEvent.EXPIRED)
            return self._close()
        if end - self._from >= self._max_len:
            return [self._force_cut()]
        return []

    def flush(self) -> list[Utterance]:
        """End of stream: close the open utterance (emitted if it has enough speech); positions carry on."""
        was = self._state
        self._state = next_state(was, EndpointEvent.FLUSH)
        return [] if was is EndpointState.SILENCE else self._close()

    def _open(self, start: int, continuation: bool) -> None:
        self._start = start
        self._from = max(start - self._padding, self._floor, 0)
        self._speech = 0
        self._speech_end = start
        self._continuation = continuation
        self._history.clear()

    def _close(self) -> list[Utterance]:
        """Emit the open utterance if it holds enough speech; a forced cut's rest needs only some speech."""
        enough = self._speech > 0 if self._continuation else self._speech >= self._min_speech
        self._history.clear()
        if not enough:
            return []
        utterance = Utterance(self._from, min(self._speech_end + self._padding, self._position))
        self._floor = utterance.end_sample
        return [utterance]

    def _force_cut(self) -> Utterance:
        """Cut the open utterance at a low point in the past and keep the rest open from exactly there."""
        cut = self._low_point()
        utterance = Utterance(self._from, cut, forced=True)
        self._floor = cut
        rest = [f for f in map(_Frame._make, self._history) if f.end > cut]
        self._open(cut, continuation=True)
        for f in rest:
            self._history.append(f)
            if f.speech:
                self._speech += f.end - max(f.start, cut)
                self._speech_end = f.end
        return utterance

    def _low_point(self) -> int:
        """Sample to cut at: the middle of the quietest frame of the longest quiet run in the search window.

        A pause is a safer cut than a single dip (Moonshine loops on words cut in half); only with no
        below-threshold frame at all does it cut mid-speech, at the least likely frame. Equal runs: the latest;
        equal frames: the one nearest the run's centre.
        """
        # Never empty: the newest frame ends at position, inside the window, and starts at or after the padded
        # start; if exactly there, it alone spans max_utterance (>= 2 samples), so its middle is past it.
        start, horizon = self._from, self._position - self._search
        frames = map(_Frame._make, self._history)
        candidates = [f for f in frames if (f.start + f.end) // 2 > start and f.end > horizon]
        runs: list[list[_Frame]] = []
        previous_low = False
        for f in candidates:
            low = f.probability < self.config.threshold
            if low and previous_low:
                runs[-1].append(f)
            elif low:
                runs.append([f])
            previous_low = low
        if runs:
            best = max(reversed(runs), key=lambda r: (r[-1].end - r[0].start, -min(f.probability for f in r)))
        else:
            best = candidates
        centre = best[0].start + best[-1].end
        quietest = min(best, key=lambda f: (f.probability, abs(f.start + f.end - centre)))
        return (quietest.start + quietest.end) // 2
