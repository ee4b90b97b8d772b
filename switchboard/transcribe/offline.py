"""Transcribe a recorded call file through the same audio path as a live call (``switchboard transcribe``).

A stereo recording (caller left = Twilio ``inbound``, agent right = ``outbound``), μ-law 8 kHz as the server
records it, is read in 20 ms frames, decoded, resampled 8 → 16 kHz by one stream resampler per track and pushed
into one :class:`LocalStream` per track with media timestamps, exactly like the media path: what the CLI prints
is what a live call of that audio would have stored. Mono files are the caller alone; PCM16 and 16 kHz files are
accepted too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np

from audio import FRAME_MS, STT_RATE, mulaw
from audio.endpoint import EndpointConfig
from audio.errors import MalformedWavError
from audio.media_time import samples_to_ms
from audio.resample import StreamResampler
from audio.wav import WavReader, iter_track_frames
from switchboard.transcribe.base import Pcm16, TranscriptEvent, TranscriptStream
from switchboard.transcribe.local import LocalTranscriber
from switchboard.transcribe.moonshine import RecognizerPool

TRACKS: Final = ("inbound", "outbound")
SPEAKERS: Final = {"inbound": "caller", "outbound": "agent"}
YIELD_EVERY_FRAMES: Final = 50
"""Let the recognisers' iterators run after each second of audio fed, so buffered audio stays small."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One final transcript segment; times are ms from the start of the file."""

    track: str
    speaker: str
    start_ms: int
    end_ms: int
    text: str
    alternatives: tuple[str, ...] = ()
    """The recogniser's other readings of the same audio, best first (see ``TranscriptEvent.alternatives``)."""

    def to_dict(self) -> dict[str, Any]:
        return {"track": self.track, "speaker": self.speaker, "start_ms": self.start_ms,
                "end_ms": self.end_ms, "text": self.text, "alternatives": list(self.alternatives)}


@dataclass(frozen=True, slots=True)
class OfflineResult:
    """Final segments of both tracks, in media-time order."""

    segments: tuple[Segment, ...]
    duration_ms: int

    def text(self, speaker: str) -> str:
        """All of one speaker's segments joined with spaces ("" if they said nothing)."""
        return " ".join(s.text for s in self.segments if s.speaker == speaker)

    @property
    def caller(self) -> str:
        return self.text("caller")

    @property
    def agent(self) -> str:
        return self.text("agent")

    def to_json(self) -> dict[str, Any]:
        """The CLI's ``--json`` document: ``{"caller": TEXT, "agent": TEXT, "segments": [...]}``."""
        return {"caller": self.caller, "agent": self.agent, "segments": [s.to_dict() for s in self.segments]}


class _TrackFeed:
    """Decode → resample → push for one track, keeping the media time of the next sample pushed."""

    def __init__(self, stream: TranscriptStream, rate: int, encoding: str) -> None:
        self.stream = stream
        self._mulaw = encoding == "mulaw"
        self._resampler = StreamResampler(rate, STT_RATE) if rate != STT_RATE else None
        self._pushed = 0

    def push(self, chunk: bytes) -> None:
        pcm = mulaw.decode(chunk) if self._mulaw else np.frombuffer(chunk, dtype="<i2").astype(np.int16)
        self._push(self._resampler.push(pcm) if self._resampler else pcm)

    def end(self) -> None:
        if self._resampler is not None:
            self._push(self._resampler.flush())
        self.stream.end()

    def _push(self, pcm: Pcm16) -> None:
        # The resampler's output is time-aligned with its input, so samples pushed so far give media time.
        if len(pcm):
            self.stream.push(pcm, samples_to_ms(self._pushed, STT_RATE))
            self._pushed += len(pcm)


async def transcribe_file(path: Path, pool: RecognizerPool, *,
                          endpoint: EndpointConfig | None = None) -> OfflineResult:
    """Transcribe ``path`` (mono or stereo WAV) with the local recogniser; both tracks run concurrently."""
    with WavReader(path) as reader:
        channels, rate, encoding = reader.channels, reader.sample_rate, reader.encoding
        duration_ms = samples_to_ms(reader.n_frames, rate)
    if channels not in (1, 2):
        raise MalformedWavError(f"{path}: expected a mono or stereo call recording, got {channels} channels")
    transcriber = LocalTranscriber(pool, endpoint=endpoint)
    streams: list[TranscriptStream] = []
    collected: list[asyncio.Task[list[Segment]]] = []
    try:
        for track in TRACKS[:channels]:
            streams.append(await transcriber.open(track, STT_RATE))
        async with asyncio.TaskGroup() as group:
            collected = [group.create_task(_collect(stream)) for stream in streams]
            group.create_task(_feed(path, [_TrackFeed(s, rate, encoding) for s in streams]))
    finally:
        for stream in streams:
            await stream.aclose()
    segments = [seg for task in collected for seg in task.result()]
    segments.sort(key=lambda s: (s.start_ms, TRACKS.index(s.track)))
    return OfflineResult(tuple(segments), duration_ms)


async def _feed(path: Path, feeds: Sequence[_TrackFeed]) -> None:
    for n, chunks in enumerate(iter_track_frames(path, FRAME_MS), start=1):
        for feed, chunk in zip(feeds, chunks, strict=True):
            feed.push(chunk)
        if n % YIELD_EVERY_FRAMES == 0:
            await asyncio.sleep(0)
    for feed in feeds:
        feed.end()


async def _collect(stream: TranscriptStream) -> list[Segment]:
    return [Segment(e.track, SPEAKERS[e.track], e.start_ms, e.end_ms, e.text, e.alternatives)
            async for e in stream if isinstance(e, TranscriptEvent) and e.is_final]


__all__ = ["OfflineResult", "Segment", "transcribe_file"]
