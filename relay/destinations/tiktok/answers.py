"""TikTok's answers, classified (platforms.md 2.5): delivered, retryable or permanent."""

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

TIKTOK_RETRYABLE_CODES = frozenset({40100, 40700, *range(50000, 60000)})
TIKTOK_THROTTLE_CODES = frozenset({40100})


def classify_tiktok(status: int, body: bytes, headers: Mapping[str, str]) -> Classification:
    """Classify a TikTok response by its JSON `code`, HTTP errors first.

    HTTP 5xx, 408 and 429 retry whatever the body says. Code 0 is delivered; 20001 is
    delivered too, as integrators treat it (its meaning is UNCONFIRMED, platforms.md 2.5).
    Codes 40100 (throttled), 40700 and 5xxxx retry; every other code is permanent.
    """
    retry_after = parse_retry_after(header(headers, "retry-after"))
    doc = json_object(body)
    code = int_or_none(doc.get("code")) if doc is not None else None
    if retry_after is None and (status == 429 or code in TIKTOK_THROTTLE_CODES):
        retry_after = THROTTLE_DELAY_S
    detail = f"tiktok code {code}: {doc.get('message', '') if doc else ''}"
    if status in (408, 429) or status >= 500:
        suffix = f", {detail}" if code is not None else ""
        return result(Verdict.RETRYABLE, f"HTTP {status}{suffix}", retry_after)
    if code is None:
        return result(status_verdict(status), f"HTTP {status} without a code", retry_after)
    if code in (0, 20001) and 200 <= status < 300:
        note = " (treated as success; UNCONFIRMED)" if code == 20001 else ""
        return result(Verdict.DELIVERED, detail + note, None)
    if code in TIKTOK_RETRYABLE_CODES:
        return result(Verdict.RETRYABLE, detail, retry_after)
    return result(Verdict.PERMANENT, f"HTTP {status}, {detail}", None)
