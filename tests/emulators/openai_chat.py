"""Streaming Chat Completions with tool calls, as the OpenAI emulator serves them (``"stream": true``).

Wire format (what the ``openai`` SDK's ``AsyncStream`` parses): ``text/event-stream`` with one ``data: {json}``
event per ``chat.completion.chunk``, ended by ``data: [DONE]``. The first chunk carries ``delta.role``; text comes
as ``delta.content`` pieces; each tool call comes as ``delta.tool_calls[{index, id, type, function: {name,
arguments: ""}}]`` followed by pieces of ``function.arguments``; the last choice chunk has ``finish_reason``
(``tool_calls`` when there are any, else ``stop``); with ``stream_options.include_usage`` a final chunk with empty
``choices`` carries ``usage`` (https://platform.openai.com/docs/api-reference/chat-streaming).

What the "model" says: the next :class:`ChatScript` queued on the emulator, else the offline intake script's answer
to the conversation in the messages (so whole dialogs run deterministically through the model path).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from switchboard.agent.dialog import DialogContext, Say
from switchboard.agent.intake import respond
from switchboard.agent.profile import load_profile
from switchboard.agent.tools import RaiseAlert, RecordDetails, RequestEnd, RequestTransfer
from switchboard.extract.schema import Transcript, Turn

MODEL = "gpt-4o-mini-2024-07-18"
PIECE_CHARS = 12  # characters of text per content delta, like a few tokens


@dataclass(frozen=True)
class ChatScript:
    """One scripted model answer: text and/or tool calls ``(name, arguments_json)``."""

    text: str | None = None
    tool_calls: tuple[tuple[str, str], ...] = field(default=())


def request_problem(body: Any) -> tuple[str | None, str] | None:
    """What the real API rejects in a streamed chat request with tools: ``(param, message)`` or None."""
    if not isinstance(body.get("model"), str):
        return "model", "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return "messages", "'messages' must be a non-empty array of objects"
    answered = {m.get("tool_call_id") for m in messages if m.get("role") == "tool"}
    for message in messages:
        for call in message.get("tool_calls") or ():
            if call.get("id") not in answered:
                return "messages", ("An assistant message with 'tool_calls' must be followed by tool messages "
                                    f"responding to each 'tool_call_id'. Missing: {call.get('id')}")
    for tool in body.get("tools") or ():
        function = tool.get("function", {}) if isinstance(tool, dict) else {}
        if tool.get("type") != "function" or not isinstance(function.get("name"), str):
            return "tools", "Invalid tool: expected type 'function' with a name"
    return None


def default_answer(messages: list[dict[str, Any]]) -> ChatScript:
    """The offline intake script's reply to the conversation in ``messages``, as text plus tool calls."""
    if messages and messages[-1].get("role") == "tool":
        return ChatScript(text=None)  # a second round after tool results: nothing more to add
    turns = tuple(Turn("caller" if m["role"] == "user" else "agent", str(m.get("content") or ""))
                  for m in messages if m.get("role") in ("user", "assistant") and m.get("content"))
    outputs = respond(DialogContext(Transcript(turns)), load_profile())
    calls: list[tuple[str, str]] = []
    for output in outputs:
        match output:
            case RecordDetails(facts=facts):
                calls.append(("record_details", facts.model_dump_json()))
            case RaiseAlert(summary=summary):
                calls.append(("send_emergency_alert", json.dumps({"summary": summary})))
            case RequestTransfer(reason=reason):
                calls.append(("transfer_to_operator", json.dumps({"reason": reason})))
            case RequestEnd(reason=reason):
                calls.append(("end_call", json.dumps({"reason": reason})))
    text = " ".join(o.text for o in outputs if isinstance(o, Say))
    return ChatScript(text=text or None, tool_calls=tuple(calls))


def sse_events(script: ChatScript, body: dict[str, Any], ids: str) -> list[bytes]:
    """The answer as SSE ``data:`` events, one per chunk, ``[DONE]`` last."""
    created = int(time.time())

    def chunk(delta: dict[str, Any] | None, finish: str | None = None, usage: Any = None) -> bytes:
        payload: dict[str, Any] = {
            "id": f"chatcmpl-emu{ids}", "object": "chat.completion.chunk", "created": created, "model": MODEL,
            "system_fingerprint": "fp_emulator", "service_tier": "default",
            "choices": [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None,
                                                  "finish_reason": finish}]}
        if usage is not None:
            payload["usage"] = usage
        return b"data: " + json.dumps(payload).encode() + b"\n\n"

    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    text = script.text or ""
    events += [chunk({"content": text[i:i + PIECE_CHARS]}) for i in range(0, len(text), PIECE_CHARS)]
    for index, (name, arguments) in enumerate(script.tool_calls):
        events.append(chunk({"tool_calls": [{"index": index, "id": f"call_emu{ids}_{index}", "type": "function",
                                             "function": {"name": name, "arguments": ""}}]}))
        events += [chunk({"tool_calls": [{"index": index, "function": {"arguments": arguments[i:i + 40]}}]})
                   for i in range(0, len(arguments), 40)]
    events.append(chunk({}, "tool_calls" if script.tool_calls else "stop"))
    if (body.get("stream_options") or {}).get("include_usage"):
        prompt = sum(len(str(m.get("content") or "")) for m in body["messages"]) // 4
        completion = (len(text) + sum(len(a) for _, a in script.tool_calls)) // 4
        events.append(chunk(None, usage={"prompt_tokens": prompt, "completion_tokens": completion,
                                         "total_tokens": prompt + completion,
                                         "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                                         "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0}}))
    return [*events, b"data: [DONE]\n\n"]


__all__ = ["MODEL", "ChatScript", "default_answer", "request_problem", "sse_events"]
