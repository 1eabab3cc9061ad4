"""What every destination's answer classifier shares: the verdict with its reason and
requested delay, `Retry-After`, transport errors, reading a JSON answer (each platform's
own rules: relay/destinations/<platform>/answers.py, platforms.md 1.6, 2.5).

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

# Throttling: without a Retry-After, wait this long rather than the policy's 2 s backoff,
# which would spend the three attempts inside the rate-limit window.
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


def header(headers: Mapping[str, str], name: str) -> str | None:
    # httpx.Headers is case-insensitive, a plain dict is not.
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def json_object(body: bytes) -> dict[str, object] | None:
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return parsed if isinstance(parsed, dict) else None


def int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def result(verdict: Verdict, reason: str, retry_after_s: float | None) -> Classification:
    delay = retry_after_s if verdict is Verdict.RETRYABLE else None
    return Classification(verdict, reason[:_REASON_MAX], delay)


def status_verdict(status: int) -> Verdict:
    # Reached only when the body confirmed nothing: a 2xx is then ambiguous.
    if 200 <= status < 300 or status in (408, 429) or status >= 500:
        return Verdict.RETRYABLE
    return Verdict.PERMANENT


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
