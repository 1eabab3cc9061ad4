"""What every delivery attempt does at its end, pixel fire or outbound postback alike."""

from datetime import timedelta

from temporalio.exceptions import ApplicationError

from relay.platforms.classify import Classification, Verdict

RESPONSE_LOG_LIMIT = 8 * 1024


def bounded(response_text: str) -> tuple[str, bool]:
    """The response body as logged (at most 8 KiB) and whether it was cut."""
    return response_text[:RESPONSE_LOG_LIMIT], len(response_text) > RESPONSE_LOG_LIMIT


def raise_for_verdict(verdict: Classification, reason: str, kind: str) -> None:
    """Return on delivery; otherwise raise so Temporal retries (honouring the platform's
    requested delay) or, for a permanent failure, stops retrying."""
    if verdict.verdict == Verdict.DELIVERED:
        return
    delay = timedelta(seconds=verdict.retry_after_s) if verdict.retry_after_s else None
    raise ApplicationError(
        reason,
        type=f"{kind}_{verdict.verdict.value}",
        non_retryable=verdict.verdict == Verdict.PERMANENT,
        next_retry_delay=delay,
    )
