"""Relay's one error family: every client error has a status, a code, a message, a param."""


class RelayError(Exception):
    """An error a caller should see as JSON `{"error": {"code", "message", "param"}}`."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


class BadParameter(RelayError):
    status_code = 400
    code = "invalid_parameter"


class Unauthorized(RelayError):
    status_code = 401
    code = "unauthorized"


class Forbidden(RelayError):
    """The caller is who it says (its key matched) but may not do this."""

    status_code = 403
    code = "forbidden"


class NotFound(RelayError):
    status_code = 404
    code = "not_found"


class Conflict(RelayError):
    """The request is valid but the resource's state does not allow it now."""

    status_code = 409
    code = "conflict"


class BodyTooLarge(RelayError):
    status_code = 413
    code = "body_too_large"


class Unavailable(RelayError):
    """A dependency (Temporal, ClickHouse) did not answer; the caller should retry."""

    status_code = 503
    code = "unavailable"


class InvalidField(RelayError):
    """A body field that is well-formed but wrong in context (e.g. another campaign's pixel)."""

    status_code = 422
    code = "invalid_parameter"
