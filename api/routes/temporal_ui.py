"""`relay up`'s Temporal UI under Relay's own origin and the console's path, `/ui/temporal/`,
for whoever is signed in to the console. Its codec endpoint (`/ui/codec`, set by
`--ui-codec-endpoint`) is then the same origin and path as the console, so the browser sends
the console's session with every decode and the UI shows payloads decrypted with no setting
in the browser (issue 22).

The dev server serves the UI with `--ui-public-path /ui/temporal` on loopback
(RELAY_TEMPORAL_UI_PORT); Relay forwards each request there, without Relay's own cookies,
and streams the answer back. Signed out, a page redirects to the console's sign-in and
anything else is a 401. Only in `relay up` (`embedded`): a cluster serves its own UI."""

from urllib.parse import quote

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from starlette.background import BackgroundTask

from api.deps import RuntimeDep
from api.services import sessions
from relay.core.errors import NotFound, Unauthorized
from relay.runtime import Runtime

UI_PATH = "/ui/temporal"  # under the console: its session cookie (Path=/ui) comes along
SIGN_IN = "/ui/sign-in"
PUBLIC_ASSETS = "_app/immutable/"  # the UI's bundled code, hashed names
# Headers that belong to one hop, and Relay's own cookies, are not passed on.
_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}
)
_OURS = ("relay_",)
_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]

router = APIRouter(include_in_schema=False)


async def _refusal(request: Request, runtime: Runtime) -> Response | None:
    """None once the request carries a live console session; else, for a page, the
    redirect to sign-in (back here after), and for the UI's API calls a 401."""
    cookie = request.cookies.get(sessions.COOKIE, "")
    state = await sessions.session_state(runtime)
    if cookie and state.read(runtime.keys, runtime.admin_token, cookie) is not None:
        return None
    if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{SIGN_IN}?next={quote(target, safe='')}", status_code=303)
    raise Unauthorized("sign in to the console (/ui) to use the Temporal UI", "relay_console")


def _client(request: Request, runtime: Runtime) -> httpx.AsyncClient:
    """One pooled client per app, to the dev server's UI on loopback."""
    client: httpx.AsyncClient | None = getattr(request.app.state, "temporal_ui_http", None)
    if client is None:
        port = runtime.settings.temporal_ui_port
        client = httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30.0)
        request.app.state.temporal_ui_http = client
    return client


def _cookie_header(request: Request) -> str:
    """The request's cookies without Relay's own (the session stays in Relay)."""
    kept = [f"{k}={v}" for k, v in request.cookies.items() if not k.startswith(_OURS)]
    return "; ".join(kept)


@router.api_route(UI_PATH, methods=["GET"])
async def temporal_ui_root() -> RedirectResponse:
    return RedirectResponse(f"{UI_PATH}/", status_code=308)


@router.api_route(UI_PATH + "/{path:path}", methods=_METHODS)
async def temporal_ui(path: str, request: Request, runtime: RuntimeDep) -> Response:
    """Forward to the dev server's UI (`path` under /temporal/); stream its answer back."""
    if not runtime.embedded:
        raise NotFound("the Temporal UI is served here only by relay up", "path")
    # The UI's own scripts and styles are the same for everyone and hold no data: served
    # without reading the session state from the store (a page loads dozens of them).
    raw = request.scope.get("raw_path") or request.url.path.encode()
    asset = (
        request.method == "GET"
        and path.startswith(PUBLIC_ASSETS)
        # Nothing that could climb out of the assets once the UI server resolves it.
        and b".." not in raw
        and b"%" not in raw
        and "\\" not in path
    )
    if not asset and (refused := await _refusal(request, runtime)) is not None:
        return refused
    client = _client(request, runtime)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP | {"cookie"}}
    if cookies := _cookie_header(request):
        headers["cookie"] = cookies
    # The path and query as the browser sent them, byte for byte (the UI routes on them).
    query = request.scope.get("query_string", b"")
    target = raw.decode("latin-1") + (f"?{query.decode('latin-1')}" if query else "")
    upstream = client.build_request(
        request.method, target, headers=headers, content=await request.body()
    )
    answer = await client.send(upstream, stream=True)
    back = [
        (k, v)
        for k, v in answer.headers.multi_items()
        if k.lower() not in _HOP and k.lower() != "content-length"
    ]
    response = StreamingResponse(
        answer.aiter_raw(), status_code=answer.status_code, background=BackgroundTask(answer.aclose)
    )
    for key, value in back:
        response.headers.append(key, value)
    return response


async def close(app_state: object) -> None:
    """Close the pooled client, if one was opened (the app's shutdown)."""
    client = getattr(app_state, "temporal_ui_http", None)
    if isinstance(client, httpx.AsyncClient):
        await client.aclose()
