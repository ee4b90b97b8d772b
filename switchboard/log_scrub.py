"""A logging filter that scrubs credentials from every record, installed where every record is made.

A filter on a handler misses handlers added later (uvicorn's own, pytest's capture), and a filter on a logger
misses records propagated from its children, so :func:`install` puts :class:`ScrubSecrets` in the log record
factory: each record is scrubbed once, as it is created, whoever handles it. That covers uvicorn's access log
(``GET /api/live?token=…``), its error log and tracebacks (the exception text is formatted and scrubbed then).

The record keeps its shape where it can: ``args`` stay a tuple (uvicorn's access formatter unpacks it), only the
strings in it that carried a secret are replaced by their scrubbed text. A secret that shows only once the message
is formatted (a header name in one arg, its value in the next) makes the record carry the scrubbed text instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from switchboard.redact import scrub_secrets

_lock = threading.Lock()
_installed: ScrubSecrets | None = None


class ScrubSecrets(logging.Filter):
    """Rewrites a record in place so that no credential survives formatting; never drops a record."""

    def __init__(self, literals: Iterable[str] = ()) -> None:
        super().__init__()
        self.literals = tuple(sorted({s for s in literals if s}, key=len, reverse=True))

    def filter(self, record: logging.LogRecord) -> bool:
        self.scrub(record)
        return True

    def scrub(self, record: logging.LogRecord) -> None:
        record.msg = self._value(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._value(arg) for arg in record.args)
        elif isinstance(record.args, dict):
            record.args = {key: self._value(arg) for key, arg in record.args.items()}
        self._flatten_if_needed(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._text(record.exc_text)
        if record.stack_info:
            record.stack_info = self._text(record.stack_info)

    def _flatten_if_needed(self, record: logging.LogRecord) -> None:
        """A secret split over the format and its args (``"< %s: %s", "authorization", "Bearer …"``) shows only
        once formatted: then the record carries the scrubbed text and no args."""
        if not record.args:
            return
        try:
            shown = record.getMessage()
        except (TypeError, ValueError, KeyError):
            return  # a malformed record: logging reports it when it formats it, as it would without us
        scrubbed = self._text(shown)
        if scrubbed != shown:
            record.msg, record.args = scrubbed, ()
            record.__dict__.pop("color_message", None)  # uvicorn's coloured copy of the format, with the old args

    def _text(self, text: str) -> str:
        return scrub_secrets(text, self.literals)

    def _value(self, value: Any) -> Any:
        if value is None or isinstance(value, int | float | bool):
            return value
        if isinstance(value, bytes | bytearray):
            shown = repr(bytes(value))
        else:
            try:
                shown = value if isinstance(value, str) else str(value)
            except Exception:  # a broken __str__ is the formatter's problem, as it was without us
                return value
        scrubbed = self._text(shown)
        return value if scrubbed == shown else scrubbed


def install(literals: Iterable[str] = ()) -> ScrubSecrets:
    """Scrub every log record of this process from now on; ``literals`` are the configured secret values.

    Installing again replaces the known literals (the factory is wrapped only once)."""
    global _installed
    with _lock:
        if _installed is not None:
            _installed.literals = ScrubSecrets(literals).literals
            return _installed
        scrubber = ScrubSecrets(literals)
        make: Callable[..., logging.LogRecord] = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = make(*args, **kwargs)
            scrubber.scrub(record)
            return record

        logging.setLogRecordFactory(factory)
        _installed = scrubber
        return scrubber
