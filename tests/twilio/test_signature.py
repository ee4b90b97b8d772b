"""X-Twilio-Signature: the URL Twilio signed, the protocol note's test vectors, forgeries and variants."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData, UploadFile

from switchboard.twilio.errors import PublicUrlError, TwilioError
from switchboard.twilio.signature import (
    public_url,
    sign_webhook,
    sign_websocket,
    validate_webhook,
    validate_websocket,
    websocket_url,
)

TOKEN = "test_auth_token"
BASE = "https://switchboard.example.com"
VOICE_URL = BASE + "/twilio/voice"
PARAMS = {
    "CallSid": "CA" + "0" * 31 + "1",
    "From": "+15551230000",
    "To": "+15559870000",
    "CallStatus": "ringing",
}
VOICE_SIG = "Lwp6W3v4KageIT377zTEVT4YNY4="  # protocols/twilio.md §b
WS_URL = "wss://switchboard.example.com/twilio/media"
WS_SIG = "XF15Abjdqwai2EoUVgZ4SyDFFEQ="  # protocols/twilio.md §c


# --- the URL Twilio signed -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "path", "query", "url"),
    [
        (BASE, "/twilio/voice", "", VOICE_URL),
        (BASE + "/", "/twilio/voice", "", VOICE_URL),
        (BASE, "twilio/voice", "", VOICE_URL),
        ("https://edge.example.com/sb/", "/api/twilio/voice", "", "https://edge.example.com/sb/api/twilio/voice"),
        ("http://127.0.0.1:8000", "/api/twilio/status", "", "http://127.0.0.1:8000/api/twilio/status"),
        (BASE, "/v", "b=2&a=%20x+y", BASE + "/v?b=2&a=%20x+y"),
        (BASE, "/v", "?a=1", BASE + "/v?a=1"),
    ],
)
def test_public_url(base: str, path: str, query: str, url: str) -> None:
    assert public_url(base, path, query) == url


@pytest.mark.parametrize(
    "base",
    ["ftp://example.com", "example.com", "https://", "https://example.com?x=1", "https://e.com#f", "http://h:99999"],
)
def test_public_url_refuses_an_unusable_base(base: str) -> None:
    with pytest.raises(PublicUrlError) as info:
        public_url(base, "/x")
    assert isinstance(info.value, TwilioError) and isinstance(info.value, ValueError)


@pytest.mark.parametrize(
    ("base", "url"),
    [
        (BASE, "wss://switchboard.example.com/twilio/media"),
        ("http://127.0.0.1:8000/prefix", "ws://127.0.0.1:8000/prefix/twilio/media"),
    ],
)
def test_websocket_url(base: str, url: str) -> None:
    assert websocket_url(base, "/twilio/media") == url


# --- webhooks ------------------------------------------------------------------------------------------


def test_webhook_test_vector() -> None:
    assert sign_webhook(TOKEN, VOICE_URL, PARAMS) == VOICE_SIG
    assert validate_webhook(TOKEN, public_url(BASE, "/twilio/voice"), PARAMS, VOICE_SIG)


@pytest.mark.parametrize(
    ("token", "url", "params", "signature"),
    [
        ("other_token", VOICE_URL, PARAMS, VOICE_SIG),
        (TOKEN, VOICE_URL, {**PARAMS, "CallStatus": "completed"}, VOICE_SIG),
        (TOKEN, VOICE_URL, {**PARAMS, "CallStatus": "ringing "}, VOICE_SIG),  # values are never trimmed
        (TOKEN, VOICE_URL, {**PARAMS, "Extra": "1"}, VOICE_SIG),
        (TOKEN, VOICE_URL, {k: v for k, v in PARAMS.items() if k != "To"}, VOICE_SIG),
        (TOKEN, VOICE_URL + "/", PARAMS, VOICE_SIG),
        (TOKEN, VOICE_URL + "?x=1", PARAMS, VOICE_SIG),
        (TOKEN, VOICE_URL.replace("https", "http"), PARAMS, VOICE_SIG),
        (TOKEN, "https://attacker.example.com/twilio/voice", PARAMS, VOICE_SIG),
        (TOKEN, VOICE_URL, PARAMS, "Lwp6W3v4KageIT377zTEVT4YNY4"),
        (TOKEN, VOICE_URL, PARAMS, "AAAAforgedAAAAAAAAAAAAAAAAA="),
        (TOKEN, VOICE_URL, PARAMS, ""),
        (TOKEN, VOICE_URL, PARAMS, None),
        ("", VOICE_URL, PARAMS, sign_webhook("", VOICE_URL, PARAMS)),  # never validate against an empty key
    ],
    ids=[
        "token",
        "value",
        "untrimmed",
        "added",
        "removed",
        "slash",
        "query",
        "scheme",
        "host",
        "truncated",
        "forged",
        "empty",
        "missing",
        "empty-token",
    ],
)
def test_webhook_forgeries_fail(token: str, url: str, params: dict[str, str], signature: str | None) -> None:
    assert not validate_webhook(token, url, params, signature)


def test_signature_covers_the_query_string_exactly() -> None:
    url = public_url(BASE, "/api/twilio/status", "call=abc&n=1")
    signature = sign_webhook(TOKEN, url, PARAMS)
    assert validate_webhook(TOKEN, url, PARAMS, signature)
    assert not validate_webhook(TOKEN, public_url(BASE, "/api/twilio/status", "n=1&call=abc"), PARAMS, signature)


@pytest.mark.parametrize(
    ("signed", "validated"),
    [
        (VOICE_URL, "https://switchboard.example.com:443/twilio/voice"),
        ("https://switchboard.example.com:443/twilio/voice", VOICE_URL),
        ("http://sb.example.com/v", "http://sb.example.com:80/v"),
    ],
)
def test_webhook_default_port_variants_validate(signed: str, validated: str) -> None:
    assert validate_webhook(TOKEN, validated, PARAMS, sign_webhook(TOKEN, signed, PARAMS))


def test_webhook_non_default_port_is_part_of_the_url() -> None:
    signature = sign_webhook(TOKEN, "https://sb.example.com:8443/v", PARAMS)
    assert not validate_webhook(TOKEN, "https://sb.example.com/v", PARAMS, signature)
    assert not validate_webhook(TOKEN, "https://sb.example.com:9443/v", PARAMS, signature)


def test_library_also_accepts_the_url_without_any_port() -> None:
    """twilio's RequestValidator strips *any* port, not just the default one: a known, accepted leniency
    (the signature still binds scheme, host, path, query and every parameter)."""
    signature = sign_webhook(TOKEN, "https://sb.example.com/v", PARAMS)
    assert validate_webhook(TOKEN, "https://sb.example.com:8443/v", PARAMS, signature)
    assert validate_websocket(TOKEN, "wss://switchboard.example.com:8443/twilio/media", WS_SIG)


def test_repeated_keys_sign_every_value_in_sorted_order() -> None:
    events = ["ringing", "initiated", "completed"]
    params = {**PARAMS, "StatusCallbackEvent": events}
    signature = sign_webhook(TOKEN, VOICE_URL, params)
    assert signature != sign_webhook(TOKEN, VOICE_URL, {**PARAMS, "StatusCallbackEvent": "ringing"})
    assert validate_webhook(TOKEN, VOICE_URL, {**PARAMS, "StatusCallbackEvent": sorted(events)}, signature)
    assert validate_webhook(TOKEN, VOICE_URL, {**PARAMS, "StatusCallbackEvent": tuple(events)}, signature)
    assert not validate_webhook(TOKEN, VOICE_URL, {**PARAMS, "StatusCallbackEvent": events[:2]}, signature)
    assert not validate_webhook(TOKEN, VOICE_URL, {**PARAMS, "StatusCallbackEvent": events[-1]}, signature)


def test_starlette_form_keeps_repeated_keys() -> None:
    items: list[tuple[str, str | UploadFile]] = [*PARAMS.items()]
    items += [("StatusCallbackEvent", "initiated"), ("StatusCallbackEvent", "ringing")]
    form = FormData(items)
    expected = sign_webhook(TOKEN, VOICE_URL, {**PARAMS, "StatusCallbackEvent": ["initiated", "ringing"]})
    assert sign_webhook(TOKEN, VOICE_URL, form) == expected  # type: ignore[arg-type]
    assert validate_webhook(TOKEN, VOICE_URL, form, expected)  # type: ignore[arg-type]
    last_only = {key: str(value) for key, value in form.items()}  # what dict(form) would give
    assert not validate_webhook(TOKEN, VOICE_URL, last_only, expected)


# --- the Media Streams handshake -----------------------------------------------------------------------


def test_websocket_test_vector() -> None:
    assert sign_websocket(TOKEN, WS_URL) == WS_SIG
    assert validate_websocket(TOKEN, websocket_url(BASE, "/twilio/media"), WS_SIG)


def test_websocket_is_signed_over_wss_not_https() -> None:
    https_signature = sign_webhook(TOKEN, "https://switchboard.example.com/twilio/media", {})
    assert https_signature != WS_SIG
    assert not validate_websocket(TOKEN, WS_URL, https_signature)
    assert not validate_websocket(TOKEN, "ws://switchboard.example.com/twilio/media", WS_SIG)


@pytest.mark.parametrize(
    ("signed", "validated"),
    [
        (WS_URL, WS_URL + "/"),
        (WS_URL + "/", WS_URL),
        (WS_URL, "wss://switchboard.example.com:443/twilio/media"),
        ("wss://switchboard.example.com:443/twilio/media", WS_URL),
        ("wss://switchboard.example.com:443/twilio/media/", WS_URL),
        ("ws://127.0.0.1:8000/m", "ws://127.0.0.1:8000/m"),
        ("ws://localhost/m", "ws://localhost:80/m"),
        ("ws://localhost:80/m", "ws://localhost/m"),
    ],
)
def test_websocket_url_variants_validate(signed: str, validated: str) -> None:
    assert validate_websocket(TOKEN, validated, sign_websocket(TOKEN, signed))


@pytest.mark.parametrize(
    ("token", "url", "signature"),
    [
        ("other_token", WS_URL, WS_SIG),
        (TOKEN, "wss://switchboard.example.com/twilio/media-stream", WS_SIG),
        (TOKEN, "wss://other.example.com/twilio/media", WS_SIG),
        (TOKEN, WS_URL, "XF15Abjdqwai2EoUVgZ4SyDFFEQ"),
        (TOKEN, WS_URL, ""),
        (TOKEN, WS_URL, None),
        ("", WS_URL, sign_websocket("", WS_URL)),
    ],
)
def test_websocket_forgeries_fail(token: str, url: str, signature: str | None) -> None:
    assert not validate_websocket(token, url, signature)


@pytest.mark.parametrize("url", ["https://switchboard.example.com/twilio/media", "wss:///path", "wss://h:x/p"])
def test_websocket_functions_refuse_a_non_websocket_url(url: str) -> None:
    with pytest.raises(PublicUrlError):
        validate_websocket(TOKEN, url, WS_SIG)
    with pytest.raises(PublicUrlError):
        sign_websocket(TOKEN, url)
