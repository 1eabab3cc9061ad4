"""Keep secrets and PII out of access logs.

Networks put the postback key, emails and phone numbers in query strings; uvicorn's access
log would print them verbatim. This filter keeps the path and drops every query value.
"""

import logging
import re

_REDACTED = "…"
# A query value: everything after a name's `=` up to the next `&`. A regex, not parse_qsl and
# urlencode: the access log is written for every postback, and the round trip cost about a
# twentieth of the API's CPU under load (bench/relay_up.py, profiled with py-spy).
_VALUE = re.compile(r"=[^&]*")


def redact_query(path_with_query: str) -> str:
    """`/postback?key=s&email=e` -> `/postback?key=…&email=…`: names kept, values gone."""
    path, sep, query = path_with_query.partition("?")
    if not sep:
        return path
    return f"{path}?{_VALUE.sub('=' + _REDACTED, query)}"


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
