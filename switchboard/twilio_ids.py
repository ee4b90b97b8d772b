"""Shapes of Twilio identifiers (34 characters: a two-letter prefix and 32 hex digits)."""

from __future__ import annotations

import re

_CALL_SID = re.compile(r"CA[0-9a-fA-F]{32}")


def is_call_sid(value: object) -> bool:
    """Exactly a CallSid: ``fullmatch``, since ``$`` would also accept a trailing newline."""
    return isinstance(value, str) and _CALL_SID.fullmatch(value) is not None
