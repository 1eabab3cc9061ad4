"""What every request meets before any route reads its body: the admin token for admin
requests that carry a body, and the body-size cap.

FastAPI reads and parses a route's body before it runs any dependency, so `require_admin`
alone would parse a 60 MB body from anyone before answering 401. Here the token is checked
on the headers, a declared `Content-Length` over the cap is refused at once, and the bytes
of a chunked body are counted as they arrive. Refusals are Relay errors (401, 413)."""

from collections.abc import Awaitable, Callable, Iterable, Mapping

from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import admin_refusal, failed_credential
from api.errors import CLIENT_CLOSED_REQUEST, error_response, relay_error_response
from relay.core.errors import BodyTooLarge, RelayError
from relay.runtime import Runtime

Handler = Callable[[Request], Awaitable[Response]]
Refused = Callable[[int], None]

ADMIN_PREFIX = "/api/"


def _too_large(cap: int) -> BodyTooLarge:
    return BodyTooLarge(f"the body is larger than {cap} bytes", "body")


def _refusal(scope: Scope, runtime: Runtime, cap: int) -> RelayError | None:
    headers = Headers(scope=scope)
    declared = headers.get("content-length")
    has_body = declared not in (None, "0") or "transfer-encoding" in headers
    # No public route under /api/ takes a body, so a body there needs the token.
    if has_body and scope["path"].startswith(ADMIN_PREFIX):
        scheme, token = get_authorization_scheme_param(headers.get("authorization"))
        given = token if scheme.lower() == "bearer" else ""
        refusal = admin_refusal(given, runtime.admin_token)
        if refusal is not None and given:
            # A wrong token counts towards the address's limit, as without a body.
            return failed_credential(Request(scope), runtime, "bearer", refusal)
        if refusal is not None:
            return refusal
    if declared is not None and declared.isdigit() and int(declared) > cap:
        return _too_large(cap)
    return None


class RequestGate:
    """ASGI middleware: `body_caps` maps a path to its own cap; any other path has
    `RELAY_MAX_BODY_BYTES`. The direct routes (`Direct`) apply the same checks themselves."""

    def __init__(self, app: ASGIApp, body_caps: Mapping[str, int]) -> None:
        self.app = app
        self.body_caps = dict(body_caps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        runtime: Runtime = scope["app"].state.runtime
        cap = self.body_caps.get(scope["path"], runtime.settings.max_body_bytes)
        refusal = _refusal(scope, runtime, cap)
        if refusal is not None:
            await relay_error_response(refusal)(scope, receive, send)
            return
        await _CappedRequest(self.app, cap)(scope, receive, send)


class Direct:
    """One route (GET and POST), served by `DirectRoutes` ahead of FastAPI's router and all
    the other middleware: about a third of the postback's CPU under load went to them
    (py-spy on bench/relay_up.py). The gate's checks apply (body cap, admin token); the
    handler takes a Request and returns a Response. Whatever it raises is answered by
    `api.errors.error_response`, as on FastAPI's routes. Every error answer is counted by
    `refused`; a success is the handler's to count, and a client gone before its body
    arrived is neither (`error_response` counts it)."""

    def __init__(
        self, path: str, handler: Handler, cap: int, refused: Refused = lambda status: None
    ) -> None:
        self.path = path
        self.handler = handler
        self.cap = cap
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # As FastAPI's router records its match: the template names a client gone.
        scope["route"] = self
        runtime: Runtime = scope["app"].state.runtime
        refusal = _refusal(scope, runtime, self.cap)
        if refusal is not None:
            await self._answer_error(Request(scope, receive), refusal)(scope, receive, send)
            return
        await _CappedRequest(self._serve, self.cap)(scope, receive, send)

    async def _serve(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self.handler(request)
        except Exception as exc:
            response = self._answer_error(request, exc)
        await response(scope, receive, send)

    def _answer_error(self, request: Request, exc: Exception) -> Response:
        response = error_response(request, exc)
        if response.status_code != CLIENT_CLOSED_REQUEST:
            self.refused(response.status_code)
        return response


class DirectRoutes:
    """ASGI middleware serving the `routes` itself (GET and POST; other methods, such as
    HEAD, go on to the router, which has these routes too for the OpenAPI document and
    its 405s). Added last with `app.add_middleware`, so that it is the first user
    middleware: only Starlette's outermost error middleware runs before it."""

    def __init__(self, app: ASGIApp, routes: Iterable[Direct]) -> None:
        self.app = app
        self.routes = {route.path: route for route in routes}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "POST"):
            route = self.routes.get(scope["path"])
            if route is not None:
                await route(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _CappedRequest:
    """One request whose body is counted as the app reads it. Past the cap the 413 is sent
    at once; the app's reading fails and whatever it answers then is dropped."""

    def __init__(self, app: ASGIApp, cap: int) -> None:
        self.app, self.cap = app, cap
        self.received = 0
        self.started = self.refused = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def capped_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.cap:
                    if not self.started:
                        self.refused = True
                        await relay_error_response(_too_large(self.cap))(scope, receive, send)
                    raise _too_large(self.cap)
            return message

        async def guarded_send(message: Message) -> None:
            if self.refused:
                return
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except Exception:
            if not self.refused:
                raise
