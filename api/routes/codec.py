"""Temporal's remote codec contract, so the Temporal UI and CLI show decrypted payloads:
`POST /codec/decode` and `/codec/encode` take and answer `{"payloads": [{"metadata": {...},
"data": ...}]}` (bytes in base64, as in Temporal's JSON).

Admin only: the admin bearer token (the CLI's `--codec-auth "Bearer ..."`), or the session
cookie `/codec/session` sets, which the UI sends with "Include cross-origin credentials" (the
UI passes an `Authorization` header only from its own OIDC login). The UI runs on another
origin: CORS answers its preflight (`CodecCors`)."""

import base64
import binascii
import hashlib
import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, TypeVar
from urllib.parse import parse_qs

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, ValidationError
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send
from temporalio.api.common.v1 import Payload

from api.deps import RuntimeDep, admin_refusal
from api.openapi import errors
from relay.crypto import KeyRingError
from relay.errors import InvalidField
from relay.payload_codec import EncryptionCodec
from relay.runtime import Runtime
from relay.settings import Settings

PREFIX = "/codec"
COOKIE = "relay_codec"
_COOKIE_MAX_AGE_S = 12 * 3600
_bearer = HTTPBearer(auto_error=False)
_Route = TypeVar("_Route", bound=Callable[..., Awaitable[Any]])


class CodecPayload(BaseModel):
    metadata: dict[str, str] = Field(default_factory=dict, description="Values in base64.")
    data: str = Field(default="", description="Base64.")


class CodecPayloads(BaseModel):
    payloads: list[CodecPayload]


def _session_value(admin_token: str) -> str:
    """The cookie's value: derived from the admin token, so a stolen cookie opens the codec
    only, and a new admin token ends every session."""
    return hmac.new(admin_token.encode(), b"relay codec session v1", hashlib.sha256).hexdigest()


async def require_codec_admin(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """The admin bearer token, or the session cookie derived from it."""
    cookie = request.cookies.get(COOKIE, "")
    # Bytes: compare_digest refuses a str with non-ASCII characters (a forged cookie).
    expected = _session_value(runtime.admin_token).encode()
    if cookie and hmac.compare_digest(cookie.encode("utf-8", "backslashreplace"), expected):
        return
    refusal = admin_refusal(credentials.credentials if credentials else "", runtime.admin_token)
    if refusal is not None:
        raise refusal


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
<p>Codec session open for 12 hours. Reload the Temporal UI.</p>"""
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
    "/session", response_class=HTMLResponse, responses=errors(401), openapi_extra=_FORM_BODY
)
async def open_session(request: Request, runtime: RuntimeDep) -> HTMLResponse:
    """Given the admin token (form field `token`), set the cookie the codec endpoints accept
    for 12 hours (HttpOnly, SameSite=Strict, path /codec)."""
    fields = parse_qs((await request.body()).decode("utf-8", "replace"))
    refusal = admin_refusal(fields.get("token", [""])[0], runtime.admin_token)
    if refusal is not None:
        raise refusal
    response = HTMLResponse(_OPENED)
    response.set_cookie(
        COOKIE,
        _session_value(runtime.admin_token),
        max_age=_COOKIE_MAX_AGE_S,
        path=PREFIX,
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
