"""An OpenAI Chat Completions emulator on loopback, for the real ``openai`` SDK as client.

A small HTTP/1.1 server on plain asyncio streams (so a test can reset a connection or cut a body, which an ASGI
app cannot): ``POST /v1/chat/completions`` with a bearer check, the structured-output request validation the real
API does for strict schemas, and an answer derived from the offline extractor over the prompt's transcript (or
scripted), made to conform to the schema the client sent. ``"stream": true`` requests (the voice agent's chat
with tools) get a streamed answer instead (:mod:`tests.emulators.openai_chat`). Faults are injected for the next N
requests or for all of them (``times=None``). Every request is logged in :attr:`OpenAIEmulator.requests`.

The wire shapes follow https://platform.openai.com/docs/api-reference/chat.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from switchboard.extract.errors import InvalidTranscript
from switchboard.extract.offline import extract_facts
from switchboard.extract.schema import Transcript, Turn
from tests.emulators.http_loopback import LoopbackHttpServer, Response
from tests.emulators.openai_chat import ChatScript, default_answer, request_problem, sse_events

MODEL = "gpt-4o-mini-2024-07-18"
_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            411: "Length Required", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}
_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "invalid_request_error",
                429: "requests", 500: "server_error", 503: "server_error"}


_STREAMING_FAULTS = frozenset({"slow_first_token", "drop_mid_stream", "malformed_tool_arguments"})


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour; build with the class methods."""

    kind: str
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    delay_s: float = 0.0

    @classmethod
    def http(cls, status: int, *, retry_after_ms: int | None = None, should_retry: bool | None = None) -> Fault:
        headers = [] if retry_after_ms is None else [("retry-after-ms", str(retry_after_ms))]
        if should_retry is not None:
            headers.append(("x-should-retry", "true" if should_retry else "false"))
        return cls("status", status, tuple(headers))

    @classmethod
    def slow(cls, delay_s: float) -> Fault:
        """Answer normally, but only after ``delay_s`` (beyond the client timeout to test timeouts)."""
        return cls("slow", delay_s=delay_s)

    @classmethod
    def first_token_delay(cls, delay_s: float) -> Fault:
        """Streamed answers: send the response head at once, but the first chunk only after ``delay_s``."""
        return cls("slow_first_token", delay_s=delay_s)

    @classmethod
    def named(cls, kind: str) -> Fault:
        """``reset`` (TCP RST, no response), ``refusal``, ``length`` (truncated JSON content),
        ``content_filter``, ``schema_violation``, ``empty_body`` (``{}``), ``truncated_body`` (cut JSON),
        ``drop_mid_stream`` (streamed answers: the connection is reset after the first text),
        ``malformed_tool_arguments`` (streamed answers: every tool call's arguments cut in half, not JSON; a
        ``record_details`` call with a cut object when the answer had none)."""
        assert kind in {"reset", "refusal", "length", "content_filter", "schema_violation", "empty_body",
                        "truncated_body", "drop_mid_stream", "malformed_tool_arguments"}, kind
        return cls(kind)


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    fault: str | None = None
    status: int | None = None

    @property
    def retry_count(self) -> int:
        return int(self.headers.get("x-stainless-retry-count", "0"))


_Response = Response


class OpenAIEmulator(LoopbackHttpServer[Fault, RecordedRequest]):
    """``async with OpenAIEmulator() as emu: AsyncOpenAI(base_url=emu.base_url, api_key=emu.api_key)``."""

    reasons = _REASONS

    def __init__(self, host: str = "127.0.0.1", port: int = 0, api_key: str = "test-key") -> None:
        super().__init__(host, port)
        self.api_key = api_key
        self.scripted: dict[str, Any] | None = None
        self.chat_script: list[ChatScript] = []
        """Streamed chat answers to give, in order; when empty the offline intake script answers."""

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def clear(self) -> None:
        super().clear()
        self.scripted = None
        self.chat_script.clear()

    def _refuse(self, method: str, headers: dict[str, str]) -> _Response | None:
        return None if "content-length" in headers else _error(411, "Content-Length required")

    def _record(self, method: str, target: str, headers: dict[str, str], raw: bytes) -> RecordedRequest:
        try:
            body: Any = json.loads(raw) if raw else None
        except json.JSONDecodeError:
            body = None
        return RecordedRequest(method, target.split("?")[0], headers, body)

    def _headers(self, response: _Response) -> list[str]:
        if response.chunks is not None:
            return ["content-type: text/event-stream; charset=utf-8", "transfer-encoding: chunked",
                    f"x-request-id: req_emu{next(self._ids)}", "openai-processing-ms: 1"]
        return ["content-type: application/json", f"content-length: {len(response.body)}",
                f"x-request-id: req_emu{next(self._ids)}", "openai-processing-ms: 1",
                "x-ratelimit-limit-requests: 10000", "x-ratelimit-remaining-requests: 9999"]

    def _applies(self, fault: Fault, request: RecordedRequest) -> bool:
        """A streaming fault waits for a streamed request (the agent's chat), so the server's extraction requests
        to the same emulator do not take it."""
        streamed = isinstance(request.body, dict) and request.body.get("stream") is True
        return streamed or fault.kind not in _STREAMING_FAULTS

    def _respond(self, request: RecordedRequest, fault: Fault | None) -> _Response:
        if request.path != "/v1/chat/completions":
            return _error(404, f"Unknown request URL: {request.method} {request.path}", code="unknown_url")
        if request.method != "POST":
            return _error(405, "Method not allowed")
        if request.headers.get("authorization") != f"Bearer {self.api_key}" or (fault and fault.status == 401):
            return _error(401, "Incorrect API key provided: sk-****. You can find your API key at "
                               "https://platform.openai.com/account/api-keys.", code="invalid_api_key")
        if fault is not None and fault.kind == "status":
            message = {429: "Rate limit reached for gpt-4o-mini", 400: "Invalid request"}.get(
                fault.status, "The server had an error while processing your request")
            code = "rate_limit_exceeded" if fault.status == 429 else None
            response = _error(fault.status, message, code=code)
            response.headers.extend(fault.headers)
            return response
        if isinstance(request.body, dict) and request.body.get("stream") is True:
            return self._streamed(request.body, fault)
        problem = validate_request(request.body)
        if problem is not None:
            return _error(400, problem[1], param=problem[0])
        return self._completion(request.body, fault)

    def _streamed(self, body: dict[str, Any], fault: Fault | None) -> _Response:
        """A streamed chat answer (see :mod:`tests.emulators.openai_chat`), with the streaming faults."""
        problem = request_problem(body) or _strict_tools_problem(body)
        if problem is not None:
            return _error(400, problem[1], param=problem[0])
        asked = time.monotonic()
        script = self.chat_script.pop(0) if self.chat_script else default_answer(body["messages"])
        kind = fault.kind if fault else None
        if kind == "malformed_tool_arguments":
            calls = tuple((name, args[:len(args) // 2]) for name, args in script.tool_calls)
            script = ChatScript(script.text, calls or (("record_details", '{"caller_name": "'),))
        events = sse_events(script, body, str(next(self._ids)))
        # The first token comes delay_s after the request, whatever composing the answer took here.
        first = max(1e-3, fault.delay_s - (time.monotonic() - asked)) if fault and kind == "slow_first_token" else 0.0
        chunks = [(first if i == 1 else 0.0, e) for i, e in enumerate(events)]
        if kind == "drop_mid_stream":
            return _Response(200, b"", chunks=chunks[:3], cut=True)
        return _Response(200, b"", chunks=chunks)

    def _completion(self, body: dict[str, Any], fault: Fault | None) -> _Response:
        schema = body["response_format"]["json_schema"]["schema"]
        content: str | None = json.dumps(self.scripted if self.scripted is not None else conform(
            extract_facts(_transcript(body["messages"])).model_dump(), schema))
        refusal, finish = None, "stop"
        kind = fault.kind if fault else None
        if kind == "empty_body":
            return _Response(200, b"{}")
        if kind == "refusal":
            content, refusal = None, "I'm sorry, I can't help with that."
        elif kind == "length":
            content, finish = (content or "")[: len(content or "") // 2], "length"
        elif kind == "content_filter":
            finish = "content_filter"
        elif kind == "schema_violation":
            content = json.dumps({"caller_name": 42, "urgency": "catastrophic"})
        prompt_chars = sum(len(str(m.get("content", ""))) for m in body["messages"])
        completion = {
            "id": f"chatcmpl-emu{next(self._ids)}", "object": "chat.completion", "created": int(time.time()),
            "model": MODEL,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, "refusal": refusal,
                                                 "annotations": []}, "logprobs": None, "finish_reason": finish}],
            "usage": {"prompt_tokens": prompt_chars // 4, "completion_tokens": len(content or "") // 4,
                      "total_tokens": (prompt_chars + len(content or "")) // 4},
            "service_tier": "default", "system_fingerprint": "fp_emulator",
        }
        encoded = json.dumps(completion).encode()
        return _Response(200, encoded[: len(encoded) // 2] if kind == "truncated_body" else encoded)


def validate_request(body: Any) -> tuple[str | None, str] | None:
    """What the real API rejects for a strict structured-output request: ``(param, message)`` or None."""
    if not isinstance(body, dict):
        return None, "We could not parse the JSON body of your request."
    if not isinstance(body.get("model"), str):
        return "model", "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        return "messages", "'messages' must be a non-empty array of objects"
    fmt = body.get("response_format")
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("json_schema"), dict):
        return "response_format", "response_format must be of type 'json_schema'"
    spec = fmt["json_schema"]
    if spec.get("strict") is not True or not isinstance(spec.get("name"), str):
        return "response_format", "json_schema must have a name and strict: true"
    problem = _strict_problem(spec.get("schema"), "schema")
    return None if problem is None else ("response_format", f"Invalid schema for response_format: {problem}")


def _strict_problem(schema: Any, where: str) -> str | None:
    """Strict-mode rules: objects close with additionalProperties false and require every property."""
    if not isinstance(schema, dict):
        return f"{where} must be an object"
    if "default" in schema:
        return f"{where}: 'default' is not permitted"
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return f"{where}: 'additionalProperties' is required to be supplied and to be false"
        props = schema.get("properties", {})
        if sorted(schema.get("required", [])) != sorted(props):
            return f"{where}: 'required' is required to be supplied and to be an array including every key"
    children = [(f"{where}.{k}", v) for k, v in schema.get("properties", {}).items()]
    children += [(f"{where}.anyOf[{i}]", v) for i, v in enumerate(schema.get("anyOf", []))]
    children += [(f"{where}.$defs.{k}", v) for k, v in schema.get("$defs", {}).items()]
    for child_where, child in children:
        problem = _strict_problem(child, child_where)
        if problem is not None:
            return problem
    return None


def _strict_tools_problem(body: dict[str, Any]) -> tuple[str | None, str] | None:
    """Strict function schemas follow the same rules as strict response formats."""
    for index, tool in enumerate(body.get("tools") or ()):
        function = tool.get("function", {})
        problem = _strict_problem(function.get("parameters"), "parameters") if function.get("strict") else None
        if problem is not None:
            return (f"tools[{index}].function.parameters",
                    f"Invalid schema for function '{function.get('name')}': {problem}")
    return None


def conform(value: Any, schema: dict[str, Any]) -> Any:
    """``value`` if it fits ``schema`` (a strict-mode subset: object, anyOf, type, enum), else the simplest
    value that does (null, the first enum value, an empty string or zero)."""
    if "anyOf" in schema:
        options = schema["anyOf"]
        fitting = [o for o in options if conform(value, o) == value and _fits_type(value, o)]
        return value if fitting else conform(None, next((o for o in options if o.get("type") == "null"),
                                                        options[0]))
    if schema.get("type") == "object":
        given = value if isinstance(value, dict) else {}
        return {k: conform(given.get(k), sub) for k, sub in schema.get("properties", {}).items()}
    if "enum" in schema:
        return value if value in schema["enum"] else schema["enum"][0]
    if _fits_type(value, schema):
        return value
    return {"null": None, "string": "", "integer": 0, "number": 0, "boolean": False, "array": []}.get(
        schema.get("type", "null"))


_KINDS: dict[str, type | tuple[type, ...]] = {"null": type(None), "string": str, "integer": int,
                                              "number": (int, float), "boolean": bool, "array": list, "object": dict}


def _fits_type(value: Any, schema: dict[str, Any]) -> bool:
    expected = schema.get("type")
    return expected is None or isinstance(value, _KINDS.get(expected, object))


def _transcript(messages: list[dict[str, Any]]) -> Transcript:
    """The last user message as a transcript; free text counts as caller speech."""
    text = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
    try:
        return Transcript.from_text(text)
    except InvalidTranscript:
        return Transcript((Turn("caller", text),))


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> _Response:
    error = {"message": message, "type": _ERROR_TYPES.get(status, "invalid_request_error"), "param": param,
             "code": code}
    return _Response(status, json.dumps({"error": error}).encode())


__all__ = ["MODEL", "ChatScript", "Fault", "OpenAIEmulator", "RecordedRequest", "conform", "validate_request"]
