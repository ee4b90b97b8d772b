"""Errors of the live event feed.

    LiveError
    └── Overflow    a subscriber fell too far behind and was closed; it resumes from ``resume_after``
"""

from __future__ import annotations


class LiveError(Exception):
    """Base of every error raised by :mod:`switchboard.live`."""


class Overflow(LiveError):
    """A subscriber fell too far behind and was closed; resume from ``resume_after``."""

    def __init__(self, resume_after: int) -> None:
        super().__init__(f"subscriber queue overflowed; resume with after={resume_after}")
        self.resume_after = resume_after


__all__ = ["LiveError", "Overflow"]
