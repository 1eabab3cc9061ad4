"""What every delivery attempt does at its end, pixel fire or outbound postback alike."""

import asyncio
import logging
import time
import traceback
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory

from activities.late_rows import keep_writing
from relay.core.crypto import KeyRingError
from relay.core.metrics import attempt_finished
from relay.destinations.classify import Classification
from relay.domain.models import Click, Conversion, DeliveryAttempt, Pixel, Verdict
from relay.store.attempt_log import AttemptLog
from relay.store.click_cache import ClickCache
from relay.store.config_cache import ConfigCache
from relay.store.pool import STORE_ERRORS

T = TypeVar("T")
A = TypeVar("A", bound=DeliveryAttempt)
_STORE_RETRY_DELAYS_S = (0.5, 1.0, 2.0)
# How long an attempt waits for its row to be stored (see log_attempt): with the send's
# own timeout (at most 5 s) it stays inside the activity's 10 s.
LOG_WAIT_S = 3.0

RESPONSE_LOG_LIMIT = 8 * 1024
RETRY_DELAY_CAP_S = 3600.0  # the default of RELAY_RETRY_DELAY_CAP_S


def bounded(response_text: str) -> tuple[str, bool]:
    """The response body as logged (at most 8 KiB) and whether it was cut."""
    return response_text[:RESPONSE_LOG_LIMIT], len(response_text) > RESPONSE_LOG_LIMIT


@dataclass
class AttemptOutcome:
    """How one attempt ended, as its log row records it."""

    verdict: Classification
    elapsed_ms: int = 0
    status: int | None = None
    response_text: str = ""
    notes: list[str] = field(default_factory=list)
    truncated: bool = False  # the answer was longer than what response_text kept


def unfinished_row(
    conversion_id: str, planned: Conversion | None, attempt_offset: int
) -> dict[str, Any]:
    """The fields every attempt row has before anything is loaded, so an attempt that
    fails at once is logged too; the rest is filled in as the attempt goes."""
    info = activity.info()
    return {
        "conversion_id": conversion_id,
        "campaign_id": planned.campaign_id if planned else "",
        "attempt": info.attempt + attempt_offset,
        "request_body": "",
        "http_status": None,
        "response_body": "",
        "response_truncated": False,
        "verdict": "",
        "success": False,
        "error": "",
        "duration_ms": 0,
        "scheduled_at": info.current_attempt_scheduled_time,
    }


def failure_verdict(exc: Exception) -> Classification:
    """The verdict of an attempt that raised instead of getting an answer classified.

    Permanent only when no retry can mend it: a deleted pixel or postback (raised as a
    non-retryable ApplicationError), a token the key ring cannot open, a value that cannot
    be encoded for the wire. Anything else unexpected stays retryable. Reasons never
    quote the exception's message, which may hold a piece of a token or a URL's secret.
    """
    kind = type(exc).__name__
    if isinstance(exc, ApplicationError):
        return Classification(
            Verdict.PERMANENT if exc.non_retryable else Verdict.RETRYABLE, exc.message
        )
    if isinstance(exc, KeyRingError):
        # Its messages name a key ID at most, never key material or the token.
        return Classification(Verdict.PERMANENT, f"access token cannot be decrypted: {exc}")
    if isinstance(exc, UnicodeEncodeError):
        return Classification(
            Verdict.PERMANENT,
            "request not sendable: UnicodeEncodeError (a header value such as the access "
            "token has non-ASCII characters; save a valid token)",
        )
    if isinstance(exc, STORE_ERRORS):
        return Classification(Verdict.RETRYABLE, f"store unavailable: {kind}")
    return Classification(Verdict.RETRYABLE, f"unexpected error: {kind}")


async def attempt_outcome(attempt: Awaitable[AttemptOutcome]) -> AttemptOutcome:
    """Run an attempt; whatever it raises becomes an outcome too, so a row is written."""
    started = time.monotonic()
    try:
        return await attempt
    except Exception as exc:
        verdict = failure_verdict(exc)
        # The type and where it was raised, not the message (see failure_verdict): with
        # the warning when no retry mends it, at DEBUG when Temporal retries anyway.
        where = "".join(traceback.format_tb(exc.__traceback__))
        if verdict.verdict == Verdict.RETRYABLE:
            activity.logger.debug("attempt failed: %s\n%s", verdict.reason, where)
        else:
            activity.logger.warning("attempt failed: %s\n%s", verdict.reason, where)
        return AttemptOutcome(verdict, int((time.monotonic() - started) * 1000))


async def log_attempt(
    row: A, log: AttemptLog[A], outcome: AttemptOutcome, kind: str, cap_s: float
) -> A | None:
    """Write the attempt's row, then return on delivery or raise for Temporal to retry or
    stop (see raise_for_verdict).

    The row's write waits at most LOG_WAIT_S. A delivered attempt whose row is not stored
    by then returns the row instead: the send succeeded and must not be repeated because
    bookkeeping failed, so the workflow records the row from the result. A failed attempt
    raises its own verdict either way (its retry is due anyway); its row, if not stored in
    time, is written later by this worker (activities/late_rows.py)."""
    verdict = outcome.verdict
    row.http_status = outcome.status
    row.response_body, cut = bounded(outcome.response_text)
    row.response_truncated = cut or outcome.truncated
    row.verdict = verdict.verdict.value
    row.success = verdict.verdict == Verdict.DELIVERED
    row.error = "; ".join(([] if row.success else [verdict.reason]) + outcome.notes)
    row.duration_ms = outcome.elapsed_ms
    sent = outcome.status is not None or outcome.elapsed_ms > 0
    attempt_finished(kind, row.verdict, outcome.elapsed_ms, sent)
    _log_line(row, kind, verdict)
    # A failed attempt's row not stored in time is written later by this worker; a
    # delivered one's goes back to the workflow (returned below).
    stored = await store_within(lambda: log.submit(row), LOG_WAIT_S, keep=not row.success)
    if not stored:
        activity.logger.warning(
            "%s attempt %d of %s: its row was not stored within %.1f s (%s)",
            kind,
            row.attempt,
            row.conversion_id,
            LOG_WAIT_S,
            "recorded by the workflow" if row.success else "written later by this worker",
        )
    raise_for_verdict(verdict, verdict.reason, kind, cap_s)
    return None if stored else row


def _log_line(row: DeliveryAttempt, kind: str, verdict: Classification) -> None:
    """One line per attempt: INFO when delivered, WARNING otherwise, with the conversion,
    the destination, the attempt, the verdict and its reason (never a secret: reasons
    are built from answers with the token removed, and name exception types only)."""
    target = getattr(row, "pixel_name", "") or getattr(row, "postback_id", "")
    level = logging.INFO if verdict.verdict == Verdict.DELIVERED else logging.WARNING
    activity.logger.log(
        level,
        "%s to %s %r, attempt %d: %s%s",
        row.conversion_id,
        kind,
        target,
        row.attempt,
        verdict.verdict.value,
        f": {verdict.reason}" if verdict.verdict != Verdict.DELIVERED else "",
    )


def raise_for_verdict(
    verdict: Classification, reason: str, kind: str, cap_s: float = RETRY_DELAY_CAP_S
) -> None:
    """Return on delivery; otherwise raise so Temporal retries (honouring the platform's
    requested delay, at most `cap_s`) or, for a permanent failure, stops retrying."""
    if verdict.verdict == Verdict.DELIVERED:
        return
    wait = min(verdict.retry_after_s, cap_s) if verdict.retry_after_s else None
    delay = timedelta(seconds=wait) if wait else None
    raise ApplicationError(
        reason,
        type=f"{kind}_{verdict.verdict.value}",
        non_retryable=verdict.verdict == Verdict.PERMANENT,
        next_retry_delay=delay,
        # An answer classified is no surprise: logged above in one line, so Temporal's
        # own "Completing activity as failed" with its traceback goes to DEBUG.
        category=ApplicationErrorCategory.BENIGN,
    )


async def store_call(call: Callable[..., T], *args: Any) -> T:
    """A blocking ClickHouse call, off the event loop, retried briefly in place: a blip in
    the store must not use up one of the platform's three delivery attempts."""
    for delay in _STORE_RETRY_DELAYS_S:
        try:
            return await asyncio.to_thread(call, *args)
        except STORE_ERRORS as exc:
            activity.logger.warning("store call failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(delay)
    return await asyncio.to_thread(call, *args)


async def store_submit(submit: Callable[[], "Future[None]"]) -> None:
    """A group-committed write, awaited without holding a thread; retried like store_call."""
    for delay in _STORE_RETRY_DELAYS_S:
        try:
            return await asyncio.wrap_future(submit())
        except STORE_ERRORS as exc:
            activity.logger.warning("store write failed (%s); retrying", type(exc).__name__)
            await asyncio.sleep(delay)
    return await asyncio.wrap_future(submit())


async def store_within(
    submit: Callable[[], "Future[None]"], budget_s: float, keep: bool = False
) -> bool:
    """A group-committed write, retried on store errors until it is stored (True) or
    `budget_s` has passed (False). A write still queued when the budget ends is left to
    its writer (never cancelled: a cancelled caller's row is still written). `keep`: a
    row not stored in time is written later by this worker (activities/late_rows.py)."""
    deadline = time.monotonic() + budget_s
    delays = iter(_STORE_RETRY_DELAYS_S)
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            if keep:
                keep_writing(submit, None)
            return False
        write = asyncio.wrap_future(submit())
        try:
            await asyncio.wait_for(asyncio.shield(write), left)
            return True
        except TimeoutError:
            if keep:
                keep_writing(submit, write)
            else:
                write.add_done_callback(_consume)
            return False
        except STORE_ERRORS as exc:
            activity.logger.warning("store write failed (%s); retrying", type(exc).__name__)
        await asyncio.sleep(min(next(delays, _STORE_RETRY_DELAYS_S[-1]), max(0.0, left)))


def _consume(write: "asyncio.Future[None]") -> None:
    """Read a late write's outcome, so an error is not reported as never retrieved."""
    if not write.cancelled():
        write.exception()


async def cached_pixel(config: ConfigCache, pixel_id: str) -> tuple[Pixel, str]:
    """The pixel and its encrypted token from the configuration cache; a pixel that is
    not there after a reload was deleted, which no retry mends."""
    for load in (config.current, config.after_miss):
        snapshot = await load()
        pixel, sealed = snapshot.pixels.get(pixel_id), snapshot.tokens.get(pixel_id)
        if pixel is not None and sealed is not None:
            return pixel, sealed
    raise ApplicationError(f"pixel {pixel_id} was deleted", non_retryable=True)


async def cached_click(clicks: ClickCache, click_id: str) -> Click | None:
    """The click from memory without leaving the event loop, else read from ClickHouse."""
    return clicks.cached(click_id) or await store_call(clicks.get, click_id)
