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


async def require_admin(
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Bearer admin token, compared in constant time."""
    given = credentials.credentials if credentials else ""
    if not hmac.compare_digest(given.encode(), runtime.admin_token.encode()):
        raise Unauthorized("a valid admin bearer token is required", "Authorization")


AdminDep = Depends(require_admin)
