"""The outbound postback activity: expand the traffic source's URL template, send it once,
log the attempt with secrets in the URL redacted."""

import json
import time
import uuid

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.attempts import (
    RETRY_DELAY_CAP_S,
    AttemptOutcome,
    attempt_outcome,
    cached_click,
    log_attempt,
    read_start,
    store_call,
    unfinished_row,
)
from relay.destinations.addresses import DestinationRefused
from relay.destinations.classify import parse_retry_after
from relay.destinations.postback import classify_postback, expand, redact_url
from relay.domain.models import (
    Click,
    Conversion,
    OutboundPostback,
    PostbackAttempt,
    PostbackAttemptRow,
    Verdict,
)
from relay.domain.personal_data import erase_macros
from relay.domain.workflow_io import SendPostbackInput, SendPostbackResult
from relay.store.attempt_log import AttemptLog
from relay.store.click_cache import ClickCache
from relay.store.config_cache import ConfigCache
from relay.store.rows import utc_now
from relay.store.traffic import TrafficStore


def macro_values(conversion: Conversion, click: Click | None) -> dict[str, str]:
    """The value of every macro for one conversion (product.md section 3)."""
    payout = "" if conversion.payout is None else format(conversion.payout.normalize(), "f")
    values = {
        "click_id": conversion.click_id,
        "conversion_id": conversion.conversion_id,
        # The event ID Meta and TikTok dedup on: a tracker that dedups takes it as its
        # transaction ID, so a re-send after a crash counts once there too.
        "event_id": conversion.conversion_id,
        "payout": payout,
        "currency": conversion.currency,
        "event": conversion.event_type,
        "txid": conversion.txid,
        # The click's own external ID; the postback's is stored only hashed.
        "external_id": click.external_id if click else "",
    }
    for n in range(1, 6):
        values[f"sub{n}"] = getattr(click, f"sub{n}") if click else ""
    return values


class OutboundActivities:
    """Bound at worker start to the stores and one pooled HTTP client."""

    def __init__(
        self,
        config: ConfigCache,
        traffic: TrafficStore,
        clicks: ClickCache,
        log: AttemptLog[PostbackAttempt],
        http: httpx.AsyncClient,
        retry_cap_s: float = RETRY_DELAY_CAP_S,
    ) -> None:
        self._retry_cap_s = retry_cap_s
        self._config = config
        self._traffic = traffic
        self._clicks = clicks
        self._log = log
        self._http = http

    async def _postback(self, postback_id: str) -> OutboundPostback:
        for load in (self._config.current, self._config.after_miss):
            postback = (await load()).postbacks.get(postback_id)
            if postback is not None:
                return postback
        raise ApplicationError(f"postback {postback_id} was deleted", non_retryable=True)

    async def _load(
        self, input: SendPostbackInput
    ) -> tuple[Conversion, Click | None, OutboundPostback]:
        conversion = input.conversion or await store_call(
            self._traffic.get_conversion, input.conversion_id
        )
        if conversion is None:
            raise ApplicationError(f"conversion {input.conversion_id} not readable yet")
        postback = await self._postback(input.target.postback_id)
        click = await cached_click(self._clicks, conversion.click_id)
        return conversion, click, postback

    @activity.defn
    async def send_outbound_postback(self, input: SendPostbackInput) -> SendPostbackResult:
        """One attempt at one outbound postback; returns the HTTP status, raises to retry.

        The attempt's row is written however it ends, a postback deleted since the plan
        or any unexpected error included."""
        planned = input.conversion
        attempt = PostbackAttemptRow(
            **unfinished_row(input.conversion_id, planned, input.attempt_offset),
            attempt_id=str(uuid.uuid4()),
            postback_id=input.target.postback_id,
            event_type=planned.event_type if planned else "",
            method=input.target.method,
            url="",
            sent_at=utc_now(),
        )
        outcome = await attempt_outcome(self._attempt(input, attempt))
        unlogged = await log_attempt(attempt, self._log, outcome, "postback", self._retry_cap_s)
        return SendPostbackResult(
            http_status=outcome.status or 0, attempt=attempt.attempt, unlogged=unlogged
        )

    async def _attempt(
        self, input: SendPostbackInput, attempt: PostbackAttemptRow
    ) -> AttemptOutcome:
        conversion, click, postback = await self._load(input)
        values = macro_values(conversion, click)
        url = expand(postback.url_template, values)
        body = values if postback.method == "POST" else None
        attempt.campaign_id, attempt.event_type = conversion.campaign_id, conversion.event_type
        attempt.method, attempt.url = postback.method, redact_url(url)
        attempt.url_erased = redact_url(expand(postback.url_template, erase_macros(values)))
        attempt.request_body = json.dumps(body) if body else ""
        started = time.monotonic()
        status: int | None = None
        response_text, truncated = "", False
        error: Exception | None = None
        retry_after = None
        try:
            async with self._http.stream(postback.method, url, json=body) as response:
                status = response.status_code
                retry_after = parse_retry_after(response.headers.get("retry-after"))
                response_text, truncated = await read_start(response)
        except (httpx.HTTPError, httpx.InvalidURL, UnicodeError, DestinationRefused) as exc:
            # InvalidURL, UnicodeError: a host no request can go to, saved before templates
            # were checked for it; permanent (classify_postback).
            error = exc
        verdict = classify_postback(status, error)
        if verdict.verdict == Verdict.RETRYABLE and retry_after is not None:
            verdict = type(verdict)(verdict.verdict, verdict.reason, retry_after)
        elapsed = int((time.monotonic() - started) * 1000)
        return AttemptOutcome(verdict, elapsed, status, response_text, truncated=truncated)
