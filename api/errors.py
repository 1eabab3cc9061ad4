"""One JSON shape for every error: `{"error": {"code", "message", "param"}}`.

Relay's own errors, FastAPI's validation, Starlette's 404 and 405, an unreadable body, a
store that does not answer (503) and anything unexpected (500) all answer in it. A client
that went away before its body arrived is not an error: nothing is answered, it is counted
(`relay_http_clients_gone`) and logged at DEBUG. `error_response` is the one mapping from
an exception to its answer, whether FastAPI or `api.gate.Direct` served the request."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from api.answers import JSONAnswer
from relay.core.errors import RelayError
from relay.core.http_metrics import CLIENTS_GONE
from relay.store.pool import STORE_ERRORS

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    code: str
    message: str
    param: str | None


class ErrorOut(BaseModel):
    """Every error Relay answers, whatever the status."""

    error: ErrorDetail


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
}


def error_body(code: str, message: str, param: str | None) -> dict[str, dict[str, str | None]]:
    return {"error": {"code": code, "message": message, "param": param}}


def relay_error_response(exc: RelayError) -> JSONAnswer:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONAnswer(
        error_body(exc.code, exc.message, exc.param), status_code=exc.status_code, headers=headers
    )


def _validation_error(exc: RequestValidationError) -> JSONAnswer:
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        # Its location is a character offset, not a parameter.
        detail = first.get("ctx", {}).get("error", "")
        return JSONAnswer(
            error_body("invalid_parameter", f"the body is not valid JSON: {detail}", "body"),
            status_code=422,
        )
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = ".".join(location) or None
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    return JSONAnswer(error_body("invalid_parameter", message, param), status_code=422)


# nginx's "client closed request": the answer to a client already gone, which the server drops.
CLIENT_CLOSED_REQUEST = 499


def _client_gone(request: Request) -> Response:
    """The client closed the connection (or a read deadline of `relay.process.http_limits` closed
    it) before its body arrived: counted by route, logged at DEBUG, answered to nobody."""
    # Bounded: a route's template (FastAPI's router, or `api.gate.Direct`, records it).
    route = getattr(request.scope.get("route"), "path", "other")
    CLIENTS_GONE.labels(route).inc()
    log.debug("%s %s: the client went away before its body arrived", request.method, route)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


def _http_error(request: Request, exc: HTTPException) -> Response:
    status = exc.status_code
    if status == 404:
        message = f"no route {request.url.path}"
    elif status == 405:
        message = f"{request.url.path} does not answer {request.method}"
    else:
        message = str(exc.detail)
    # FastAPI raises a bare 400 only when the body cannot be parsed (e.g. JSON nested too
    # deeply, or not UTF-8).
    param = "body" if status in (400, 413) else None
    return JSONAnswer(
        error_body(_HTTP_CODES.get(status, "error"), message, param),
        status_code=status,
        headers=exc.headers,
    )


STORE_RETRY_AFTER_S = 5  # a store that did not answer: its calls time out and are retried


def _store_error(request: Request, exc: Exception) -> JSONAnswer:
    log.warning("%s %s: the store failed: %s", request.method, request.url.path, type(exc).__name__)
    wait = STORE_RETRY_AFTER_S
    message = f"the store did not answer ({type(exc).__name__}); retry after {wait} s"
    return JSONAnswer(
        error_body("unavailable", message, None),
        status_code=503,
        headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
    )


def error_response(request: Request, exc: Exception, log_unexpected: bool = True) -> Response:
    """Relay's answer to an exception raised while serving `request`: the one mapping, used
    by FastAPI's exception handlers (`install_error_handlers`) and by the routes served
    ahead of FastAPI (`api.gate.Direct`) alike, so the two cannot answer differently.

    A client gone before its body arrived gets a 499 nobody reads (`_client_gone`);
    anything unexpected is logged with its traceback and answered 500, its detail kept
    from the client."""
    if isinstance(exc, RelayError):
        return relay_error_response(exc)
    if isinstance(exc, STORE_ERRORS):
        return _store_error(request, exc)
    if isinstance(exc, ClientDisconnect):
        return _client_gone(request)
    if isinstance(exc, HTTPException):
        if isinstance(exc.__cause__, ClientDisconnect):
            # FastAPI reports a body it could not read as a 400; here the client left.
            return _client_gone(request)
        return _http_error(request, exc)
    if isinstance(exc, RequestValidationError):
        return _validation_error(exc)
    if log_unexpected:
        log.error("unexpected error serving %s %s", request.method, request.url.path, exc_info=exc)
    return JSONAnswer(
        error_body("internal_error", "an unexpected error occurred", None), status_code=500
    )


async def _handle(request: Request, exc: Exception) -> Response:
    return error_response(request, exc)


async def _handle_unexpected(request: Request, exc: Exception) -> Response:
    # Starlette re-raises after this answer and the server logs the traceback: once.
    return error_response(request, exc, log_unexpected=False)


# Each class `error_response` tells apart needs its own registration: Starlette answers
# `Exception` alone in its outermost middleware, which re-raises after answering.
_MAPPED: tuple[type[Exception], ...] = (
    RelayError,
    RequestValidationError,
    HTTPException,
    ClientDisconnect,
    *STORE_ERRORS,
)


def install_error_handlers(app: FastAPI) -> None:
    """Every exception a route raises is answered by `error_response`."""
    for exc_class in _MAPPED:
        app.add_exception_handler(exc_class, _handle)
    app.add_exception_handler(Exception, _handle_unexpected)
