"""The outbound postback activity: the traffic source's URL template filled and sent once
through the postback destination (relay/destinations/postback/, activities/sending.py),
the attempt logged with secrets in the URL redacted."""

import uuid

import httpx
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.attempts import (
    AttemptOutcome,
    attempt_outcome,
    cached_click,
    log_attempt,
    store_call,
    unfinished_row,
)
from activities.sending import exchange
from relay.core.settings import Settings
from relay.destinations.facts import SendFacts
from relay.destinations.registry import POSTBACKS
from relay.domain.models import (
    Click,
    Conversion,
    OutboundPostback,
    PostbackAttempt,
    PostbackAttemptRow,
)
from relay.domain.workflow_io import SendPostbackInput, SendPostbackResult
from relay.store.attempt_log import AttemptLog
from relay.store.click_cache import ClickCache
from relay.store.config_cache import ConfigCache
from relay.store.rows import utc_now
from relay.store.traffic import TrafficStore


class OutboundActivities:
    """Bound at worker start to the stores and one pooled HTTP client."""

    def __init__(
        self,
        settings: Settings,
        config: ConfigCache,
        traffic: TrafficStore,
        clicks: ClickCache,
        log: AttemptLog[PostbackAttempt],
        http: httpx.AsyncClient,
    ) -> None:
        self._settings = settings
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
        unlogged = await log_attempt(
            attempt, self._log, outcome, "postback", self._settings.retry_delay_cap_s
        )
        return SendPostbackResult(
            http_status=outcome.status or 0, attempt=attempt.attempt, unlogged=unlogged
        )

    async def _attempt(
        self, input: SendPostbackInput, attempt: PostbackAttemptRow
    ) -> AttemptOutcome:
        conversion, click, postback = await self._load(input)
        attempt.campaign_id, attempt.event_type = conversion.campaign_id, conversion.event_type
        # A postback names the event type and sends no event time (it has no age limit).
        facts = SendFacts(conversion, click, conversion.event_type, 0)
        outgoing = POSTBACKS.build(facts, postback, self._settings)
        attempt.method, attempt.url = outgoing.method, outgoing.logged_url
        attempt.url_erased = outgoing.erased_url
        attempt.request_body = outgoing.logged_body
        return await exchange(POSTBACKS, self._http, outgoing, "", [])
