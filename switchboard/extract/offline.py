"""The offline extractor: rules and keyword tables over the transcript; no network, no model; a few ms per call
(linear in transcript length, ~1–2 ms per 100 characters on a busy core).

It is the default with no OpenAI key and the fallback when OpenAI fails, so it must never raise on odd input:
a fact it cannot find is None (or the neutral enum value). The heuristics, in the order they are tried:

- **name**: the caller's reply to the agent's name question ("Who am I speaking to?" → "Dave Kowalski."), then a
  cue anywhere in caller speech ("my name is …", "it's …", "this is …"), then a sentence that opens with two or
  three capitalised words that are not street or filler words ("Gary Bennett, 312 Stratford Road…");
- **phone / postcode / address**: :mod:`switchboard.extract.patterns` over the caller's speech (reply to the agent's
  address question first for the address);
- **urgency**: the agent's own decision when said ("that's an emergency", "book that as urgent", "routine visit"),
  else caller emergency keywords (gas smell, water pouring, no heat with someone vulnerable, locked out at night),
  else when the agent promised the visit ("this afternoon", "within two hours" → urgent; "next week" → routine),
  else caller keywords (no heating, tripping, blocked, locked out → urgent; "no rush" → routine), else routine;
- **category / segment**: weighted keyword tables, caller words counting double the agent's; ties go to the
  earlier table entry. A flat with no other cue is taken as let (tenant): this line serves managed property.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from typing import Final, TypeVar

from switchboard.extract.fields import (
    NO,
    Heard,
    apply_spelling,
    confirm_by_readback,
    phone_field,
    postcode_field,
    spelled_words,
)
from switchboard.extract.patterns import STREET_SUFFIXES, TEENS, TENS, UNITS, find_address
from switchboard.extract.schema import (
    CallFacts,
    Evidence,
    Extraction,
    FieldEvidence,
    IssueCategory,
    LeadSegment,
    Transcript,
    Turn,
    Urgency,
)

Label = TypeVar("Label", bound=str)
Patterns = Sequence[tuple[str, int]]

CATEGORY_TABLE: Final[Sequence[tuple[IssueCategory, Patterns]]] = (
    ("gas", ((r"smell(?:s|ing)? (?:of )?gas|gas (?:leak|smell)|smell gas", 4), (r"\bgas\b", 1))),
    ("leak", ((r"\bleak(?:s|ing)?\b|pouring|dripping|burst pipe|flood(?:ed|ing)?|water (?:coming|through)", 3),
              (r"\bplumber\b", 1))),
    ("lockout", ((r"locked out|lock(?:ed)? myself out|key(?:s)? (?:snapped|broke|stuck)|lost (?:my|the) keys", 4),
                 (r"locksmith", 1))),
    ("heating_boiler", ((r"\bboiler\b|\bheating\b|hot water|radiators?", 3), (r"\bheating engineer\b", 1))),
    ("electrical", ((r"\belectrics?\b|electrical|tripp(?:ing|ed)|fuse ?box|fuse|no power|power cut|sockets?|sparks",
                     3), (r"electrician", 1))),
    ("damp_mould", ((r"\bmou?ld\b|mouldy|\bdamp\b|condensation", 3), (r"extractor fan", 1))),
    ("blockage_drainage", ((r"\bdrains?\b|blocked|blockage|backing up|overflowing toilet|sewage", 3),
                           (r"drainage", 1))),
    ("door_window_security", ((r"broken (?:window|door)|break-?in|burgl|smashed|won'?t (?:lock|close)|"
                               r"(?:window|door) (?:is )?broken", 3),)),
)
SEGMENT_TABLE: Final[Sequence[tuple[LeadSegment, Patterns]]] = (
    ("landlord", ((r"i'?m (?:a|the) landlord|my tenants?\b|i let (?:it|the|a)|rental property|my property i let", 4),)),
    ("tenant", ((r"i rent|i'?m (?:a|the) tenant|renting|my landlord|rent (?:a|the) flat", 4),)),
    ("commercial", ((r"i run (?:a|the)|my business|our (?:shop|office|restaurant|cafe|pub|salon|premises)|"
                     r"customers|we open", 4), (r"\b(?:cafe|café|shop|restaurant|office|pub|salon)\b", 1))),
    ("homeowner", ((r"i own (?:the|my|this)|my own (?:house|home)|homeowner|own the (?:house|property)", 4),
                   (r"my house", 1))),
)
EMERGENCY_CALLER: Final = (r"smell(?:s|ing)? (?:of )?gas|gas leak|smell gas|pouring|flood(?:ed|ing)|bulging|"
                           r"sparks|burning smell|smoke|\bfire\b|carbon monoxide|sewage (?:in|everywhere)")
URGENT_CALLER: Final = (r"no heating|no hot water|not working|stopped working|tripp(?:ing|ed)|blocked|backing up|"
                        r"locked out|\bleak|as soon as|today|urgent|\bcold\b|freezing|broken|break-?in|smashed|"
                        r"won'?t (?:work|start|close|lock|flush)|no (?:power|water|electric)")
ROUTINE_CALLER: Final = r"no rush|not urgent|whenever|no hurry|next week|when(?:ever)? you can"
NO_HEAT: Final = (r"no heating|no heat\b|heating(?:'s| is) (?:off|broken|not working)|radiators? (?:are |is )?"
                  r"(?:all )?(?:cold|stone cold)|boiler(?:'s| has| is)? (?:stopped|broken|not working)|freezing")
VULNERABLE: Final = (r"eighty|ninety|elderly|\bbaby\b|newborn|disabled|pregnant|\bkids?\b|child(?:ren)?|toddler|"
                     r"little (?:boy|girl|one)|poorly|oxygen|(?:he|she)'?s (?:one|two|three)\b")
NIGHT: Final = r"tonight|at night|middle of the night|midnight|\d+ ?(?:am|a\.m\.)"
AGENT_DECISION: Final[Sequence[tuple[Urgency, str]]] = (
    ("emergency", r"(?:that'?s|this is|it'?s|treat(?:ing)? (?:this|it|that) as|log(?:ging)? (?:this|it) as) "
                  r"(?:an )?emergency|emergency (?:call-?out|job|visit)"),
    ("urgent", r"(?:as|marked?|it'?s|that'?s|book(?:ed)? (?:it|that|this) (?:in )?as) urgent|urgent (?:job|visit)"),
    ("routine", r"routine (?:visit|job|appointment|repair)|(?:as|it'?s) routine"),
)
AGENT_SCHEDULE: Final[Sequence[tuple[Urgency, str]]] = (
    ("urgent", r"\btoday\b|this (?:morning|afternoon|evening)|tonight|within (?:the|an|one|two|three|four|\d+) "
               r"hours?|first thing tomorrow|\btomorrow\b"),
    ("routine", r"next week|in the next few days|book (?:you )?in for"),
)
NAME_QUESTION: Final = re.compile(r"\bname\b|who am i speaking|who'?s calling|who is (?:this|calling)|\bspell", re.I)
ADDRESS_QUESTION: Final = re.compile(r"\baddress\b|where (?:is|are) (?:the|you)|which property", re.I)
ADDRESS_FOLLOW_UP: Final = re.compile(
    r"^\W*(?:(?:okay|ok|mm-?hm|uh-huh|right|yes|yeah|sure|go on|got (?:it|that)|and)\W*)+$|"
    r"\b(?:which|what|and the) (?:town|city|street|road|area)\b|\band the rest\b|\bgo on\b", re.I)
NAME_CUE: Final = re.compile(
    r"\b(?i:(?P<strong>my name is|my name's|name's|call me)|(?P<weak>it's|it is|this is|i'm|i am))\s+"
    r"(?P<name>[A-Z][\w'’-]+(?:\s+[A-Z][\w'’-]+){0,2})")
_NAME_WORD: Final = re.compile(r"^(?:Mc|Mac|O['’])?[A-Z][a-z'’-]*[a-z]$")
NOT_NAMES: Final = frozenset({
    "hello", "hi", "hiya", "yeah", "yes", "no", "okay", "ok", "thanks", "thank", "sure", "right", "well", "oh",
    "um", "erm", "flat", "the", "it", "it's", "i", "i'm", "my", "there", "there's", "aye", "good", "morning",
    "afternoon", "evening", "sorry", "please", "postcode", "just", "and", "so", "but", "we", "we're", "you",
    "this", "that", "our", "mr", "mrs", "ms", "miss", "dr", "apartment", "unit", "house", "number", "mobile",
    "hey", "lovely", "great", "cheers", "fine", "speaking", *STREET_SUFFIXES, *UNITS, *TEENS, *TENS})
FILLER_PREFIX: Final = re.compile(
    r"^(?:(?:yeah|yes|yep|sure|okay|ok|um|erm|uh|oh|hi|hello|right|so|well|it's|it is|my name's|my name is|"
    r"this is|the name's|i'm)\b[\s,.]*)+", re.I)
GREETING_PREFIX: Final = re.compile(
    r"^(?:(?:yeah|yes|um|erm|uh|(?:hi|hiya|hello)(?: there)?|right|so|well)\b[\s,.]*)+", re.I)


class OfflineExtractor:
    """Heuristic :class:`~switchboard.extract.extractor.Extractor`; see the module docstring."""

    name = "offline"

    async def extract(self, transcript: Transcript) -> Extraction:
        """Runs :func:`extract_facts` in a worker thread: a long call's transcript takes long enough (tens of
        ms for an hour of speech) that it must not hold the event loop carrying the media."""
        facts = await asyncio.to_thread(extract_facts, transcript)
        return Extraction(facts=facts, source="offline")


def extract_facts(transcript: Transcript) -> CallFacts:
    """Every field from one transcript (pure), each with its evidence (:mod:`switchboard.extract.fields`)."""
    caller = transcript.text_of("caller")
    agent = transcript.text_of("agent")
    address = find_address_field(transcript)
    category: IssueCategory = classify(CATEGORY_TABLE, caller, agent, "other")
    segment: LeadSegment = classify(SEGMENT_TABLE, caller, agent, "other")
    if segment == "other" and address and address.value.lower().startswith(("flat", "apartment")):
        segment = "tenant"
    urgency = classify_urgency(caller, agent)
    stated = any(_count(pattern, agent) for _, pattern in AGENT_DECISION)
    contact = {"caller_name": find_name_field(transcript), "callback_number": phone_field(transcript),
               "address": address, "postcode": postcode_field(transcript)}
    evidence = Evidence(
        **{name: None if heard is None else heard.evidence() for name, heard in contact.items()},
        urgency=FieldEvidence(source="said" if stated else "inferred", confidence=0.9 if stated else 0.7,
                              alternatives=[]),
        issue_category=FieldEvidence(source="inferred", confidence=0.8 if category != "other" else 0.5,
                                     alternatives=[]),
        lead_segment=FieldEvidence(source="inferred", confidence=0.8 if segment != "other" else 0.5,
                                   alternatives=[]),
    )
    return CallFacts(
        **{name: None if heard is None else heard.value for name, heard in contact.items()},
        urgency=urgency,
        issue_category=category,
        summary=summarise(caller, category, urgency),
        lead_segment=segment,
        evidence=evidence,
    )


def find_name_field(transcript: Transcript) -> Heard | None:
    """The name as said, with a spelling given in the name answers applied, a correction after a read-back
    answered "no", and confirmation when a read-back was answered "yes"."""
    spelled = [word for reply in _replies(transcript, NAME_QUESTION) for word in spelled_words(reply)]
    heard = apply_spelling(find_name(transcript), spelled)
    for index, turn in enumerate(transcript.turns[:-1]):
        reply = transcript.turns[index + 1]
        if heard is None or turn.speaker != "agent" or reply.speaker != "caller" or not NO.search(reply.text):
            continue
        if heard.value.split()[0].lower() in turn.text.lower():
            words = _name_words(FILLER_PREFIX.sub("", NO.sub("", reply.text).lstrip(" ,.")))
            if words:
                heard = Heard(" ".join(words), "corrected", 0.85)
    return confirm_by_readback(transcript, heard)


def find_address_field(transcript: Transcript) -> Heard | None:
    """The address from the answers to the address question (which may run over several turns), else from
    anything the caller said; confirmed by a read-back answered yes."""
    reply = " ".join(_replies(transcript, ADDRESS_QUESTION, follow_up=ADDRESS_FOLLOW_UP, joiner=", "))
    address = find_address(reply) or find_address(transcript.text_of("caller"))
    if address is None:
        return None
    confidence = 0.85 if address.count(",") >= 1 else 0.75  # with a town (or a flat) it is more complete
    return confirm_by_readback(transcript, Heard(address, "said", confidence))


def classify(table: Sequence[tuple[Label, Patterns]], caller: str, agent: str, default: Label) -> Label:
    """The table entry with the highest weighted keyword score (caller ×2, agent ×1); ``default`` if none."""
    best, best_score = default, 0
    for label, patterns in table:
        score = sum(weight * (2 * _count(pattern, caller) + _count(pattern, agent)) for pattern, weight in patterns)
        if score > best_score:
            best, best_score = label, score
    return best


def classify_urgency(caller: str, agent: str) -> Urgency:
    """The agent's stated decision, else an emergency in the caller's words, else the visit the agent promised,
    else the caller's words (see the module docstring)."""
    for level, pattern in AGENT_DECISION:
        if _count(pattern, agent):
            return level
    if _count(EMERGENCY_CALLER, caller):
        return "emergency"
    if (_count(NO_HEAT, caller) and _count(VULNERABLE, caller)) or (_count("locked out", caller)
                                                                    and _count(NIGHT, caller)):
        return "emergency"
    for level, pattern in AGENT_SCHEDULE:  # when the agent promised a visit says how urgent they judged it
        if _count(pattern, agent):
            return level
    if _count(ROUTINE_CALLER, caller):
        return "routine"
    return "urgent" if _count(URGENT_CALLER, caller) else "routine"


def find_name(transcript: Transcript) -> str | None:
    """The caller's name: reply to the name question, then a cue phrase, then a name-shaped sentence opening."""
    for reply in _replies(transcript, NAME_QUESTION):
        words = _name_words(FILLER_PREFIX.sub("", reply.strip()))
        if words:
            return " ".join(words)
    caller = transcript.text_of("caller")
    for match in NAME_CUE.finditer(caller):
        words = _name_words(match["name"])
        if words and (match["strong"] or len(words) >= 2):
            return " ".join(words)
    for sentence in re.split(r"(?<=[.!?])\s+", caller):
        words = _name_words(sentence)
        if len(words) >= 2 and re.match(r"^\s*" + r"\s+".join(map(re.escape, words)) + r"\s*(?:[.,!?]|$)", sentence):
            return " ".join(words)
    return None


def _name_words(text: str) -> list[str]:
    """The leading run (at most three) of capitalised words that are not known non-name words."""
    words: list[str] = []
    for word in re.findall(r"[\w'’-]+|[^\w\s]", text):
        if not _NAME_WORD.match(word) or word.lower() in NOT_NAMES or len(words) == 3:
            break
        words.append(word)
    return words


def _replies(transcript: Transcript, question: re.Pattern[str], *,
             follow_up: re.Pattern[str] | None = None, joiner: str = " ") -> list[str]:
    """Caller turns that directly follow an agent turn matching ``question`` (consecutive caller turns join, and
    so do turns after an agent turn matching ``follow_up``: "mm-hm", "and the town?")."""
    replies: list[str] = []
    asked = joining = False
    previous: Turn | None = None
    for turn in transcript.turns:
        if turn.speaker == "agent":
            continues = asked and follow_up is not None and bool(follow_up.search(turn.text))
            asked, joining = continues or bool(question.search(turn.text)), continues
        elif asked:
            if replies and ((previous is not None and previous.speaker == "caller") or joining):
                replies[-1] = (replies[-1].rstrip(" .!?") if joiner != " " else replies[-1]) + joiner + turn.text
            else:
                replies.append(turn.text)
        previous = turn
    return replies


def summarise(caller: str, category: IssueCategory, urgency: Urgency) -> str:
    """One line: urgency, category and the caller's first sentence that names the problem (else their first
    sentence of four words or more)."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", caller) if len(s.split()) >= 4]
    cues = [pattern for label, patterns in CATEGORY_TABLE if label == category for pattern, _ in patterns]
    named = [s for s in sentences if any(_count(cue, s) for cue in cues)]
    problem = GREETING_PREFIX.sub("", (named or sentences or ["no problem described"])[0])
    label = category.replace("_", " ")
    text = f"{urgency.capitalize()} {label}: {problem}"
    return text if len(text) <= 160 else text[:157].rstrip() + "…"


def _count(pattern: str, text: str) -> int:
    return len(re.findall(pattern, text, re.IGNORECASE))


__all__ = ["OfflineExtractor", "classify", "classify_urgency", "extract_facts", "find_address_field", "find_name",
           "find_name_field", "summarise"]
