"""The log scrubber: credentials never survive formatting, whatever shape the record has."""

from __future__ import annotations

import logging

import pytest

from switchboard.log_scrub import ScrubSecrets
from switchboard.redact import public_error, scrub_secrets

SECRET = "s3cr3t-value-1234"


@pytest.mark.parametrize(("text", "shown"), [
    ('127.0.0.1:5 - "GET /api/live/CA1?token=abc.DEF-1&after=2 HTTP/1.1" 101',
     '127.0.0.1:5 - "GET /api/live/CA1?token=[redacted]&after=2 HTTP/1.1" 101'),
    ("Authorization: Bearer abc123", "Authorization: Bearer [redacted]"),
    ("headers [(b'authorization', b'Bearer abc'), (b'x-twilio-signature', b'Ab+/=')]",
     "headers [(b'authorization', b'Bearer [redacted]'), (b'x-twilio-signature', b'[redacted]')]"),
    ('{"customParameters": {"token": "tok-xyz"}}', '{"customParameters": {"token": "[redacted]"}}'),
    ("postgres://user:pw@db:5432/x", "postgres://user:[redacted]@db:5432/x"),
    (f"ends with {SECRET}", "ends with [redacted]"),
    ("nothing to hide here", "nothing to hide here"),
])
def test_scrub_secrets(text: str, shown: str) -> None:
    assert scrub_secrets(text, [SECRET]) == shown


def record(msg: str, args: tuple[object, ...] | None = None, **extra: object) -> logging.LogRecord:
    rec = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, msg, args, None)
    rec.__dict__.update(extra)
    return rec


def test_access_log_args_keep_their_shape() -> None:
    rec = record('%s - "%s %s HTTP/%s" %d', ("127.0.0.1:5", "GET", "/api/live?token=abc", "1.1", 101))
    ScrubSecrets().filter(rec)
    assert isinstance(rec.args, tuple) and len(rec.args) == 5 and rec.args[4] == 101
    assert rec.getMessage() == '127.0.0.1:5 - "GET /api/live?token=[redacted] HTTP/1.1" 101'


def test_a_secret_split_over_args_is_scrubbed_once_formatted() -> None:
    rec = record("< %s: %s", ("x-twilio-signature", "AbC+/="), color_message="< %s: %s")
    ScrubSecrets().filter(rec)
    assert rec.getMessage() == "< x-twilio-signature: [redacted]" and "color_message" not in rec.__dict__


def test_exception_text_and_literal_secrets_are_scrubbed() -> None:
    try:
        raise ValueError(f"bad URL wss://x/y?token=abc and {SECRET}")
    except ValueError as exc:
        info = (type(exc), exc, exc.__traceback__)
        rec = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed: %r", (exc,), info)
    ScrubSecrets([SECRET]).filter(rec)
    text = logging.Formatter().format(rec)
    assert SECRET not in text and "token=abc" not in text and "token=[redacted]" in text


def test_public_error_drops_hosts_sids_and_paths() -> None:
    shown = public_error("StoreUnavailable: connect to 10.0.0.5:5432 failed for CA" + "a" * 32 + " at /data/spool/x")
    assert shown == "StoreUnavailable: connect to [address] failed for [sid] at [path]"
    assert public_error("ArchiveUnavailable: db.internal:9000 timed out") == "ArchiveUnavailable: [address] timed out"
    assert public_error(None) is None
