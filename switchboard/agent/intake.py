"""The offline intake script: a deterministic dialog driven by the offline extractor. The default with no OpenAI
key, and what takes over a turn when the model fails or is slow.

It is a pure function of the conversation (no state of its own), so it can take over at any turn, even after the
model has led the call. Each caller turn is read with the agent line it answers, and later answers win, which is
how corrections work ("no, the postcode is LS6 3AB"). It asks for what is still missing in the profile's order,
at most twice each; then reads the facts back; a yes ends the call, a correction is applied and read back. An
emergency raises the alert once and the agent says so. Every word comes from the profile.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import AsyncGenerator, Callable
from typing import Final

from switchboard.agent.dialog import DialogContext, DialogOutput, Say
from switchboard.agent.profile import AgentProfile
from switchboard.agent.tools import RaiseAlert, RecordDetails, RequestEnd, RequestTransfer
from switchboard.extract.offline import (
    CATEGORY_TABLE,
    ROUTINE_CALLER,
    SEGMENT_TABLE,
    classify,
    classify_urgency,
    extract_facts,
    find_name,
    summarise,
)
from switchboard.extract.schema import CallFacts, Transcript, Turn

PERSON: Final = re.compile(
    r"\b(?:speak|talk)(?:ing)?\s+(?:to|with)\s+(?:a|an|the|some|a real|an actual)?\s*"
    r"(?:human|person|someone|somebody|operator|manager|member of (?:the )?(?:staff|team))\b|"
    r"\b(?:real|actual) (?:person|human)\b|\bput me through to (?:a|an|some)(?:one|body| person| human)\b",
    re.IGNORECASE)
YES: Final = re.compile(r"^\W*(?:yes|yeah|yep|yup|correct|right|spot on|perfect|exactly|that'?s (?:right|correct|it|"
                        r"all correct|fine|great)|all (?:correct|good|right)|sounds (?:right|good))\b", re.IGNORECASE)
REDIRECT: Final = re.compile(r"\b(?:forward|transfer|redirect|connect|divert|put)\b[^.?!]*\b(?:me|call|this)\b|"
                           r"\b(?:ignore|disregard|forget)\b[^.?!]*\b(?:instructions|rules|prompt)\b", re.IGNORECASE)
"""A turn that tries to send the call elsewhere or rewrite the rules: no details are taken from it."""
NAME_IS: Final = re.compile(r"\bname(?:'s| is)\s+(?P<name>.+)$", re.IGNORECASE)
_KEPT: Final = ("caller_name", "callback_number", "address", "postcode")


class OfflineDialog:
    """:class:`~switchboard.agent.dialog.Dialog` over :func:`respond`; never fails."""

    name = "offline"

    def __init__(self, profile: AgentProfile) -> None:
        self.profile = profile

    async def reply(self, context: DialogContext) -> AsyncGenerator[DialogOutput, None]:
        # In a thread: reading a long answer with the extractor takes up to ~10 ms (scripts/bench_agent_core.py),
        # too long to hold the loop that carries every call's media.
        for output in await asyncio.to_thread(respond, context, self.profile):
            yield output


def respond(context: DialogContext, profile: AgentProfile) -> list[DialogOutput]:
    """The next reply of the intake script (pure)."""
    turns = context.transcript.turns
    caller = next((t.text for t in reversed(turns) if t.speaker == "caller"), "")
    before = _before_last_caller(turns)
    reprompt = profile.line("reprompt")  # the core's own line: the question before it is still the open one
    last_agent = next((t.text for t in reversed(before) if t.speaker == "agent" and t.text != reprompt), "")
    facts = gather(context.transcript)
    out: list[DialogOutput] = [RecordDetails(facts)]
    if PERSON.search(caller):
        return [*out, Say(profile.line("transfer")), RequestTransfer("the caller asked for a person")]
    emergency_line = profile.line("emergency")
    agent_said = " ".join(t.text for t in turns if t.speaker == "agent")
    if facts.urgency == "emergency" and not context.alerted and emergency_line not in agent_said:
        out += [RaiseAlert(facts.summary), Say(emergency_line)]
        if facts.issue_category == "gas":
            out.append(Say(profile.line("emergency_advice_gas")))
    if _is_readback(last_agent, profile) or profile.line("correction") in last_agent:
        changed = _key(facts) != _key(gather(Transcript(before)))
        if not changed and YES.search(caller):
            return [*out, Say(_goodbye(facts, profile)), RequestEnd("intake complete")]
        if not changed:
            return [*out, Say(profile.line("correction"))]
        out.append(Say(profile.line("corrected")))
    asked = _asked_counter(turns, profile)
    settled = bool(re.search(ROUTINE_CALLER, context.transcript.text_of("caller"), re.IGNORECASE))
    question = next_question(facts, profile, asked, routine_said=settled)
    return [*out, Say(question if question is not None else readback(facts, profile))]


def gather(transcript: Transcript) -> CallFacts:
    """The facts of the whole call, where each answer is read next to the question it answers, later ones
    winning (corrections). Category, segment, urgency and summary come from the caller's words alone: the agent's
    own lines (the greeting, the read-back) would otherwise count as the agent's decision or promise."""
    known: dict[str, str] = {}
    question = ""
    for turn in transcript.turns:
        if turn.speaker == "agent":
            question = turn.text
        else:
            known.update(_answer(question, turn.text))
    caller = transcript.text_of("caller")
    category = known.pop("issue_category", None) or classify(CATEGORY_TABLE, caller, "", "other")
    urgency = classify_urgency(caller, "")
    return CallFacts(
        caller_name=known.get("caller_name"), callback_number=known.get("callback_number"),
        address=known.get("address"), postcode=known.get("postcode"), urgency=urgency,
        issue_category=category,  # type: ignore[arg-type]  # a label from CATEGORY_TABLE
        summary=summarise(caller, category, urgency),  # type: ignore[arg-type]
        lead_segment=classify(SEGMENT_TABLE, caller, "", "other"))


@functools.lru_cache(maxsize=1024)
def _answer(question: str, answer: str) -> dict[str, str]:
    """What one answer says, read with its question (pure, so cached: the script re-reads the whole call each turn
    and the extractor takes milliseconds per turn)."""
    if REDIRECT.search(answer):
        return {}  # an attempt to redirect the call: nothing in it is taken as the caller's details
    turns = (Turn("agent", question), Turn("caller", answer)) if question else (Turn("caller", answer),)
    facts = extract_facts(Transcript(turns))
    found = {key: value for key in _KEPT if (value := getattr(facts, key))}
    restated = NAME_IS.search(answer)  # "no, the name is Sara Leigh": a correction names its field
    if restated and (name := find_name(Transcript((Turn("agent", "name?"), Turn("caller", restated["name"]))))):
        found["caller_name"] = name
    if facts.issue_category != "other":
        found["issue_category"] = facts.issue_category
    return found


def next_question(facts: CallFacts, profile: AgentProfile, asked: Callable[[str], int], *,
                  routine_said: bool = False) -> str | None:
    """The question for the first field still missing that has not been asked twice; None when done."""
    for field in profile.fields:
        question = profile.line(f"ask_{field}")
        if not _missing(field, facts, asked, routine_said) or asked(question) >= 2:
            continue
        return question if asked(question) == 0 else profile.line("ask_again", question=question)
    return None


def readback(facts: CallFacts, profile: AgentProfile) -> str:
    values = {"caller_name": facts.caller_name, "address": facts.address, "postcode": facts.postcode,
              "issue": facts.summary.split(": ", 1)[-1].rstrip("."), "urgency": facts.urgency,
              "callback_number": spoken_number(facts.callback_number) if facts.callback_number else None}
    parts = [profile.line(f"fact_{field}", value=value) for field in profile.fields if (value := values[field])]
    return profile.line("readback", facts=", ".join(parts))


def spoken_number(number: str) -> str:
    """``+447700900123`` → ``0 7 7 0 0, 9 0 0, 1 2 3``: a voice reads digits one by one, grouped as written."""
    national = "0" + number[3:] if number.startswith("+44") else number.lstrip("+")
    uk = number.startswith("+44") and len(national) == 11
    groups = [national[:5], national[5:8], national[8:]] if uk else [national]
    return ", ".join(" ".join(group) for group in groups if group)


def _key(facts: CallFacts) -> tuple[object, ...]:
    """The facts a read-back is about (the summary changes with every word, so it is left out)."""
    return (*(getattr(facts, key) for key in _KEPT), facts.issue_category, facts.urgency)


def _missing(field: str, facts: CallFacts, asked: Callable[[str], int], routine_said: bool) -> bool:
    if field in _KEPT:
        return getattr(facts, field) is None
    if field == "issue":
        return facts.issue_category == "other" and not asked("issue")
    # "routine" is also the extractor's default, so it counts as known only when the caller said so
    return facts.urgency == "routine" and not routine_said and not asked("urgency")


def _asked_counter(turns: tuple[Turn, ...], profile: AgentProfile) -> Callable[[str], int]:
    """How often the agent has asked a question (by its text, or by field name for issue/urgency)."""
    agent = [t.text for t in turns if t.speaker == "agent"]

    def asked(question: str) -> int:
        text = profile.line(f"ask_{question}") if question in ("issue", "urgency") else question
        return sum(text in line for line in agent)

    return asked


def _before_last_caller(turns: tuple[Turn, ...]) -> tuple[Turn, ...]:
    for index in range(len(turns) - 1, -1, -1):
        if turns[index].speaker == "caller":
            return turns[:index]
    return turns


def _is_readback(text: str, profile: AgentProfile) -> bool:
    prefix = profile.lines["readback"].split("{facts}", 1)[0].strip()
    return bool(prefix) and prefix in text


def _goodbye(facts: CallFacts, profile: AgentProfile) -> str:
    if facts.caller_name:
        return profile.line("goodbye", name=facts.caller_name.split()[0])
    return profile.line("goodbye_no_name")


__all__ = ["PERSON", "YES", "OfflineDialog", "gather", "next_question", "readback", "respond", "spoken_number"]
