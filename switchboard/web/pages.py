"""Dashboard pages: sign-in and sign-out, and the shells of the board, a call, the history and the leads.

Pages carry no call data: their scripts (``static/``) read it from the public REST and live APIs with the session
cookie, so anything the page shows a script with the token can get too. Forms work without JavaScript: sign-in
posts the token in the body (never in a URL) and is answered with the session cookie and a redirect.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any, Final
from urllib.parse import parse_qsl, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from switchboard.services import Services
from switchboard.store.errors import StoreUnavailable
from switchboard.twilio_ids import is_call_sid
from switchboard.web.auth import COOKIE, identify, same_origin
from switchboard.web.headers import WithSecurityHeaders, security_headers

HERE: Final = Path(__file__).resolve().parent
MAX_FORM: Final = 4096
PAGES: Final = {"/": ("board", "Live calls"), "/calls": ("history", "Call history"), "/leads": ("leads", "Leads")}

_templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                         auto_reload=False)


def _render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = _templates.get_template(template).render(path=request.url.path, **context)
    return HTMLResponse(html, status_code=status, headers=security_headers(request))


def _secure(request: Request) -> bool:
    services: Services = request.state.services
    return urlsplit(services.settings.public_url).scheme == "https" or request.url.scheme == "https"


async def _form(request: Request) -> dict[str, str] | None:
    """A small urlencoded form (the same hand parsing as Twilio's webhooks), or None if it is not one."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return None
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return None
    return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))


def _local_path(value: str | None) -> str:
    """Where to go after signing in: a path on this site only (no ``//host`` or scheme: no open redirect)."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def signin_page(request: Request) -> Response:
    return _render(request, "signin.html", next=_local_path(request.query_params.get("next")))


async def signin(request: Request) -> Response:
    services: Services = request.state.services
    form = await _form(request)
    if form is None or not same_origin(request, services.settings.public_url) or services.sessions is None:
        return _render(request, "signin.html", 400, error="Sign-in must come from this page.", next="/")
    token, goto = form.get("token", ""), _local_path(form.get("next"))
    if not hmac.compare_digest(token.encode(), services.settings.api_token.reveal().encode()):
        return _render(request, "signin.html", 401, error="That token is not right.", next=goto)
    try:
        cookie, _ = await services.sessions.open()
    except StoreUnavailable:
        return _render(request, "signin.html", 503, error="The database is unavailable; try again.", next=goto)
    response = RedirectResponse(goto, status_code=303, headers=security_headers(request))
    response.set_cookie(COOKIE, cookie, max_age=int(services.sessions.ttl.total_seconds()), path="/",
                        httponly=True, samesite="strict", secure=_secure(request))
    return response


async def signout(request: Request) -> Response:
    services: Services = request.state.services
    form = await _form(request) or {}
    caller = await identify(request, services)
    cookie = request.cookies.get(COOKIE)
    if caller is not None and caller.session is not None and cookie and services.sessions is not None:
        if not same_origin(request, services.settings.public_url) or not hmac.compare_digest(
                form.get("csrf", "").encode(), caller.session.csrf.encode()):
            return HTMLResponse("Sign-out must come from this site's page.", 403, headers=security_headers(request))
        await services.sessions.revoke(cookie)
    response = RedirectResponse("/signin", status_code=303, headers=security_headers(request))
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request))
    return response


async def _shell(request: Request, page: str, title: str, **context: Any) -> Response:
    services: Services = request.state.services
    caller = await identify(request, services)
    if caller is None or caller.session is None:
        return RedirectResponse(f"/signin?next={request.url.path}", status_code=303,
                                headers=security_headers(request))
    return _render(request, f"{page}.html", page=page, title=title, csrf=caller.session.csrf, **context)


async def page(request: Request) -> Response:
    name, title = PAGES[request.url.path]
    return await _shell(request, name, title)


async def call_page(request: Request) -> Response:
    sid = request.path_params["call_sid"]
    if not is_call_sid(sid):
        return HTMLResponse("No such call.", 404, headers=security_headers(request))
    return await _shell(request, "call", "Call", sid=sid)


def routes() -> list[BaseRoute]:
    static = WithSecurityHeaders(StaticFiles(directory=HERE / "static"))
    return [
        Route("/", page), Route("/calls", page), Route("/leads", page),
        Route("/calls/{call_sid}", call_page),
        Route("/signin", signin_page, methods=["GET"]),
        Route("/signin", signin, methods=["POST"]),
        Route("/signout", signout, methods=["POST"]),
        Mount("/static", app=static, name="static"),
    ]
