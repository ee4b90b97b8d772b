"""The extraction seam, the OpenAI → offline fallback composite, and the during-the-call scheduler.

``Extractor`` is a one-method protocol. :class:`FallbackExtractor` implements it too, so a call session holds one
extractor whatever is configured. :class:`IncrementalExtractor` is pure scheduling logic (time is an argument):
the session tells it about final transcript segments and asks whether to run an extraction now.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Protocol

from switchboard.extract.errors import ExtractionError
from switchboard.extract.offline import OfflineExtractor
from switchboard.extract.schema import Extraction, Speaker, Transcript

log = logging.getLogger(__name__)


class Extractor(Protocol):
    """Turns a transcript into call facts."""

    async def extract(self, transcript: Transcript) -> Extraction:
        """Extract the lead fields; providers raise :class:`ExtractionError` subclasses only."""
        ...


class ClosableExtractor(Extractor, Protocol):
    """An extractor holding a connection pool (OpenAI)."""

    async def close(self) -> None: ...


class FallbackExtractor:
    """OpenAI when configured, the offline extractor when it is not or when it fails.

    The offline result carries ``fallback_reason`` (the error's reason code and message), so stored extractions
    show why the model was not used. The offline extractor cannot fail, so neither can this.
    """

    def __init__(self, primary: ClosableExtractor | None, offline: OfflineExtractor) -> None:
        self.primary = primary
        self.offline = offline
        self._fallbacks: Counter[str] = Counter()
        self._primary_ok = 0

    async def extract(self, transcript: Transcript) -> Extraction:
        if self.primary is None:
            return await self.offline.extract(transcript)
        try:
            result = await self.primary.extract(transcript)
        except ExtractionError as exc:
            log.warning("extraction falling back to offline: %s", exc)
            self._fallbacks[exc.reason] += 1
            offline = await self.offline.extract(transcript)
            return offline.model_copy(update={"fallback_reason": str(exc)})
        self._primary_ok += 1
        return result

    def stats(self) -> dict[str, object]:
        """Primary successes and fallbacks by reason code, for metrics and /readyz."""
        return {"primary_ok": self._primary_ok, "fallbacks": dict(self._fallbacks)}

    async def close(self) -> None:
        if self.primary is not None:
            await self.primary.close()


@dataclass(slots=True)
class IncrementalExtractor:
    """Decides when to extract during a call (debounced, rate-limited, one run at a time).

    A run is due when there is caller speech finalised since the last run started, no run is in flight,
    fewer than ``max_runs`` have started, and ``min_interval_s`` has passed since the last start. Agent speech
    alone never triggers a run: the fields come from what the caller says. ``now`` is any monotonic clock in
    seconds.

    The session's loop::

        if inc.on_final(event.speaker, now): start(inc)          # after each final segment
        deadline = inc.next_deadline()                            # sleep until then, then:
        if inc.on_timer(now): start(inc)
        ...                                                       # when a run ends (success or not):
        inc.finished(now)
    """

    min_interval_s: float = 5.0
    max_runs: int = 20
    runs: int = field(default=0, init=False)
    in_flight: bool = field(default=False, init=False)
    _pending_since: float | None = field(default=None, init=False)
    _last_start: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        if self.min_interval_s < 0 or self.max_runs < 0:
            raise ValueError("min_interval_s and max_runs must be >= 0")

    def on_final(self, speaker: Speaker, now: float) -> bool:
        """Note a final segment; True means start a run now (and it is counted as started)."""
        if speaker == "caller" and self._pending_since is None:
            self._pending_since = now
        return self.on_timer(now)

    def on_timer(self, now: float) -> bool:
        """True if a run is due now; the caller must then start it (it is counted as started)."""
        deadline = self.next_deadline()
        if deadline is None or now < deadline:
            return False
        self._pending_since, self.in_flight = None, True
        self.runs += 1
        self._last_start = now
        return True

    def finished(self, now: float) -> bool:
        """Note that the run in flight ended; True if another is due at once (start it)."""
        self.in_flight = False
        return self.on_timer(now)

    def next_deadline(self) -> float | None:
        """When the next run becomes due, or None if nothing is waiting (or a run is in flight, or the budget
        is spent)."""
        if self._pending_since is None or self.in_flight or self.runs >= self.max_runs:
            return None
        if self._last_start is None:
            return self._pending_since
        return max(self._pending_since, self._last_start + self.min_interval_s)

    @property
    def exhausted(self) -> bool:
        """Every allowed run has started; only the final extraction at the end of the call remains."""
        return self.runs >= self.max_runs


__all__ = ["ClosableExtractor", "Extractor", "FallbackExtractor", "IncrementalExtractor"]
