"""X-Twilio-Signature: rebuild the URL Twilio signed, then validate or sign with twilio's RequestValidator.

Twilio signs the URL *it* requested (scheme, host, port, path, exact query) plus, for form POSTs, every
parameter name and value in sorted order (protocols/twilio.md §b). Behind a proxy the app sees an internal
URL, so the signed URL is always rebuilt from the configured public base, never from ``request.url``.
The WebSocket upgrade is signed over the ``wss://`` URL with no parameters (protocols/twilio.md §c).
The HMAC itself is twilio's ``RequestValidator``; this module only decides *what* gets signed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from urllib.parse import SplitResult, urlsplit

from twilio.request_validator import RequestValidator

from switchboard.twilio.errors import PublicUrlError

Params = Mapping[str, str | Sequence[str]]

_WS_SCHEMES = {"https": "wss", "http": "ws"}
_DEFAULT_PORTS = {"https": 443, "wss": 443, "http": 80, "ws": 80}


class _MultiParams(dict[str, list[str]]):
    """Repeated form keys in the shape RequestValidator.get_values() reads (``getall``, as werkzeug)."""

    def getall(self, key: str) -> list[str]:
        return self[key]


def _multi(params: Params) -> _MultiParams:
    """Every value of every key; a multi-dict's ``getlist`` (Starlette FormData) keeps repeated keys."""
    getlist = getattr(params, "getlist", None)
    if callable(getlist):
        return _MultiParams({key: [str(v) for v in getlist(key)] for key in params})
    return _MultiParams({k: [v] if isinstance(v, str) else list(v) for k, v in params.items()})


def _split_base(base: str) -> SplitResult:
    parts = urlsplit(base)
    if parts.scheme not in _WS_SCHEMES or not parts.netloc:
        raise PublicUrlError(f"public base URL must be http(s)://host[/prefix], got {base!r}")
    if parts.query or parts.fragment:
        raise PublicUrlError(f"public base URL must not carry a query or fragment, got {base!r}")
    _port(parts, base)
    return parts


def _port(parts: SplitResult, url: str) -> int | None:
    try:
        return parts.port
    except ValueError as exc:
        raise PublicUrlError(f"bad port in {url!r}") from exc


def public_url(base: str, path: str, query: str = "") -> str:
    """The URL Twilio requested: public ``base`` (may hold a path prefix) + ``path`` + exact ``query``.

    Pass the path as received on the wire (``scope["raw_path"]`` if it can hold escapes) and the query
    string untouched: re-encoding either changes the signature.
    """
    parts = _split_base(base)
    full_path = parts.path.rstrip("/") + (path if path.startswith("/") else "/" + path)
    query = query.removeprefix("?")
    return f"{parts.scheme}://{parts.netloc}{full_path}" + (f"?{query}" if query else "")


def websocket_url(base: str, path: str) -> str:
    """The ``ws(s)://`` URL for a ``<Stream>`` and its handshake signature (https→wss, http→ws)."""
    url = public_url(base, path)
    scheme, rest = url.split("://", 1)
    return f"{_WS_SCHEMES[scheme]}://{rest}"


def validate_webhook(auth_token: str, url: str, params: Params, signature: str | None) -> bool:
    """True if ``signature`` is Twilio's for this public ``url`` and form ``params`` (repeated keys kept).

    RequestValidator also tries the URL with and without the default port; a scheme mismatch fails.
    A missing or empty signature or auth token never validates.
    """
    if not signature or not auth_token:
        return False
    return bool(RequestValidator(auth_token).validate(url, _multi(params), signature))


def _ws_candidates(ws_url: str) -> list[str]:
    """The handshake URL as written, with a trailing slash or without, with the default port or without.

    RequestValidator's own port variants assume port 80 for anything but https, so for ``wss`` the
    ``:443`` form is added here.
    """
    parts = urlsplit(ws_url)
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise PublicUrlError(f"WebSocket URL must be ws(s)://host/path, got {ws_url!r}")
    bare = parts.path.rstrip("/")
    netlocs = [parts.netloc]
    port = _port(parts, ws_url)
    if port is None:
        netlocs.append(f"{parts.netloc}:{_DEFAULT_PORTS[parts.scheme]}")
    elif port == _DEFAULT_PORTS[parts.scheme]:
        netlocs.append(parts.netloc.rsplit(":", 1)[0])
    return [parts._replace(netloc=netloc, path=path).geturl() for netloc in netlocs for path in (bare, bare + "/")]


def validate_websocket(auth_token: str, ws_url: str, signature: str | None) -> bool:
    """True if ``signature`` signs the Media Streams handshake URL ``ws_url`` (params ``{}``)."""
    candidates = _ws_candidates(ws_url)
    if not signature or not auth_token:
        return False
    validator = RequestValidator(auth_token)
    return any(bool(validator.validate(url, {}, signature)) for url in candidates)


def sign_webhook(auth_token: str, url: str, params: Params) -> str:
    """X-Twilio-Signature for a form POST to ``url``, as Twilio computes it (for the fake Twilio)."""
    return str(RequestValidator(auth_token).compute_signature(url, _multi(params)))


def sign_websocket(auth_token: str, ws_url: str) -> str:
    """X-Twilio-Signature for the Media Streams handshake to ``ws_url`` (for the fake Twilio)."""
    _ws_candidates(ws_url)  # same URL rules as validation
    return str(RequestValidator(auth_token).compute_signature(ws_url, {}))
