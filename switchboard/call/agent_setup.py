"""Seat an :class:`~switchboard.call.agent.AgentCall` in a call whose stream is the agent's (``<Connect><Stream>``
with ``mode=agent``): its profile, its own voice stream and dialog, and the socket's outgoing side."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from switchboard.agent.dialog import DialogStats
from switchboard.agent.turns import TurnTaker
from switchboard.call.agent import AgentCall, AgentHost, Wire
from switchboard.call.agent_runtime import AgentRuntime
from switchboard.tts.errors import VoiceError
from switchboard.twilio.media_stream import MediaStream, Start

log = logging.getLogger(__name__)


def is_agent_stream(start: Start) -> bool:
    return start.custom_parameters.get("mode") == "agent"


async def seat_agent(runtime: AgentRuntime, host: AgentHost, start: Start, parser: MediaStream,
                     send: Callable[[str], Awaitable[None]], close: Callable[[], Awaitable[None]],
                     call_url: str, fork: Callable[[], tuple[str, dict[str, str]]] | None = None,
                     ) -> AgentCall | None:
    """The call's agent, or None when no voice can be opened (the call is then recorded without it). ``fork``: where
    a transfer forks the operator leg (stream URL and parameters with a fresh token)."""
    profile = runtime.profile(start.custom_parameters.get("profile"))
    try:
        voice = await (await runtime.voice()).open()
    except VoiceError as exc:
        log.error("call %s: the agent has no voice (%s); recording the caller only", start.call_sid, exc)
        return None
    stats = DialogStats()
    wire = Wire(parser.media, parser.mark, parser.clear, send, close)
    return AgentCall(host, wire, voice, runtime.dialog(profile, stats), profile,
                     TurnTaker(profile.core_lines(), runtime.timing), calls=runtime.calls, alerter=runtime.alerter,
                     call_url=call_url, caller_id=runtime.caller_id, stats=stats, fork=fork)


__all__ = ["is_agent_stream", "seat_agent"]
