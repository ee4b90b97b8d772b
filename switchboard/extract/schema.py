"""What extraction reads (:class:`Transcript`) and produces (:class:`CallFacts`, :class:`Extraction`).

``CallFacts`` is also the strict JSON schema sent to OpenAI (structured outputs): every field is required and
optional values are ``… | None``, which the SDK turns into ``anyOf [..., null]``. Field descriptions go into the
schema, so they are written for the model. Validators normalise what both extractors return (postcode spacing,
E.164 numbers, one-line summary) so downstream code sees one format whichever extractor ran.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator, model_validator

from switchboard.extract.errors import InvalidTranscript

Urgency = Literal["emergency", "urgent", "routine"]
IssueCategory = Literal["leak", "heating_boiler", "gas", "electrical", "lockout", "door_window_security",
                        "damp_mould", "blockage_drainage", "other"]
LeadSegment = Literal["tenant", "landlord", "homeowner", "commercial", "other"]
Speaker = Literal["caller", "agent"]
FieldSource = Literal["said", "spelled", "confirmed", "corrected", "caller_id", "inferred"]
ContactField = Literal["caller_name", "callback_number", "address", "postcode"]
CONTACT_FIELDS: Final[tuple[ContactField, ...]] = ("caller_name", "callback_number", "address", "postcode")
CONFIRM_BELOW: Final = 0.8
"""A contact field heard with less confidence than this is marked for confirmation (``needs_confirmation``)."""

_POSTCODE: Final = re.compile(r"^([A-Z]{1,2}[0-9][A-Z0-9]?)([0-9][A-Z]{2})$")
_LINE: Final = re.compile(r"^\s*(caller|agent)\s*:\s*(.*)$", re.IGNORECASE)


def normalise_postcode(value: str) -> str | None:
    """``"ls62ab"`` / ``"LS6 2AB"`` → ``"LS6 2AB"``; None if it is not shaped like a UK postcode."""
    compact = re.sub(r"[\s.\-]", "", value).upper()
    match = _POSTCODE.match(compact)
    return f"{match[1]} {match[2]}" if match else None


def normalise_phone(value: str) -> str | None:
    """A UK number in any common spelling → E.164 (``+447700900123``); other ``+``/``00`` numbers keep their
    country code. None when the digits cannot be a phone number."""
    digits = re.sub(r"\D", "", value)
    if value.strip().startswith("+") or digits.startswith("00"):
        digits = digits.removeprefix("00")
        return f"+{digits}" if 8 <= len(digits) <= 15 else None
    if digits.startswith("44") and len(digits) == 12:
        return f"+{digits}"
    if digits.startswith("0") and len(digits) in (10, 11):
        return f"+44{digits[1:]}"
    return None


class FieldEvidence(BaseModel):
    """How one field's value was heard: where it came from, how sure, and what else it could be."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: FieldSource = Field(
        description="said: said once; spelled: spelled letter by letter; confirmed: the caller agreed when it was "
                    "read back; corrected: the caller corrected it; caller_id: the phone network's caller ID, not "
                    "said; inferred: judged from the conversation (urgency, category, segment).")
    confidence: float = Field(description="0 to 1: how sure the value is right as heard.")
    alternatives: list[str] = Field(description="Other values it could be (mishearings), best first; [] if none.")

    @field_validator("confidence")
    @classmethod
    def _unit_interval(cls, value: float) -> float:
        return min(1.0, max(0.0, value))


class Evidence(BaseModel):
    """:class:`FieldEvidence` per field; null for a field that is null (or when unknown)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    caller_name: FieldEvidence | None
    callback_number: FieldEvidence | None
    address: FieldEvidence | None
    postcode: FieldEvidence | None
    urgency: FieldEvidence | None
    issue_category: FieldEvidence | None
    lead_segment: FieldEvidence | None


class CallFacts(BaseModel):
    """The lead fields of one call, and how each was heard."""

    # ``evidence`` is optional: facts stored before it existed, and facts built by hand, have none.
    # ``needs_confirmation`` is derived from it and never read from input: the contact fields heard with
    # confidence under CONFIRM_BELOW, which the agent should read back and the dashboard show as unconfirmed.

    model_config = ConfigDict(extra="forbid", frozen=True)

    caller_name: str | None = Field(description="The caller's full name as they said it, or null.")
    callback_number: str | None = Field(
        description="Number to call the caller back on, E.164 (UK numbers as +44…), or null if not said.")
    address: str | None = Field(description="Property address: number, street, town (no postcode), or null.")
    postcode: str | None = Field(description='UK postcode, upper case with one space, e.g. "LS6 2AB", or null.')
    urgency: Urgency = Field(
        description="emergency: danger or damage now (gas smell, water pouring, no heat with vulnerable people, "
                    "locked out at night); urgent: needs a visit within a day; routine: can wait.")
    issue_category: IssueCategory = Field(description="The main problem reported.")
    summary: str = Field(description="One line: the problem and what was agreed.")
    lead_segment: LeadSegment = Field(
        description="tenant (rents), landlord (owns a let property), homeowner (owns and lives there), "
                    "commercial (a business), other.")
    evidence: Evidence | None = Field(
        default=None, description="For each non-null field: its source, confidence and alternative readings.")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def needs_confirmation(self) -> list[ContactField]:
        """Contact fields with a value heard with confidence under :data:`CONFIRM_BELOW`."""
        if self.evidence is None:
            return []
        return [name for name in CONTACT_FIELDS if getattr(self, name) is not None
                and (e := getattr(self.evidence, name)) is not None and e.confidence < CONFIRM_BELOW]

    @model_validator(mode="before")
    @classmethod
    def _derived_not_input(cls, data: object) -> object:
        # A stored or published dump carries the derived list; it is recomputed, not taken from input.
        if isinstance(data, dict) and "needs_confirmation" in data:
            return {k: v for k, v in data.items() if k != "needs_confirmation"}
        return data

    @field_validator("postcode")
    @classmethod
    def _postcode(cls, value: str | None) -> str | None:
        # A value that is not a postcode is kept as said rather than failing the whole extraction.
        return value if value is None else normalise_postcode(value) or value.strip()

    @field_validator("callback_number")
    @classmethod
    def _phone(cls, value: str | None) -> str | None:
        return value if value is None else normalise_phone(value) or value.strip()

    @field_validator("summary")
    @classmethod
    def _one_line(cls, value: str) -> str:
        return " ".join(value.split())


Segment = tuple[Speaker, str, int] | tuple[Speaker, str, int, Sequence[str]]
"""``(speaker, text, start_ms)`` or ``(speaker, text, start_ms, alternatives)``."""


@dataclass(frozen=True, slots=True)
class Turn:
    """One stretch of speech by one side; ``start_ms`` is media time when known."""

    speaker: Speaker
    text: str
    start_ms: int | None = None
    alternatives: tuple[str, ...] = ()
    """The recogniser's other readings of the same speech, best first: a grammar may take a postcode or a number
    from one of them when ``text`` has none (at a confidence that asks for confirmation)."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """A call's turns in spoken order: the input of every extractor."""

    turns: tuple[Turn, ...]
    caller_id: str | None = None
    """The caller's number from the phone network (Twilio's ``From``), E.164, withheld numbers left out: a
    fallback for the callback number, never taken as said."""

    @classmethod
    def from_text(cls, text: str) -> Transcript:
        """Parse ``caller: …`` / ``agent: …`` lines (one turn a line; blank lines ignored)."""
        turns: list[Turn] = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            match = _LINE.match(line)
            if match is None:
                raise InvalidTranscript(f"line {number}: expected 'caller: …' or 'agent: …', got {line[:60]!r}")
            speaker: Speaker = "caller" if match[1].lower() == "caller" else "agent"
            turns.append(Turn(speaker, match[2].strip()))
        return cls(tuple(turns))

    @classmethod
    def from_segments(cls, segments: Iterable[Segment], *, caller_id: str | None = None) -> Transcript:
        """Turns from timed ``(speaker, text, start_ms)`` pieces of both tracks, ordered by media time; a fourth
        item, when present, is the recogniser's alternative readings of the piece."""
        ordered = sorted(segments, key=lambda s: s[2])
        return cls(tuple(_turn(s) for s in ordered if s[1].strip()), caller_id)

    def render(self) -> str:
        """The prompt form, which :meth:`from_text` reads back."""
        return "\n".join(f"{turn.speaker}: {turn.text}" for turn in self.turns)

    def text_of(self, speaker: Speaker) -> str:
        """Everything one side said, joined with spaces."""
        return " ".join(turn.text for turn in self.turns if turn.speaker == speaker)


def _turn(segment: Segment) -> Turn:
    alternatives = segment[3] if len(segment) == 4 else ()
    return Turn(segment[0], segment[1].strip(), segment[2], tuple(a.strip() for a in alternatives if a.strip()))


class Extraction(BaseModel):
    """One extraction result as stored and published; ``version`` is assigned by the store."""

    model_config = ConfigDict(frozen=True)

    facts: CallFacts
    source: Literal["openai", "offline"]
    model: str | None = None
    version: int | None = None
    fallback_reason: str | None = None


__all__ = [
    "CONFIRM_BELOW",
    "CONTACT_FIELDS",
    "CallFacts",
    "ContactField",
    "Evidence",
    "Extraction",
    "FieldEvidence",
    "FieldSource",
    "IssueCategory",
    "LeadSegment",
    "Speaker",
    "Transcript",
    "Turn",
    "Urgency",
    "normalise_phone",
    "normalise_postcode",
]
