"""Meta's answers, classified (platforms.md 1.6): delivered, retryable or permanent."""

from collections.abc import Mapping

from relay.destinations.classify import (
    THROTTLE_DELAY_S,
    Classification,
    header,
    int_or_none,
    json_object,
    parse_retry_after,
    result,
    status_verdict,
)
from relay.domain.models import Verdict

# Graph API codes to wait and retry on, and codes that need a fix in config or payload.
META_RETRYABLE_CODES = frozenset({1, 2, 4, 17, 341, 368, 613, 80004})
META_PERMANENT_CODES = frozenset({3, 10, 100, 102, 190, 506, *range(200, 300)})
META_THROTTLE_CODES = frozenset({4, 17, 341, 613, 80004})


def _meta_error(
    status: int, error: Mapping[str, object], retry_after: float | None
) -> Classification:
    code, subcode = int_or_none(error.get("code")), int_or_none(error.get("error_subcode"))
    reason = f"meta error {code}" + (f"/{subcode}" if subcode else "")
    if error.get("type"):
        reason += f" ({error['type']})"
    if error.get("message"):
        reason += f": {error['message']}"
    if code in META_THROTTLE_CODES or status == 429:
        retry_after = THROTTLE_DELAY_S if retry_after is None else retry_after
    transient = error.get("is_transient")
    if transient is True or code in META_RETRYABLE_CODES:
        verdict = Verdict.RETRYABLE
    elif code in META_PERMANENT_CODES or transient is False:
        verdict = Verdict.PERMANENT
    else:  # an unknown code without is_transient: let the status decide
        verdict = status_verdict(status)
    return result(verdict, reason, retry_after)


def classify_meta(status: int, body: bytes, headers: Mapping[str, str]) -> Classification:
    """Classify a Meta CAPI response: delivered only on 2xx with `events_received` >= 1.

    An `error` object decides by `is_transient` and its code (retryable: 1, 2, 4, 17, 341,
    368, 613, 80004; permanent: 3, 10, 100, 102, 190, 200-299, 506). Without one, 5xx,
    408 and 429 retry, other 4xx are permanent.
    """
    retry_after = parse_retry_after(header(headers, "retry-after"))
    doc = json_object(body)
    error = doc.get("error") if doc is not None else None
    if isinstance(error, dict):
        return _meta_error(status, error, retry_after)
    if doc is not None and 200 <= status < 300:
        received = int_or_none(doc.get("events_received"))
        if received is not None and received >= 1:
            return result(Verdict.DELIVERED, f"meta events_received {received}", None)
        count = "missing" if received is None else received
        reason = f"HTTP {status} but events_received {count}"
        return result(Verdict.RETRYABLE, reason, retry_after)
    readable = "" if doc is not None else " with an unreadable body"
    if status == 429 and retry_after is None:
        retry_after = THROTTLE_DELAY_S
    return result(status_verdict(status), f"HTTP {status}{readable}", retry_after)
