"""What every request meets before any route reads its body: the admin token for admin
requests that carry a body, and the body-size cap.

FastAPI reads and parses a route's body before it runs any dependency, so `require_admin`
alone would parse a 60 MB body from anyone before answering 401. Here the token is checked
on the headers, a declared `Content-Length` over the cap is refused at once, and the bytes
of a chunked body are counted as they arrive. Refusals are Relay errors (401, 413)."""

from collections.abc import Awaitable, Callable, Mapping

from fastapi.security.utils import get_authorization_scheme_param
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deps import admin_refusal
from api.errors import relay_error_response, store_error_response
from relay.errors import BodyTooLarge, RelayError
from relay.runtime import Runtime
from relay.store.pool import STORE_ERRORS

Handler = Callable[[Request], Awaitable[Response]]
Refused = Callable[[int], None]

ADMIN_PREFIX = "/api/"


def _too_large(cap: int) -> BodyTooLarge:
    return BodyTooLarge(f"the body is larger than {cap} bytes", "body")


def _refusal(path: str, headers: Headers, runtime: Runtime, cap: int) -> RelayError | None:
    declared = headers.get("content-length")
    has_body = declared not in (None, "0") or "transfer-encoding" in headers
    # No public route under /api/ takes a body, so a body there needs the token.
    if has_body and path.startswith(ADMIN_PREFIX):
        scheme, token = get_authorization_scheme_param(headers.get("authorization"))
        refusal = admin_refusal(token if scheme.lower() == "bearer" else "", runtime.admin_token)
        if refusal is not None:
            return refusal
    if declared is not None and declared.isdigit() and int(declared) > cap:
        return _too_large(cap)
    return None


class RequestGate:
    """ASGI middleware: `body_caps` maps a path to its own cap; any other path has
    `RELAY_MAX_BODY_BYTES`. `direct` maps a path to a handler served from here for GET and
    POST (see `_Direct`); the app still routes it too, for the OpenAPI and other methods.
    `refused` maps a direct path to what counts its error answers (by status), whether the
    gate or the handler refused."""

    def __init__(
        self,
        app: ASGIApp,
        body_caps: Mapping[str, int],
        direct: Mapping[str, Handler],
        refused: Mapping[str, Refused] | None = None,
    ) -> None:
        self.app = app
        self.body_caps = dict(body_caps)
        counters = refused or {}
        self.direct = {
            path: _Direct(handler, counters.get(path, _uncounted))
            for path, handler in direct.items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        runtime: Runtime = scope["app"].state.runtime
        cap = self.body_caps.get(scope["path"], runtime.settings.max_body_bytes)
        refusal = _refusal(scope["path"], Headers(scope=scope), runtime, cap)
        direct = self.direct.get(scope["path"])
        if refusal is not None:
            if direct is not None:
                direct.refused(refusal.status_code)
            await relay_error_response(refusal)(scope, receive, send)
            return
        app = direct if direct is not None and scope["method"] in ("GET", "POST") else self.app
        await _CappedRequest(app, cap)(scope, receive, send)


class _Direct:
    """One route served straight from the gate, past FastAPI's router and the middleware
    inside this one: about a third of the postback's CPU under load went there (py-spy on
    bench/relay_up.py). The handler takes a Request and returns a Response; Relay's errors
    and store errors answer as the app's handlers would, anything else reaches the app's
    outer error middleware (500 in the same shape). Every error answer is counted by
    `refused`; a success is the handler's to count."""

    def __init__(self, handler: Handler, refused: Refused) -> None:
        self.handler = handler
        self.refused = refused

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            response = await self.handler(request)
        except RelayError as exc:
            response = relay_error_response(exc)
            self.refused(response.status_code)
        except STORE_ERRORS as exc:
            response = store_error_response(request, exc)
            self.refused(response.status_code)
        except Exception:
            self.refused(500)
            raise
        await response(scope, receive, send)


def _uncounted(status: int) -> None:
    pass


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
