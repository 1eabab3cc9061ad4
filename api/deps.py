"""Small dependencies routes use to reach the process's shared clients, the lists' time
range and paging, the client's address, and the admin token's checks, whose wrong guesses
count towards the client's failure limit."""

import hmac
import ipaddress
import time
from collections.abc import Sequence
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Literal

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.services.listing import Time, Window
from relay.core.errors import RelayError, Unauthorized
from relay.core.metrics import auth_failed
from relay.core.rate_limit import FailureLimits, TooManyFailures
from relay.runtime import Runtime

_bearer = HTTPBearer(auto_error=False)
Credential = Literal["sign_in", "bearer", "codec", "postback_key"]


async def get_runtime(request: Request) -> Runtime:
    # async: FastAPI runs a plain `def` dependency in a thread, one hop per request.
    runtime: Runtime = request.app.state.runtime
    return runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


async def window(
    success: bool | None = None,
    since: Annotated[Time | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[Time | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> Window:
    """A list's paging and time range from its query; naive times are workspace-local
    (async: FastAPI runs a plain `def` dependency in a thread)."""
    return Window(success, since, until, limit, offset)


WindowDep = Annotated[Window, Depends(window)]
Bounded = Annotated[str | None, Query(max_length=200)]  # a filter of at most 200 characters


def _trusted(address: str, proxies: Sequence[IPv4Network | IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_ip(request: Request, trusted_proxies: Sequence[IPv4Network | IPv6Network]) -> str:
    """The visitor's IP: the peer, or, when the peer is a trusted proxy (an address or a
    network of `RELAY_TRUSTED_PROXIES`), the last X-Forwarded-For hop no trusted proxy added."""
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for", "")
    if _trusted(peer, trusted_proxies) and forwarded:
        for hop in reversed([h.strip() for h in forwarded.split(",")]):
            if not _trusted(hop, trusted_proxies):
                try:
                    return str(ipaddress.ip_address(hop))
                except ValueError:
                    break
    return peer


def admin_refusal(given: str, admin_token: str) -> Unauthorized | None:
    """None when `given` is the admin token (compared in constant time), else the 401."""
    if hmac.compare_digest(given.encode(), admin_token.encode()):
        return None
    return Unauthorized("a valid admin bearer token is required", "Authorization")


def failure_limits(request: Request) -> FailureLimits:
    """The app's failure limiters, made from its settings at the first failure."""
    state = request.app.state
    limits: FailureLimits | None = getattr(state, "failure_limits", None)
    if limits is None:
        limits = state.failure_limits = FailureLimits.from_settings(state.runtime.settings)
    return limits


def failed_credential(
    request: Request, runtime: Runtime, credential: Credential, refusal: RelayError
) -> RelayError:
    """A wrong credential from this request's client (the address `client_ip` finds,
    trusted proxies believed), counted: `refusal` while the address is within
    RELAY_AUTH_FAILURE_LIMIT, then 429 with Retry-After naming the same parameter. Called on
    failures only: a right credential is never counted nor limited."""
    limits = failure_limits(request)
    limiter = limits.postback_key if credential == "postback_key" else limits.admin
    address = client_ip(request, runtime.settings.trusted_proxies)
    wait = limiter.failed(address, time.monotonic())
    if wait is None:
        auth_failed(credential, refusal.status_code)
        return refusal
    auth_failed(credential, TooManyFailures.status_code)
    return TooManyFailures(
        f"{refusal.message}; more than {limiter.limit} wrong ones came from this address in "
        f"{limiter.window_s:g} s: retry after {wait} s",
        refusal.param,
        wait,
    )


def check_admin_token(
    request: Request, runtime: Runtime, given: str, credential: Credential
) -> None:
    """The admin token, or the 401 (the 429 once this address failed too often). An absent
    token is refused without counting: it guesses nothing."""
    refusal = admin_refusal(given, runtime.admin_token)
    if refusal is not None:
        raise failed_credential(request, runtime, credential, refusal) if given else refusal


async def require_admin(
    request: Request,
    runtime: RuntimeDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Bearer admin token. Requests with a body were already checked by `api.gate`, before
    the body was read; this covers the rest and documents the scheme in the OpenAPI."""
    check_admin_token(request, runtime, credentials.credentials if credentials else "", "bearer")


AdminDep = Depends(require_admin)
