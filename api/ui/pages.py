"""How every console response is made: Jinja2 pages, the security headers, the signed-in
session and CSRF checks, and errors as pages rather than the API's JSON.

Every /ui route uses `ConsoleRoute`, which turns the refusals below, Relay's errors and a
store that does not answer into pages (or the redirect to sign-in) and sets the headers on
whatever the route answers."""

import json
import logging
from collections.abc import Callable, Coroutine
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from pydantic import ValidationError
from starlette.responses import HTMLResponse, RedirectResponse, Response

from api.deps import RuntimeDep
from api.params import FORM_MAX_BYTES, FORM_MAX_FIELDS
from api.params import read_form as capped_form
from api.services import sessions
from api.ui.explain import explain
from relay.core.errors import RelayError
from relay.destinations.registry import PLATFORMS
from relay.domain.models import Platform
from relay.runtime import Runtime
from relay.store.pool import STORE_ERRORS

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SIGN_IN = f"{sessions.PATH}/sign-in"
HOME = f"{sessions.PATH}/overview"
# No inline script or style anywhere: every script and stylesheet is a file under /ui/static.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    # Not no-referrer: with it a browser sends `Origin: null` on every form, and the
    # same-site check refuses them all (found by the browser test). same-origin names
    # this site to itself and nothing to any other.
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}


def _local_time(value: datetime | None) -> str:
    """A time already in the workspace's zone, as a person reads it."""
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else ""


def _amount(value: Decimal) -> str:
    """A payout as money is written: `12.5` and `12.500000` are `12.50`, `100` is `100.00`."""
    whole, _, fraction = format(value, "f").partition(".")
    return f"{whole}.{fraction.rstrip('0').ljust(2, '0')}"


def counted(count: int, noun: str, plural: str = "") -> str:
    """A count with its noun agreeing: `1 failed send`, `2 failed sends`, `0 failed
    sends`; `plural` for a noun that does not just take an s."""
    return f"{count} {noun if count == 1 else plural or noun + 's'}"


def platform_label(platform: Platform | str) -> str:
    """A platform as its own brand writes it (Meta, TikTok); an unknown one as stored."""
    try:
        return PLATFORMS[Platform(platform)].label
    except ValueError:
        return str(platform)


def _readable(body: str) -> str:
    """A logged request or response body, indented if it is JSON, else as it is."""
    try:
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    except ValueError:
        return body


templates = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.filters["local_time"] = _local_time
templates.filters["amount"] = _amount
templates.filters["readable"] = _readable
templates.filters["counted"] = counted
templates.globals["explain"] = explain
templates.globals["platform_label"] = platform_label


class SignInRequired(Exception):
    """No valid session: the browser is sent to sign in, then back to `next`."""

    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


class Refused(Exception):
    """A request the console refuses with a page (a missing CSRF token: 403)."""

    def __init__(self, status: int, message: str) -> None:
        self.status, self.message = status, message


def safe_next(value: str) -> str:
    """Where to go after signing in: a console path only, never another site."""
    parts = urlsplit(value)
    path_ok = parts.path == sessions.PATH or parts.path.startswith(sessions.PATH + "/")
    if parts.scheme or parts.netloc or not path_ok or value.startswith("//") or "\\" in value:
        return HOME
    return value


def sign_in_url(next_path: str) -> str:
    return f"{SIGN_IN}?next={quote(safe_next(next_path), safe='')}"


def field_errors(exc: ValidationError) -> dict[str, str]:
    """A form's refusal as each field's message, to show next to it."""
    return {str(e["loc"][0]): str(e["msg"]) for e in exc.errors() if e["loc"]}


def public_base(request: Request, runtime: Runtime) -> str:
    """Where networks and visitors reach Relay: RELAY_PUBLIC_URL if set, else the address
    this page was asked at (its scheme and host)."""
    return (runtime.settings.public_url or str(request.base_url)).rstrip("/")


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """A page; `session` (for the navigation and every form's CSRF field) if signed in."""
    context.setdefault("session", getattr(request.state, "console_session", None))
    context.setdefault("path", request.url.path)
    page = templates.get_template(template).render(**context)
    return HTMLResponse(page, status_code=status_code)


def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    return render(request, "error.html", status, status=status, message=message)


def _with_headers(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


class ConsoleRoute(APIRoute):
    """A /ui route: refusals and errors become pages, and every answer gets the headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                response = await handler(request)
            except SignInRequired as exc:
                response = RedirectResponse(sign_in_url(exc.next_path), status_code=303)
            except Refused as exc:
                response = error_page(request, exc.status, exc.message)
            except RelayError as exc:
                response = error_page(request, exc.status_code, exc.message)
            except RequestValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("path", "query"))
                response = error_page(request, 422, f"{where}: {first.get('msg')}")
            except STORE_ERRORS as exc:
                log.warning("%s %s: the store failed: %s", request.method, request.url.path, exc)
                message = f"the store did not answer ({type(exc).__name__}); retry later"
                response = error_page(request, 503, message)
            return _with_headers(response)

        return console_handler


def _next_path(request: Request) -> str:
    query = request.url.query
    return request.url.path + (f"?{query}" if query else "")


async def require_session(request: Request, runtime: RuntimeDep) -> sessions.Session:
    """The signed-in session, or the redirect to sign-in (303, with `next` back here)."""
    cookie = request.cookies.get(sessions.COOKIE, "")
    if not cookie:
        raise SignInRequired(_next_path(request) if request.method == "GET" else HOME)
    state = await sessions.session_state(runtime)
    found = state.read(runtime.keys, runtime.admin_token, cookie)
    if found is None:
        raise SignInRequired(_next_path(request) if request.method == "GET" else HOME)
    request.state.console_session = found
    return found


SessionDep = Annotated[sessions.Session, Depends(require_session)]


def _same_origin(request: Request, public_url: str | None) -> bool:
    """A browser names the page a form was sent from in `Origin`; it must be this site: the
    host the request names, or RELAY_PUBLIC_URL's (a proxy may not pass the Host on)."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    ours = {request.headers.get("host"), urlsplit(public_url or "").netloc or None}
    return urlsplit(origin).netloc in ours


async def read_form(
    request: Request,
    runtime: RuntimeDep,
    max_bytes: int = FORM_MAX_BYTES,
    max_fields: int = FORM_MAX_FIELDS,
) -> dict[str, str]:
    """The URL-encoded form (`api.params.read_form`: capped, one value per field, the first
    given); a form from another site is refused (403)."""
    if not _same_origin(request, runtime.settings.public_url):
        raise Refused(403, "this form was sent from another site")
    return await capped_form(request, max_bytes, max_fields)


async def checked_form(
    request: Request, runtime: RuntimeDep, session: SessionDep
) -> dict[str, str]:
    """A signed-in change: the form, whose `csrf` field must be the session's token (403)."""
    form = await read_form(request, runtime)
    if not sessions.csrf_matches(session, form.get("csrf", "")):
        raise Refused(403, "the form's CSRF token is missing or wrong: reload the page and retry")
    return form


FormDep = Annotated[dict[str, str], Depends(checked_form)]
