"""Turn a stereo fixture into the Twilio media messages of one call, with optional network impairments.

Pure and seeded: the same file and options always give the same schedule, so a test can predict exactly which
frames were lost and what the server must have recorded.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from audio import FRAME_MS
from audio.wav import iter_track_frames

TRACKS = ("inbound", "outbound")


@dataclass(frozen=True, slots=True)
class Impairments:
    jitter_ms: float = 0.0
    """Each frame's send time is delayed by up to this much, so frames can overtake each other."""
    loss_pct: float = 0.0
    reorder_pct: float = 0.0
    """Share of frames swapped with their successor on the same track."""
    seed: int = 0


@dataclass(frozen=True, slots=True)
class OutFrame:
    track: str
    chunk: int
    timestamp_ms: int
    payload: bytes
    send_at_ms: float


@dataclass(slots=True)
class Schedule:
    frames: list[OutFrame]
    duration_ms: int
    sent: dict[str, int] = field(default_factory=dict)
    lost: dict[str, list[int]] = field(default_factory=dict)
    """Timestamps (ms) of frames that were never sent, per track."""


def load_tracks(path: Path) -> tuple[list[bytes], list[bytes]]:
    """Per-track 20 ms μ-law frames of a stereo file (a mono file becomes a silent agent track)."""
    inbound: list[bytes] = []
    outbound: list[bytes] = []
    for chunk in iter_track_frames(path, FRAME_MS):
        inbound.append(chunk[0])
        if len(chunk) > 1:
            outbound.append(chunk[1])
    return inbound, outbound


def build_schedule(path: Path, imp: Impairments = Impairments()) -> Schedule:
    """Frames in send order. The last frame of each track is never lost, so the call's length is kept."""
    rng = random.Random(imp.seed)
    tracks = load_tracks(path)
    frames: list[OutFrame] = []
    sent: dict[str, int] = {}
    lost: dict[str, list[int]] = {}
    duration = 0
    for track, chunks in zip(TRACKS, tracks, strict=True):
        if not chunks:
            continue
        position = 0
        kept: list[OutFrame] = []
        lost[track] = []
        for index, payload in enumerate(chunks):
            ts = position
            position += len(payload) // 8
            last = index == len(chunks) - 1
            if not last and imp.loss_pct and rng.random() * 100 < imp.loss_pct:
                lost[track].append(ts)
                continue
            delay = rng.random() * imp.jitter_ms if imp.jitter_ms else 0.0
            kept.append(OutFrame(track, index + 1, ts, payload, ts + delay))
        if imp.reorder_pct:
            for i in range(len(kept) - 2):
                if rng.random() * 100 < imp.reorder_pct:
                    a, b = kept[i], kept[i + 1]
                    kept[i] = OutFrame(b.track, b.chunk, b.timestamp_ms, b.payload, a.send_at_ms)
                    kept[i + 1] = OutFrame(a.track, a.chunk, a.timestamp_ms, a.payload, b.send_at_ms)
        sent[track] = len(kept)
        duration = max(duration, position)
        frames.extend(kept)
    # Twilio interleaves the tracks; a stable sort keeps each track's (possibly reordered) order for equal times.
    frames.sort(key=lambda f: f.send_at_ms)
    return Schedule(frames, duration, sent, lost)
