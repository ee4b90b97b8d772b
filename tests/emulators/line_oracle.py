"""A recogniser engine for the scripted callers: it finds the audio it is given among the dialog lines
(``fixtures/dialogs``) and answers with that stretch's words, so the agent's end-to-end tests check exact fields.

Lines are found by their loudness contour (10 ms log-energy, Pearson correlation ≥ 0.95 against every line at
every offset): blind to the resampler's phase and cheap. A line's words get positions in proportion to their
characters, so an utterance holding part of a line gets those words.
Audio it cannot place (the agent's echo on a speaker-phone) is heard as no words.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from audio import mulaw
from audio.resample import StreamResampler
from switchboard.replay.script import load_dialogs

HOP = 160
"""10 ms at 16 kHz: lines are matched on their loudness contour (phase-blind, cheap, exact enough)."""
MIN_FRAMES = 15


def _pcm16k(ulaw: bytes) -> np.ndarray:
    resampler = StreamResampler(8000, 16_000)
    return np.concatenate([resampler.push(mulaw.decode(ulaw)), resampler.flush()])


def _contour(pcm: np.ndarray) -> np.ndarray:
    frames = pcm[: len(pcm) // HOP * HOP].astype(np.float64).reshape(-1, HOP)
    return np.log10(np.mean(frames * frames, axis=1) + 1.0)


class LineOracle:
    def __init__(self, dialogs_json: Path) -> None:
        self._refs: list[tuple[np.ndarray, list[tuple[float, str]]]] = []
        for dialog in load_dialogs(dialogs_json):
            for step in dialog.steps:
                if not step.audio:
                    continue
                contour = _contour(_pcm16k(step.audio))
                words, total, at = [], max(1, len(step.text)), 0
                for word in step.text.split():
                    at = step.text.index(word, at)
                    words.append(((at + len(word) / 2) / total * len(contour), word))
                    at += len(word)
                self._refs.append((contour, words))
        self.located = self.unknown = 0

    def words(self, pcm: np.ndarray) -> str:
        """The words of the line stretch ``pcm`` is (Pearson correlation of loudness contours ≥ 0.95), or ""."""
        loud = np.flatnonzero(np.abs(pcm.astype(np.int32)) >= 256)
        if len(loud) < HOP * MIN_FRAMES:
            return ""
        x = _contour(pcm[loud[0]:loud[-1] + 1])
        if len(x) < MIN_FRAMES:
            return ""
        best: tuple[float, int, int] = (0.0, -1, 0)
        for index, (ref, _) in enumerate(self._refs):
            if len(ref) < len(x):
                continue
            windows = np.lib.stride_tricks.sliding_window_view(ref, len(x))
            wc = windows - windows.mean(axis=1, keepdims=True)
            xc = x - x.mean()
            denom = np.linalg.norm(wc, axis=1) * np.linalg.norm(xc)
            scores = (wc @ xc) / np.where(denom > 0, denom, np.inf)
            at = int(np.argmax(scores))
            if scores[at] > best[0]:
                best = (float(scores[at]), index, at)
        score, index, offset = best
        if score < 0.95:
            self.unknown += 1
            return ""
        self.located += 1
        _, words = self._refs[index]
        return " ".join(w for mid, w in words if offset <= mid < offset + len(x))


class LineOracleEngine:
    """The local recogniser engine in these tests (``RecognizerPool(engine_factory=...)``)."""

    def __init__(self, oracle: LineOracle) -> None:
        self._oracle = oracle

    def transcribe(self, samples: np.ndarray) -> str:
        return self._oracle.words(np.round(samples * 32768.0).astype(np.int16))

    def self_test(self) -> str:
        return ""

    def close(self) -> None:
        return None


__all__ = ["LineOracle", "LineOracleEngine"]
