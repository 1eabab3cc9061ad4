"""One JSON shape for every client error: `{"error": {"code", "message", "param"}}`."""

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from relay.errors import RelayError


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
    location = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path")]
    param = ".".join(location) or None
    message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
    return JSONResponse(error_body("invalid_parameter", message, param), status_code=422)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RelayError, _relay_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
