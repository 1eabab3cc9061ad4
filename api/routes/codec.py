"""Temporal's remote codec contract, so the Temporal UI and CLI show decrypted payloads:
`POST /codec/decode` and `/codec/encode` take and answer `{"payloads": [{"metadata": {...},
"data": ...}]}` (bytes in base64, as in Temporal's JSON).

Admin only: the admin bearer token (the CLI's `--codec-auth "Bearer ..."`), or the session
cookie `/codec/session` sets, which the UI sends with "Include cross-origin credentials" (the
UI passes an `Authorization` header only from its own OIDC login). The UI runs on another
origin: CORS answers its preflight (`CodecCors`).

The codec session is the console's kind (api/services/sessions.py), for another purpose:
signed, expiring after 12 hours, ended by a new admin token, by *Sign out everywhere* (the
epoch) and by `POST /codec/session/end` (revoked on the server), Secure over https."""

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload

from api.deps import (
    RuntimeDep,
    admin_refusal,
    check_admin_token,
    failed_credential,
)
from api.openapi import errors
from api.params import SIGN_IN_MAX_BYTES, SIGN_IN_MAX_FIELDS, read_form
from api.services import sessions
from api.services.sessions import end_session, secure_cookie, session_state
from relay.core.crypto import KeyRingError
from relay.core.errors import InvalidField, Unauthorized
from relay.core.settings import Settings
from relay.runtime import Runtime
from relay.temporal.payload_codec import EncryptionCodec

PREFIX = "/codec"
COOKIE = "relay_codec"
_bearer = HTTPBearer(auto_error=False)
_Route = TypeVar("_Route", bound=Callable[..., Awaitable[Any]])


class CodecPayload(BaseModel):
    metadata: dict[str, str] = Field(default_factory=dict, description="Values in base64.")
    data: str = Field(default="", description="Base64.")


class CodecPayloads(BaseModel):
    payloads: list[CodecPayload]


async def _codec_session(request: Request, runtime: Runtime) -> sessions.Session | None:
    """The live codec session the request's cookie carries, if any."""
    cookie = request.cookies.get(COOKIE, "")
    if not cookie:
        return None
    state = await session_state(runtime)
    return state.read(runtime.keys, runtime.admin_token, cookie, sessions.CODEC)


async def require_console_session(request: Request, runtime: RuntimeDep) -> None:
    """A live console session's cookie (Path=/ui, SameSite=Strict: only pages of this
    origin send it), for the Temporal UI that `relay up` serves under /ui/temporal/."""
    cookie = request.cookies.get(sessions.COOKIE, "")
    state = await session_state(runtime)
    if cookie and state.read(runtime.keys, runtime.admin_token, cookie) is not None:
        return
    refusal = Unauthorized("sign in to the console (/ui) first", sessions.COOKIE)
    raise failed_credential(request, runtime, "codec", refusal) if cookie else refusal


async def require_codec_admin(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The admin bearer token, or a live codec session's cookie. A wrong token or a dead
    cookie counts towards the address's failure limit (then 429)."""
    if await _codec_session(request, runtime) is not None:
        return
    given = credentials.credentials if credentials else ""
    refusal = admin_refusal(given, runtime.admin_token)
    if refusal is None:
        return
    raise (
        failed_credential(request, runtime, "codec", refusal)
        if (given or COOKIE in request.cookies)
        else refusal
    )


router = APIRouter(prefix=PREFIX, tags=["codec"])
_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CodecPayloads"}}},
    }
}


async def _payloads(request: Request) -> list[Payload]:
    """The body, read only once the caller is known to be the admin."""
    try:
        body = CodecPayloads.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None
    try:
        return [
            Payload(
                metadata={k: base64.b64decode(v, validate=True) for k, v in p.metadata.items()},
                data=base64.b64decode(p.data, validate=True),
            )
            for p in body.payloads
        ]
    except (binascii.Error, ValueError):
        raise InvalidField("metadata values and data must be base64", "payloads") from None


def _answer(payloads: list[Payload]) -> CodecPayloads:
    return CodecPayloads(
        payloads=[
            CodecPayload(
                metadata={k: base64.b64encode(v).decode() for k, v in p.metadata.items()},
                data=base64.b64encode(p.data).decode(),
            )
            for p in payloads
        ]
    )


def _codec(runtime: Runtime) -> EncryptionCodec:
    return EncryptionCodec(runtime.keys)


def _codec_route(path: str) -> Callable[[_Route], _Route]:
    """POST, admin only, `CodecPayloads` in and out (the body read by the route itself)."""
    return router.post(
        path,
        response_model=CodecPayloads,
        dependencies=[Depends(require_codec_admin)],
        responses=errors(429),
        openapi_extra=_BODY,
    )


@_codec_route("/decode")
async def decode(request: Request, runtime: RuntimeDep) -> CodecPayloads:
    """Decrypt payloads; payloads Relay did not encrypt come back as they are. 422 names
    the first payload whose key is not in the ring or whose ciphertext was altered."""
    codec = _codec(runtime)
    decoded: list[Payload] = []
    for index, payload in enumerate(await _payloads(request)):
        try:
            decoded.append(codec.decrypt(payload))
        except KeyRingError as exc:
            raise InvalidField(f"payload {index}: {exc}", f"payloads[{index}]") from None
    return _answer(decoded)


@_codec_route("/encode")
async def encode(request: Request, runtime: RuntimeDep) -> CodecPayloads:
    """Encrypt payloads under the ring's primary key (the UI's and CLI's inputs)."""
    codec = _codec(runtime)
    return _answer([codec.encrypt(payload) for payload in await _payloads(request)])


_FORM = """<!doctype html><meta charset="utf-8"><title>Relay codec session</title>
<form method="post" action="{prefix}/session">
<p>Admin token, to let this browser's Temporal UI decode Relay's payloads
(in the UI's codec settings, enable "Include cross-origin credentials"):</p>
<input type="password" name="token" autocomplete="off" autofocus> <button>Open session</button>
</form>"""
_OPENED = """<!doctype html><meta charset="utf-8"><title>Relay codec session</title>
<p>Codec session open for 12 hours. Reload the Temporal UI.</p>
<form method="post" action="{prefix}/session/end"><button>End this session</button></form>"""
_ENDED = """<!doctype html><meta charset="utf-8"><title>Relay codec session</title>
<p>Codec session ended: this browser's Temporal UI no longer decodes Relay's payloads.</p>"""
_FORM_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "properties": {"token": {"type": "string"}},
                    "required": ["token"],
                }
            }
        },
    }
}


@router.get("/session", response_class=HTMLResponse)
async def session_form() -> HTMLResponse:
    """A form asking for the admin token, for `POST /codec/session`."""
    return HTMLResponse(_FORM.format(prefix=PREFIX))


@router.post(
    "/session",
    response_class=HTMLResponse,
    responses=errors(401, 413, 429),
    openapi_extra=_FORM_BODY,
)
async def open_session(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """Given the admin token (form field `token`), set the cookie the codec endpoints accept
    for 12 hours (HttpOnly, SameSite=Strict, path /codec, Secure over https). The form is
    at most 8 KB (413); a wrong token counts towards the address's failure limit (429)."""
    form = await read_form(request, SIGN_IN_MAX_BYTES, SIGN_IN_MAX_FIELDS)
    check_admin_token(request, runtime, form.get("token", ""), "codec")
    epoch = (await session_state(runtime)).epoch
    _, cookie = sessions.new_session(
        runtime.keys, runtime.admin_token, epoch=epoch, purpose=sessions.CODEC
    )
    response = HTMLResponse(_OPENED.format(prefix=PREFIX))
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=sessions.SESSION_TTL_S,
        path=PREFIX,
        secure=secure_cookie(request, runtime.settings.public_url),
        httponly=True,
        samesite="strict",
    )
    return response


@router.post("/session/end", response_class=HTMLResponse, responses=errors(401))
async def end_codec_session(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """End this browser's codec session, on the server too (a copied cookie stops working),
    and clear its cookie. 401 without a live session."""
    session = await _codec_session(request, runtime)
    if session is None:
        raise Unauthorized("no live codec session to end", COOKIE)
    await end_session(runtime, session)
    response = HTMLResponse(_ENDED)
    response.delete_cookie(
        COOKIE,
        path=PREFIX,
        secure=secure_cookie(request, runtime.settings.public_url),
        httponly=True,
        samesite="strict",
    )
    return response


def ui_origins(settings: Settings) -> list[str]:
    """The embedded UI under both names a browser may use, and the configured ones."""
    port = settings.temporal_ui_port
    return [f"http://127.0.0.1:{port}", f"http://localhost:{port}", *settings.codec_cors_origins]


class CodecCors:
    """CORS for the codec endpoints only, for the Temporal UI's origins (preflight included);
    every other path passes straight through."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.cors: CORSMiddleware | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX + "/"):
            await self.app(scope, receive, send)
            return
        if self.cors is None:  # the settings arrive with the runtime, at startup
            self.cors = CORSMiddleware(
                self.app,
                allow_origins=ui_origins(scope["app"].state.runtime.settings),
                allow_methods=["POST"],
                allow_headers=["Authorization", "Content-Type", "X-Namespace"],
                allow_credentials=True,
                max_age=600,
            )
        await self.cors(scope, receive, send)


# The same endpoints for the Temporal UI served under the console (api/routes/temporal_ui.py):
# the console's session instead of the admin token or the codec session.
console_router = APIRouter(prefix=f"{sessions.PATH}{PREFIX}")
for _path, _endpoint in (("/decode", decode), ("/encode", encode)):
    console_router.add_api_route(
        _path,
        _endpoint,
        methods=["POST"],
        response_model=CodecPayloads,
        dependencies=[Depends(require_console_session)],
    )
