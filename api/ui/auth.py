"""Signing in to the console with the admin token, signing out, and its static files."""

import logging

from fastapi import APIRouter, Depends, Request
from starlette.responses import RedirectResponse, Response

from api.deps import RuntimeDep, admin_refusal, failed_credential
from api.params import SIGN_IN_MAX_BYTES, SIGN_IN_MAX_FIELDS
from api.services import sessions
from api.services.sessions import end_every_session, end_session, secure_cookie, session_state
from api.ui.pages import (
    HERE,
    HOME,
    SIGN_IN,
    ConsoleRoute,
    Refused,
    SessionDep,
    checked_form,
    read_form,
    render,
    safe_next,
)
from relay.core.errors import Unauthorized
from relay.core.rate_limit import TooManyFailures
from relay.runtime import Runtime

router = APIRouter(route_class=ConsoleRoute)
log = logging.getLogger(__name__)

# Served by name from this fixed set only, read once.
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
_STATIC = {
    path.name: (path.read_bytes(), _STATIC_TYPES[path.suffix])
    for path in (HERE / "static").iterdir()
    if path.suffix in _STATIC_TYPES
}


@router.get("")
async def console_home() -> RedirectResponse:
    return RedirectResponse(HOME, status_code=303)


@router.get("/sign-in")
async def sign_in_form(request: Request, next: str = HOME, everywhere: str = "") -> Response:
    notice = "Every session was signed out, in every browser." if everywhere == "1" else ""
    return render(request, "sign_in.html", next=safe_next(next), error="", notice=notice)


@router.post("/sign-in")
async def sign_in(request: Request, runtime: RuntimeDep) -> Response:
    """With the admin token (compared in constant time), a session cookie, then `next`.
    A wrong token counts towards the address's failure limit (then 429, Retry-After)."""
    form = await read_form(request, runtime, SIGN_IN_MAX_BYTES, SIGN_IN_MAX_FIELDS)
    next_path = safe_next(form.get("next", HOME))
    given = form.get("token", "")
    refusal = admin_refusal(given, runtime.admin_token)
    if refusal is not None:
        return _wrong_token(request, runtime, next_path, given, refusal)
    epoch = (await session_state(runtime)).epoch
    _, cookie = sessions.new_session(runtime.keys, runtime.admin_token, epoch=epoch)
    response = RedirectResponse(next_path, status_code=303)
    response.set_cookie(
        sessions.COOKIE,
        cookie,
        max_age=sessions.SESSION_TTL_S,
        path=sessions.PATH,
        secure=secure_cookie(request, runtime.settings.public_url),
        httponly=True,
        samesite="strict",
    )
    return response


def _wrong_token(
    request: Request, runtime: Runtime, next_path: str, given: str, refusal: Unauthorized
) -> Response:
    """The form again, saying so: 401, or 429 with Retry-After once this address has
    failed too often (an empty token guesses nothing and is not counted)."""
    error = (
        "That is not the admin token. Paste it again (relay up prints it; "
        "in distributed mode it is RELAY_ADMIN_TOKEN)."
    )
    if given:
        counted = failed_credential(request, runtime, "sign_in", refusal)
        if isinstance(counted, TooManyFailures):
            wait = counted.retry_after_s
            page = render(
                request,
                "sign_in.html",
                429,
                next=next_path,
                notice="",
                error=f"Too many wrong tokens from this address: wait {wait} s, then retry.",
            )
            page.headers["Retry-After"] = str(wait)
            return page
    return render(request, "sign_in.html", 401, next=next_path, notice="", error=error)


@router.post("/sign-out", dependencies=[Depends(checked_form)])
async def sign_out(request: Request, runtime: RuntimeDep, session: SessionDep) -> Response:
    """This session ends on the server too: its cookie, copied or not, opens nothing more."""
    await end_session(runtime, session)
    return signed_out(request, runtime, SIGN_IN)


@router.post("/sign-out-everywhere", dependencies=[Depends(checked_form)])
async def sign_out_everywhere(request: Request, runtime: RuntimeDep) -> Response:
    """Every session ends, in every browser (a copied cookie too), the codec's too: the
    epoch moves on."""
    await end_every_session(runtime)
    log.info("console: every session signed out")
    return signed_out(request, runtime, f"{SIGN_IN}?everywhere=1")


def signed_out(request: Request, runtime: Runtime, to: str) -> Response:
    """To `to`, with this browser's session cookie cleared."""
    response = RedirectResponse(to, status_code=303)
    response.delete_cookie(
        sessions.COOKIE,
        path=sessions.PATH,
        secure=secure_cookie(request, runtime.settings.public_url),
        httponly=True,
        samesite="strict",
    )
    return response


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    found = _STATIC.get(name)
    if found is None:
        raise Refused(404, f"no file {name!r}")
    content, media_type = found
    return Response(content, media_type=media_type, headers={"Cache-Control": "max-age=3600"})


not_found_router = APIRouter(route_class=ConsoleRoute)


@not_found_router.api_route("/{rest:path}", methods=["GET", "POST"])
async def not_found(request: Request) -> Response:
    """Any other /ui path: a page saying so (the API's 404 is JSON)."""
    raise Refused(404, f"no page {request.url.path}")
