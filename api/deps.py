"""Small dependencies routes use to reach the process's shared clients."""

import hmac
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from relay.errors import Unauthorized
from relay.runtime import Runtime

_bearer = HTTPBearer(auto_error=False)


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain `def` dependency in a thread, one hop per request.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def admin_refusal(given: str, admin_token: str) -> Unauthorized | None:
    """None when `given` is the admin token (compared in constant time), else the 401."""
    if hmac.compare_digest(given.encode(), admin_token.encode()):
        return None
    return Unauthorized("a valid admin bearer token is required", "Authorization")


async def require_admin(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Bearer admin token. Requests with a body were already checked by `api.gate`, before
    the body was read; this covers the rest and documents the scheme in the OpenAPI."""
    refusal = admin_refusal(credentials.credentials if credentials else "", runtime.admin_token)
    if refusal is not None:
        raise refusal


AdminDep = Depends(require_admin)
