"""Classify a platform response as delivered, retryable or permanent (platforms.md 1.6, 2.5).

The body decides first, the HTTP status second: Meta can answer 200 with an `error`
object and TikTok answers 200 with a non-zero `code` on failure.

Where a response neither confirms delivery nor names an error (a 2xx with an unreadable
body, or Meta's `events_received` 0 or missing) the verdict is RETRYABLE: the retry policy
bounds the attempts, and the platform deduplicates a resend by `event_id` + event name,
so a retry cannot double count, while a wrong PERMANENT would give up on a conversion.
"""

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from relay.domain.models import Verdict

# Graph API codes to wait and retry on, and codes that need a fix in config or payload.
META_RETRYABLE_CODES = frozenset({1, 2, 4, 17, 341, 368, 613, 80004})
META_PERMANENT_CODES = frozenset({3, 10, 100, 102, 190, 506, *range(200, 300)})
TIKTOK_RETRYABLE_CODES = frozenset({40100, 40700, *range(50000, 60000)})
# Throttling: without a Retry-After, wait this long rather than the policy's 2 s backoff,
# which would spend the three attempts inside the rate-limit window.
META_THROTTLE_CODES = frozenset({4, 17, 341, 613, 80004})
TIKTOK_THROTTLE_CODES = frozenset({40100})
THROTTLE_DELAY_S = 60.0
_REASON_MAX = 300


@dataclass(frozen=True)
class Classification:
    """A verdict, a short reason for the attempt log, and the server's requested delay.

    `retry_after_s` is set only on RETRYABLE verdicts, from a `Retry-After` header.
    """

    verdict: Verdict
    reason: str
    retry_after_s: float | None = None


# A wait longer than the platforms' 7-day event window is not a real request to wait: it is
# treated as absent (an invalid value is too), like `Retry-After: 1e12` (31,700 years).
ABSURD_RETRY_AFTER_S = 7 * 86_400


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` value (delta-seconds or HTTP-date), >= 0; None
    when absent, invalid or absurd (longer than ABSURD_RETRY_AFTER_S)."""
    if value is None or not value.strip():
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:  # RFC 9110 dates are GMT
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds) or seconds > ABSURD_RETRY_AFTER_S:
        return None
    return max(seconds, 0.0)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    # httpx.Headers is case-insensitive, a plain dict is not.
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _json_object(body: bytes) -> dict[str, object] | None:
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _result(verdict: Verdict, reason: str, retry_after_s: float | None) -> Classification:
    delay = retry_after_s if verdict is Verdict.RETRYABLE else None
    return Classification(verdict, reason[:_REASON_MAX], delay)


def _status_verdict(status: int) -> Verdict:
    # Reached only when the body confirmed nothing: a 2xx is then ambiguous.
    if 200 <= status < 300 or status in (408, 429) or status >= 500:
        return Verdict.RETRYABLE
    return Verdict.PERMANENT


def _meta_error(
    status: int, error: Mapping[str, object], retry_after: float | None
) -> Classification:
    code, subcode = _int(error.get("code")), _int(error.get("error_subcode"))
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
        verdict = _status_verdict(status)
    return _result(verdict, reason, retry_after)


def classify_meta(status: int, body: bytes, headers: Mapping[str, str]) -> Classification:
    """Classify a Meta CAPI response: delivered only on 2xx with `events_received` >= 1.

    An `error` object decides by `is_transient` and its code (retryable: 1, 2, 4, 17, 341,
    368, 613, 80004; permanent: 3, 10, 100, 102, 190, 200-299, 506). Without one, 5xx,
    408 and 429 retry, other 4xx are permanent.
    """
    retry_after = parse_retry_after(_header(headers, "retry-after"))
    doc = _json_object(body)
    error = doc.get("error") if doc is not None else None
    if isinstance(error, dict):
        return _meta_error(status, error, retry_after)
    if doc is not None and 200 <= status < 300:
        received = _int(doc.get("events_received"))
        if received is not None and received >= 1:
            return _result(Verdict.DELIVERED, f"meta events_received {received}", None)
        count = "missing" if received is None else received
        reason = f"HTTP {status} but events_received {count}"
        return _result(Verdict.RETRYABLE, reason, retry_after)
    readable = "" if doc is not None else " with an unreadable body"
    if status == 429 and retry_after is None:
        retry_after = THROTTLE_DELAY_S
    return _result(_status_verdict(status), f"HTTP {status}{readable}", retry_after)


def classify_tiktok(status: int, body: bytes, headers: Mapping[str, str]) -> Classification:
    """Classify a TikTok response by its JSON `code`, HTTP errors first.

    HTTP 5xx, 408 and 429 retry whatever the body says. Code 0 is delivered; 20001 is
    delivered too, as integrators treat it (its meaning is UNCONFIRMED, platforms.md 2.5).
    Codes 40100 (throttled), 40700 and 5xxxx retry; every other code is permanent.
    """
    retry_after = parse_retry_after(_header(headers, "retry-after"))
    doc = _json_object(body)
    code = _int(doc.get("code")) if doc is not None else None
    if retry_after is None and (status == 429 or code in TIKTOK_THROTTLE_CODES):
        retry_after = THROTTLE_DELAY_S
    detail = f"tiktok code {code}: {doc.get('message', '') if doc else ''}"
    if status in (408, 429) or status >= 500:
        suffix = f", {detail}" if code is not None else ""
        return _result(Verdict.RETRYABLE, f"HTTP {status}{suffix}", retry_after)
    if code is None:
        return _result(_status_verdict(status), f"HTTP {status} without a code", retry_after)
    if code in (0, 20001) and 200 <= status < 300:
        note = " (treated as success; UNCONFIRMED)" if code == 20001 else ""
        return _result(Verdict.DELIVERED, detail + note, None)
    if code in TIKTOK_RETRYABLE_CODES:
        return _result(Verdict.RETRYABLE, detail, retry_after)
    return _result(Verdict.PERMANENT, f"HTTP {status}, {detail}", None)


def classify_transport_error(exc: Exception) -> Classification:
    """Classify an exception raised while sending (no response was received).

    Timeouts and network errors retry. A request httpx refuses to send (bad URL or scheme,
    an illegal header) is permanent. The reason names only the exception type: httpx
    messages can quote request headers, and the TikTok token travels in one.
    """
    kind = type(exc).__name__
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL | httpx.LocalProtocolError):
        return Classification(Verdict.PERMANENT, f"request not sendable: {kind}")
    if isinstance(exc, httpx.TimeoutException):
        return Classification(Verdict.RETRYABLE, f"timeout: {kind}")
    return Classification(Verdict.RETRYABLE, f"transport error: {kind}")
