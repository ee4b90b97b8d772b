"""Is the caller talking over the agent, or is it the agent's own echo? (pure functions)

On a speaker-phone the caller track carries the agent's voice back, typically about 20 dB down. A VAD cannot
tell the two apart, so while the agent is audible speech alone never interrupts it. It takes either:

- **words**: ``interrupt_min_words`` recognised words that are not in the agent's text around what is playing
  (the recogniser hears the echo as the agent's own words, give or take a letter, so words are matched loosely)
  and not backchannels ("yeah", "mm", "okay": a listener's signals, not a bid for the turn), or a single such
  word that is a stop word ("stop", "wait", "no"); or
- **level**: speech lasting ``interrupt_min_speech_ms`` whose level is at least the agent's output level minus
  ``echo_margin_db``: far louder than the echo can be. Without levels this rule is off and words decide.

The recogniser's result for the echo of the agent's last words can arrive after the turn has ended; for
``echo_tail_ms`` after it, a transcript made only of the agent's words (:func:`is_echo`) is dropped too.
"""

from __future__ import annotations

import difflib
import re
from typing import Final

from switchboard.agent.timing import TurnTiming

BACKCHANNELS: Final = frozenset({
    "yeah", "yes", "yep", "yup", "ok", "okay", "mm", "mhm", "mmhmm", "hmm", "hm", "uh-huh", "uhhuh", "right",
    "sure", "aha", "ah", "oh", "um", "uh", "erm", "er", "alright", "cool", "fine", "lovely", "great", "i", "see",
    "got", "it", "cheers", "thanks",
})
STOP_WORDS: Final = frozenset({"stop", "wait", "hold", "no", "sorry", "hang", "excuse", "actually", "pardon"})
_WORD: Final = re.compile(r"[a-z0-9]+(?:['’-][a-z0-9]+)*")


def words(text: str) -> list[str]:
    """Lower-case words, apostrophes and hyphens kept inside a word."""
    return _WORD.findall(text.lower())


def own_words(heard: str, agent_text: str) -> list[str]:
    """The words of ``heard`` that are neither the agent's (loosely matched) nor backchannels."""
    vocabulary = set(words(agent_text))
    own: list[str] = []
    for word in words(heard):
        if word in vocabulary or word in BACKCHANNELS:
            continue
        if len(word) > 3 and difflib.get_close_matches(word, vocabulary, n=1, cutoff=0.8):
            continue  # "boiler" heard as "boilers": still the echo
        own.append(word)
    return own


def is_echo(heard: str, agent_text: str) -> bool:
    """Two or more words, and every one of them the agent's own (backchannels aside): the tail of the agent's echo,
    transcribed after its turn ended. A bare "yes" is never echo: it is the usual answer to a question."""
    content = [word for word in words(heard) if word not in BACKCHANNELS]
    return len(content) >= 2 and not own_words(heard, agent_text)


def words_interrupt(heard: str, agent_text: str, timing: TurnTiming) -> bool:
    """The transcript rule: enough words of the caller's own, or one stop word."""
    own = own_words(heard, agent_text)
    return len(own) >= timing.interrupt_min_words or any(word in STOP_WORDS for word in own)


def loud_enough(caller_db: float | None, agent_db: float | None, timing: TurnTiming) -> bool:
    """The level rule: the caller's speech is louder than the agent's echo could be."""
    if caller_db is None or agent_db is None:
        return False
    return caller_db >= agent_db - timing.echo_margin_db


def echo_window(text: str, played_chars: int, sent_chars: int, timing: TurnTiming) -> str:
    """The agent's text the echo can be repeating: from a little before what was heard to what was sent."""
    start = max(0, played_chars - timing.echo_window_chars // 2)
    return text[start:max(sent_chars, played_chars) + timing.echo_window_chars // 2]


__all__ = [
    "BACKCHANNELS", "STOP_WORDS", "echo_window", "is_echo", "loud_enough", "own_words", "words", "words_interrupt",
]
