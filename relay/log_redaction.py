"""Keep secrets and PII out of access logs.

Networks put the postback key, emails and phone numbers in query strings; uvicorn's access
log would print them verbatim. This filter keeps the path and drops every query value.
"""

import logging
from urllib.parse import parse_qsl, urlencode

_REDACTED = "…"


def redact_query(path_with_query: str) -> str:
    """`/postback?key=s&email=e` -> `/postback?key=…&email=…`: names kept, values gone."""
    path, sep, query = path_with_query.partition("?")
    if not sep:
        return path
    names = [name for name, _ in parse_qsl(query, keep_blank_values=True)]
    return f"{path}?{urlencode([(n, _REDACTED) for n in names], safe=_REDACTED)}"


class AccessLogRedaction(logging.Filter):
    """Rewrites uvicorn access records (`client, method, path, version, status`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (args[0], args[1], redact_query(args[2]), args[3], args[4])
        return True


def install_access_log_redaction() -> None:
    """Attach the filter to uvicorn's access logger (idempotent)."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogRedaction) for f in access.filters):
        access.addFilter(AccessLogRedaction())
