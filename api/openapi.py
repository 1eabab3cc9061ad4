"""The OpenAPI documents every error status each operation answers, all in one shape.

Most statuses follow from what the operation is, read off the generated document:
admin (bearer) operations answer 401, and 503 when ClickHouse does not; a body can be
unparseable (400), too large (413) or invalid (422); a path parameter names a resource
that may not exist (404); a parameter that can fail validation gives 422. Routes declare
the rest with `errors(...)`. Every 4xx/5xx without a model of its own is then documented
as `ErrorOut`."""

from typing import Any

from fastapi import FastAPI

from api.errors import ErrorOut

_DESCRIPTIONS = {
    400: "Malformed input; `param` names it.",
    401: "The admin bearer token (or the postback key) is missing or wrong.",
    403: "Not allowed: this postback key's network may not post for the click's campaign.",
    404: "The named resource does not exist.",
    409: "The resource's state does not allow it now.",
    413: "The body is larger than the cap.",
    429: "Too many wrong credentials from this address (RELAY_AUTH_FAILURE_LIMIT in "
    "RELAY_AUTH_FAILURE_WINDOW_S); retry after `Retry-After` seconds.",
    422: "A parameter or body field is invalid; `param` names it.",
    503: "ClickHouse, Temporal or the inbox cannot take the request now; retry later.",
}
_REF = "#/components/schemas/ErrorOut"
# Schema keys that do not constrain a value.
_ANNOTATIONS = {"title", "description", "default", "examples"}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the error statuses a route answers beyond those derived here."""
    return {status: {"description": _DESCRIPTIONS[status]} for status in statuses}


def _can_fail(schema: dict[str, Any]) -> bool:
    """Whether a parameter with this schema can be refused: anything but a plain string."""
    variants = schema.get("anyOf", [schema])
    return any(
        {k for k in variant if k not in _ANNOTATIONS} - {"type"}
        or variant.get("type") not in ("string", "null")
        for variant in variants
    )


def _derived(operation: dict[str, Any]) -> set[int]:
    statuses: set[int] = set()
    if operation.get("security"):
        statuses |= {401, 429, 503}
    if "requestBody" in operation:
        statuses |= {400, 413, 422}
    parameters = operation.get("parameters", [])
    if any(p["in"] == "path" for p in parameters):
        statuses.add(404)
    if any(_can_fail(p.get("schema", {})) for p in parameters):
        statuses.add(422)
    return statuses


def _document(schema: dict[str, Any]) -> None:
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    error = ErrorOut.model_json_schema(ref_template="#/components/schemas/{model}")
    components.update(error.pop("$defs", {}))
    components["ErrorOut"] = error
    for item in schema.get("paths", {}).values():
        for operation in item.values():
            responses = operation["responses"]
            # FastAPI adds a 422 to any operation with parameters; keep it only where real.
            if "HTTPValidationError" in str(responses.get("422", "")):
                del responses["422"]
            for status in _derived(operation):
                responses.setdefault(str(status), {"description": _DESCRIPTIONS[status]})
            for status, response in responses.items():
                if status[0] in "45" and "content" not in response:
                    response["content"] = {"application/json": {"schema": {"$ref": _REF}}}
    for unused in ("HTTPValidationError", "ValidationError"):
        components.pop(unused, None)


def install_openapi(app: FastAPI) -> None:
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            _document(generate())  # FastAPI caches what it returns in app.openapi_schema
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]
