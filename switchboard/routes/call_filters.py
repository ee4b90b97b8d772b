"""``GET /api/calls`` query parameters → :class:`~switchboard.store.call_query.CallFilter`, or a clear error.

=============  ==========================================================================================
``live``       ``true``: streaming now; ``false``: ended
``direction``  Twilio's ``Direction``: ``inbound``, ``outbound-api``, ``outbound-dial``
``answered_by````operator``, ``agent`` or ``voicemail`` (nobody answered)
``urgency``    ``emergency``, ``urgent``, ``routine`` (the call's lead)
``lead_status````new``, ``contacted``, ``closed``, ``open`` (not closed) or ``none`` (no lead)
``since``      ISO 8601 date or date-time (UTC when it has no offset): created at or after
``until``      the same: created before
``q``          free text, ≤ 200 characters: number, CallSid, lead name/postcode/address, words said
=============  ==========================================================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final, cast

from switchboard.store.call_query import CallFilter, LeadStatusFilter

CHOICES: Final[Mapping[str, frozenset[str]]] = {
    "direction": frozenset({"inbound", "outbound-api", "outbound-dial"}),
    "answered_by": frozenset({"operator", "agent", "voicemail"}),
    "urgency": frozenset({"emergency", "urgent", "routine"}),
    "lead_status": frozenset({"new", "contacted", "closed", "open", "none"}),
}
BOOLEANS: Final = {"true": True, "1": True, "false": False, "0": False}
MAX_QUERY: Final = 200


class BadFilter(ValueError):
    """A query parameter has a value the history cannot filter on; the message names it."""


def parse_filter(params: Mapping[str, str]) -> CallFilter:
    values: dict[str, str | None] = {}
    for name, allowed in CHOICES.items():
        raw = params.get(name) or None
        if raw is not None and raw not in allowed:
            raise BadFilter(f"{name} must be one of {', '.join(sorted(allowed))}; got {raw[:40]!r}")
        values[name] = raw
    live_raw = params.get("live") or None
    if live_raw is not None and live_raw.lower() not in BOOLEANS:
        raise BadFilter(f"live must be true or false; got {live_raw[:40]!r}")
    query = (params.get("q") or "").strip() or None
    if query is not None and len(query) > MAX_QUERY:
        raise BadFilter(f"q is longer than {MAX_QUERY} characters")
    return CallFilter(
        live=None if live_raw is None else BOOLEANS[live_raw.lower()],
        direction=values["direction"], answered_by=values["answered_by"], urgency=values["urgency"],
        lead_status=cast(LeadStatusFilter | None, values["lead_status"]),
        since=_instant(params, "since"), until=_instant(params, "until"), query=query,
    )


def _instant(params: Mapping[str, str], name: str) -> datetime | None:
    raw = params.get(name) or None
    if raw is None:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise BadFilter(f"{name} must be an ISO 8601 date or date-time; got {raw[:40]!r}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
