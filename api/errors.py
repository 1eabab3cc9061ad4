"""One JSON shape for every error: `{"error": {"code", "message", "param"}}`.

Relay's own errors, FastAPI's validation, Starlette's 404 and 405, an unreadable body, a
store that does not answer (503) and anything unexpected (500) all answer in it. A client
that went away before its body arrived is not an error: nothing is answered, it is counted
(`relay_http_clients_gone`) and logged at DEBUG."""

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import Response

from relay.errors import RelayError
from relay.http_metrics import CLIENTS_GONE
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


def relay_error_response(exc: RelayError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else {}
    retry_after = getattr(exc, "retry_after_s", None)
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    return JSONResponse(
        error_body(exc.code, exc.message, exc.param), status_code=exc.status_code, headers=headers
    )


async def _relay_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RelayError)
    return relay_error_response(exc)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0]
    if first.get("type") == "json_invalid":
        # Its location is a character offset, not a parameter.
        detail = first.get("ctx", {}).get("error", "")
        return JSONResponse(
            error_body("invalid_parameter", f"the body is not valid JSON: {detail}", "body"),
            status_code=422,
        )
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = ".".join(location) or None
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    return JSONResponse(error_body("invalid_parameter", message, param), status_code=422)


# nginx's "client closed request": never sent (nobody reads it), only returned to Starlette.
CLIENT_CLOSED_REQUEST = 499


def client_gone(method: str, route: str) -> Response:
    """The client closed the connection (or a read deadline of `relay.http_limits` closed
    it) before its body arrived: counted by route, logged at DEBUG, answered to nobody."""
    CLIENTS_GONE.labels(route).inc()
    log.debug("%s %s: the client went away before its body arrived", method, route)
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def _client_gone(request: Request, exc: Exception) -> Response:
    route = getattr(request.scope.get("route"), "path", "other")  # bounded: templates
    return client_gone(request.method, route)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if isinstance(exc.__cause__, ClientDisconnect):
        # FastAPI reports a body it could not read as a 400; here the client left.
        return await _client_gone(request, exc.__cause__)
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
    return JSONResponse(
        error_body(_HTTP_CODES.get(status, "error"), message, param),
        status_code=status,
        headers=exc.headers,
    )


STORE_RETRY_AFTER_S = 5  # a store that did not answer: its calls time out and are retried


def store_error_response(request: Request, exc: Exception) -> JSONResponse:
    log.warning("%s %s: the store failed: %s", request.method, request.url.path, type(exc).__name__)
    wait = STORE_RETRY_AFTER_S
    message = f"the store did not answer ({type(exc).__name__}); retry after {wait} s"
    return JSONResponse(
        error_body("unavailable", message, None),
        status_code=503,
        headers={"Retry-After": str(STORE_RETRY_AFTER_S)},
    )


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    return store_error_response(request, exc)


def unexpected_error_response() -> JSONResponse:
    return JSONResponse(
        error_body("internal_error", "an unexpected error occurred", None), status_code=500
    )


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    # Starlette logs the traceback and re-raises after this answer.
    return unexpected_error_response()


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RelayError, _relay_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(ClientDisconnect, _client_gone)
    for store_error in STORE_ERRORS:
        app.add_exception_handler(store_error, _store_error)
    app.add_exception_handler(Exception, _unexpected_error)
