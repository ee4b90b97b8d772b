"""Text that leaves the process: secrets scrubbed from log lines, internals scrubbed from unauthenticated answers.

:func:`scrub_secrets` removes credentials wherever they hide in a log line: ``token=`` in a URL's query (uvicorn's
access log writes the full path), ``Authorization`` values, ``X-Twilio-Signature`` values, a ``"token"`` field of a
dict or JSON text (the media stream's ``customParameters``), and the literal values of the configured secrets.

:func:`public_error` is for ``/readyz``, which anyone can read: it keeps an error's type and gist but drops
what maps the network or names callers: URLs, host:port pairs, IP addresses, filesystem paths and Twilio SIDs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

REDACTED = "[redacted]"
MAX_PUBLIC_CHARS = 200

_SECRET_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # ?token=… / &access_token=… / signature=… in a URL or query string (also with '=' encoded as %3D)
    (re.compile(r"(?i)((?:^|[?&;\s\"'])(?:[a-z_]*token|[a-z_]*signature|api_?key|secret|password)(?:=|%3D))"
                r"[^&\s\"'#;,]+"), r"\1" + REDACTED),
    # Authorization: Bearer … / 'authorization': b'Basic …' (header dumps, reprs)
    (re.compile(r"(?i)(authorization['\"]?\s*[:=,]\s*(?:b?['\"])?(?:bearer|basic|token)?\s*)[^\s'\",)}\]]+"),
     r"\1" + REDACTED),
    # X-Twilio-Signature: …
    (re.compile(r"(?i)(x-twilio-signature['\"]?\s*[:=,]\s*(?:b?['\"])?)[^\s'\",)}\]]+"), r"\1" + REDACTED),
    # postgres://user:password@host
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/\s@]*:)[^@\s/]+@"), r"\1" + REDACTED + "@"),
    # "token": "…" / 'token': '…' (customParameters, JSON bodies, dict reprs)
    (re.compile(r"(?i)(['\"][a-z_]*token['\"]\s*:\s*(?:b?['\"]))[^'\"]*"), r"\1" + REDACTED),
)


def scrub_secrets(text: str, literals: Iterable[str] = ()) -> str:
    """``text`` with every credential replaced by ``[redacted]``; ``literals`` are known secret values."""
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    for secret in literals:
        if len(secret) >= 6 and secret in text:  # shorter "secrets" would shred ordinary words
            text = text.replace(secret, REDACTED)
    return text


_PUBLIC_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[a-z][a-z0-9+.-]*://\S+", re.I), "[url]"),
    (re.compile(r"\b(?:CA|MZ|AC|SM|RE)[0-9a-fA-F]{32}\b"), "[sid]"),
    (re.compile(r"\[?[0-9a-fA-F:]*:[0-9a-fA-F:]+\]?:\d+\b"), "[address]"),  # [::1]:5432
    (re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b"), "[address]"),
    (re.compile(r"\b[a-zA-Z0-9-]+(?:\.[a-zA-Z0-9-]+)*:\d{2,5}\b"), "[address]"),  # db.internal:5432
    (re.compile(r"(?<![\w.])(?:/[^\s/:'\"]+){2,}/?"), "[path]"),
    (re.compile(r"\b[\w-]+(?:/[\w.-]+){2,}"), "[key]"),  # archive keys: recordings/2025/01/02/…
)


def public_error(text: str | None) -> str | None:
    """An error message fit for an unauthenticated endpoint (see the module docstring)."""
    if text is None:
        return None
    for pattern, replacement in _PUBLIC_PATTERNS:
        text = pattern.sub(replacement, text)
    text = scrub_secrets(text)
    return text if len(text) <= MAX_PUBLIC_CHARS else text[: MAX_PUBLIC_CHARS - 1] + "…"
