"""Why a media stream is not taken: one error for every refusal of the handshake, with its close code.

    CallRefused           bad signature, no start in time, malformed start, bad or spent token, over capacity
    └── DuplicateCall     a second stream for a call live on this instance (or the server is draining)
"""

from __future__ import annotations

from switchboard.close_codes import CloseCode


class CallRefused(Exception):
    """The stream is closed with ``code`` and ``reason`` (a short text for the peer and the log)."""

    def __init__(self, reason: str, code: CloseCode = CloseCode.POLICY_VIOLATION) -> None:
        super().__init__(reason)
        self.reason, self.code = reason, code


class DuplicateCall(CallRefused):
    """A second media stream for a call that already has one on this instance."""


__all__ = ["CallRefused", "DuplicateCall"]
