"""Errors raised by the audio package.

    AudioError (ValueError)
    ├── InvalidPcmError       PCM that cannot be samples (odd byte length, wrong dtype, wrong shape)
    ├── UnsupportedRateError  a sample rate or rate pair this package does not convert
    ├── MalformedWavError     a WAV file that cannot be parsed (bad RIFF/fmt/data chunks, unsupported format)
    └── TimestampJumpError    a media timestamp further from the timeline than the configured bound

All are ``ValueError`` subclasses: they describe impossible input, never a transient condition.
"""


class AudioError(ValueError):
    """Base of every error raised by :mod:`audio`."""


class InvalidPcmError(AudioError):
    """PCM data that cannot be interpreted as samples."""


class UnsupportedRateError(AudioError):
    """A sample rate (or rate pair) that is not supported."""


class MalformedWavError(AudioError):
    """A WAV file whose structure cannot be parsed."""


class TimestampJumpError(AudioError):
    """A frame placed further ahead of the timeline than ``max_gap_ms``: filling that gap with silence would be an
    order to allocate (and record) arbitrary amounts of nothing, so the frame is refused instead."""
