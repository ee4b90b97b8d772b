"""The model's dialog: ``gpt-4o-mini`` through the ``openai`` SDK, streamed, with the agent's tools. A thin async
layer: building the request and reading the stream happen here; what a tool call may do is decided in
:mod:`.tools`, and when the model may be trusted to answer in :mod:`.fallback_dialog`.

Each reply is one request built from the conversation as heard (so an interrupted turn is only what the caller
heard), the profile's instructions, and the facts recorded so far. If the model answers with tool calls and no
words, their results go back in a second round for the words (at most ``max_rounds``). Every SDK or stream error
is translated once, here, into :class:`~.dialog.DialogError` with a short reason.
Streaming wire format: https://platform.openai.com/docs/api-reference/chat-streaming
"""

from __future__ import annotations

import json
from collections.abc import AsyncGenerator, Iterable
from dataclasses import dataclass, field
from typing import Any, cast

import openai
from openai import AsyncOpenAI
from openai.types.chat.chat_completion_chunk import ChoiceDeltaToolCall

from switchboard.agent.dialog import DialogContext, DialogError, DialogOutput, DialogStats, Say
from switchboard.agent.profile import AgentProfile
from switchboard.agent.tools import ToolRejected, parse_tool_call, tool_specs
from switchboard.agent.usage import ModelUsage

DEFAULT_BASE_URL = "https://api.openai.com/v1"


@dataclass
class _Call:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class _Round:
    """One streamed answer: tool calls gathered by index, and whether it ended properly."""

    calls: dict[int, _Call] = field(default_factory=dict)
    finished: str | None = None
    said: bool = False


class OpenAIDialog:
    """:class:`~.dialog.Dialog` on the model; raises :class:`DialogError` when it cannot reply."""

    name = "openai"

    def __init__(self, client: AsyncOpenAI, profile: AgentProfile, *, stats: DialogStats | None = None,
                 max_rounds: int = 2) -> None:
        self._client, self._profile = client, profile
        self.stats = stats if stats is not None else DialogStats()
        self._max_rounds = max_rounds
        self._tools = tool_specs(profile)
        self._owns_client = False

    @classmethod
    def connect(cls, api_key: str, profile: AgentProfile, *, base_url: str | None = None, timeout_s: float = 10,
                max_retries: int = 1, stats: DialogStats | None = None) -> OpenAIDialog:
        """With its own client (the SDK retries connection errors, 429 and 5xx ``max_retries`` times; the first
        token deadline of :class:`~.fallback_dialog.FallbackDialog` bounds the wait for a spoken turn)."""
        client = AsyncOpenAI(api_key=api_key, base_url=base_url or DEFAULT_BASE_URL, timeout=timeout_s,
                             max_retries=max_retries)
        dialog = cls(client, profile, stats=stats)
        dialog._owns_client = True
        return dialog

    async def aclose(self) -> None:
        """Close the client if this dialog made it (one client serves every call; the app owns it)."""
        if self._owns_client:
            await self._client.close()

    async def __aenter__(self) -> OpenAIDialog:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def reply(self, context: DialogContext) -> AsyncGenerator[DialogOutput, None]:
        messages = build_messages(context, self._profile)
        for _ in range(self._max_rounds):
            answer = _Round()
            async for text in self._stream(messages, answer):
                yield Say(text)
            results: list[dict[str, Any]] = []
            for call in answer.calls.values():
                try:
                    yield parse_tool_call(call.name, "".join(call.arguments))
                    results.append(_tool_result(call, "done"))
                except ToolRejected as exc:
                    self.stats.rejected_tools.append(str(exc))
                    if exc.malformed:  # the model's output is broken, not merely refused: stop trusting it
                        raise DialogError("malformed_tool_arguments", str(exc)) from exc
                    results.append(_tool_result(call, f"refused: {exc.reason}"))
            if answer.said or not answer.calls:
                self.stats.model_replies += 1
                return
            messages += [_assistant_calls(answer), *results]
        self.stats.model_replies += 1

    async def _stream(self, messages: list[dict[str, Any]], answer: _Round) -> AsyncGenerator[str, None]:
        try:
            stream = await self._client.chat.completions.create(
                model=self._profile.model, messages=cast(Any, messages), tools=cast(Any, self._tools), stream=True,
                stream_options={"include_usage": True}, temperature=self._profile.temperature,
                max_completion_tokens=self._profile.max_tokens)
        except openai.OpenAIError as exc:
            raise _translate(exc) from exc
        try:
            async with stream:
                async for chunk in stream:
                    if chunk.usage is not None:
                        self.stats.usage.append(_usage(chunk.model or self._profile.model, chunk.usage))
                    for choice in chunk.choices:
                        if choice.delta.content:
                            answer.said = True
                            yield choice.delta.content
                        _gather_calls(answer, choice.delta.tool_calls or ())
                        answer.finished = choice.finish_reason or answer.finished
        except (openai.OpenAIError, json.JSONDecodeError) as exc:  # the SDK wraps a broken socket as APIError
            raise DialogError("dropped", f"the stream broke: {exc!r}") from exc
        if answer.finished is None:
            raise DialogError("dropped", "the stream ended without a finish reason")
        if answer.finished == "content_filter":
            raise DialogError("content_filter", "the answer was filtered")


def _translate(exc: openai.OpenAIError) -> DialogError:
    if isinstance(exc, openai.AuthenticationError):
        return DialogError("auth", exc.message)
    if isinstance(exc, openai.APIStatusError):
        return DialogError(f"status_{exc.status_code}", exc.message)
    if isinstance(exc, openai.APITimeoutError):
        return DialogError("timeout", str(exc))
    return DialogError("connection", str(exc))


def _gather_calls(answer: _Round, pieces: Iterable[ChoiceDeltaToolCall]) -> None:
    """Tool calls arrive in pieces keyed by index: the first has the id and name, the rest argument text."""
    for piece in pieces:
        call = answer.calls.setdefault(piece.index, _Call())
        call.id = piece.id or call.id
        if piece.function is not None:
            call.name = piece.function.name or call.name
            call.arguments.append(piece.function.arguments or "")


def build_messages(context: DialogContext, profile: AgentProfile) -> list[dict[str, Any]]:
    """The request's messages: instructions (with the facts so far), then the conversation as heard."""
    system = profile.system_prompt()
    if context.facts is not None:
        system += "\n\n" + profile.note("facts_note", facts=context.facts.model_dump_json())
    if context.alerted:
        system += "\n\n" + profile.note("alerted_note")
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    messages += [{"role": "user" if turn.speaker == "caller" else "assistant", "content": turn.text}
                 for turn in context.transcript.turns if turn.text.strip()]
    return messages


def _assistant_calls(answer: _Round) -> dict[str, Any]:
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": call.id, "type": "function", "function": {"name": call.name, "arguments": "".join(call.arguments)}}
        for call in answer.calls.values()]}


def _tool_result(call: _Call, result: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call.id, "content": result}


def _usage(model: str, usage: Any) -> ModelUsage:
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", 0) or 0
    return ModelUsage(model, usage.prompt_tokens, usage.completion_tokens, cached)


__all__ = ["OpenAIDialog", "build_messages"]
