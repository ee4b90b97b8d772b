"""The OpenAI emulator's own rules: schema conformance of its answers, request validation, routing."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.emulators.openai_server import OpenAIEmulator, conform, validate_request

SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["name", "level", "count"],
    "properties": {"name": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                   "level": {"type": "string", "enum": ["low", "high"]}, "count": {"type": "integer"}}}


@pytest.mark.parametrize("value,expected", [
    ({"name": "Jo", "level": "high", "count": 3}, {"name": "Jo", "level": "high", "count": 3}),
    ({"name": 5, "level": "extreme", "extra": 1}, {"name": None, "level": "low", "count": 0}),
    (None, {"name": None, "level": "low", "count": 0}),
])
def test_conform_fits_any_value_to_the_schema(value: object, expected: dict[str, Any]) -> None:
    assert conform(value, SCHEMA) == expected


def _body(schema: dict[str, Any], **changes: Any) -> dict[str, Any]:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "caller: hi"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "X", "strict": True, "schema": schema}}}
    return body | changes


@pytest.mark.parametrize("body,param", [
    (_body(SCHEMA, model=None), "model"),
    (_body(SCHEMA, messages=[]), "messages"),
    (_body(SCHEMA, response_format={"type": "json_object"}), "response_format"),
    (_body(SCHEMA | {"properties": SCHEMA["properties"] | {"n": {"type": "string", "default": "x"}},
                     "required": [*SCHEMA["required"], "n"]}), "response_format"),
    (_body(SCHEMA | {"properties": SCHEMA["properties"] | {"sub": {"type": "object", "properties": {}}},
                     "required": [*SCHEMA["required"], "sub"]}), "response_format"),
])
def test_validation_names_the_bad_parameter(body: dict[str, Any], param: str) -> None:
    problem = validate_request(body)
    assert problem is not None and problem[0] == param
    assert validate_request(_body(SCHEMA)) is None


async def test_routing_and_auth() -> None:
    async with OpenAIEmulator(api_key="k") as emu, httpx.AsyncClient(base_url=emu.base_url) as http:
        no_key = await http.post("/chat/completions", json=_body(SCHEMA))
        unknown = await http.post("/embeddings", json={}, headers={"Authorization": "Bearer k"})
        free_text = await http.post("/chat/completions", headers={"Authorization": "Bearer k"},
                                    json=_body(SCHEMA, messages=[{"role": "user", "content": "not a transcript"}]))
    assert no_key.status_code == 401 and no_key.json()["error"]["code"] == "invalid_api_key"
    assert unknown.status_code == 404
    assert free_text.status_code == 200
    assert [r.path for r in emu.requests] == ["/v1/chat/completions", "/v1/embeddings", "/v1/chat/completions"]
