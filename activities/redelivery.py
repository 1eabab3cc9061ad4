"""Redelivery activities: plan one conversion's redelivery, find the conversions a bulk
redelivery takes. Both read ClickHouse only."""

from datetime import datetime

from pydantic import BaseModel
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.attempts import store_call
from relay.domain.models import PixelFire, PostbackAttempt
from relay.domain.redelivery import (
    NotRedeliverable,
    RedeliveryFilter,
    RedeliveryInput,
    RedeliveryPlan,
    plan_redelivery,
)
from relay.store.attempt_log import AttemptLog
from relay.store.delivery_states import DeliveryStates
from relay.store.redeliveries import Redeliveries
from relay.store.rows import utc_now
from relay.store.traffic import TrafficStore


class PageInput(BaseModel):
    where: RedeliveryFilter
    after_at: datetime | None = None
    after_id: str = ""
    limit: int = 100


class Candidate(BaseModel):
    """A conversion to redeliver, with the IDs its redelivery is found by in Temporal."""

    conversion_id: str
    received_at: datetime
    click_id: str
    campaign_id: str
    network_id: str
    event_type: str


class RedeliveryActivities:
    """Bound at worker start to the stores."""

    def __init__(
        self,
        traffic: TrafficStore,
        states: DeliveryStates,
        fire_log: AttemptLog[PixelFire],
        postback_log: AttemptLog[PostbackAttempt],
        redeliveries: Redeliveries,
        max_age_days: int,
    ) -> None:
        self._traffic = traffic
        self._states = states
        self._fire_log = fire_log
        self._postback_log = postback_log
        self._redeliveries = redeliveries
        self._max_age_days = max_age_days

    @activity.defn
    async def plan_redelivery(self, input: RedeliveryInput) -> RedeliveryPlan:
        """What to send again, from the recorded states and the attempt logs as they are
        now (a send delivered since the request was made is not sent again)."""
        conversion = await store_call(self._traffic.get_conversion, input.conversion_id)
        if conversion is None:
            raise ApplicationError(
                f"conversion {input.conversion_id} is not recorded", non_retryable=True
            )
        record = await store_call(self._states.get, input.conversion_id)
        fires = await store_call(self._fire_log.for_conversion, input.conversion_id)
        postbacks = await store_call(self._postback_log.for_conversion, input.conversion_id)
        try:
            return plan_redelivery(
                input, conversion, record, fires, postbacks, utc_now(), self._max_age_days
            )
        except NotRedeliverable as exc:
            raise ApplicationError(str(exc), type="not_redeliverable", non_retryable=True) from exc

    @activity.defn
    async def count_redeliverable(self, where: RedeliveryFilter) -> int:
        return await store_call(self._redeliveries.count, where)

    @activity.defn
    async def find_redeliverable(self, input: PageInput) -> list[Candidate]:
        after = (input.after_at, input.after_id) if input.after_at is not None else None
        page = await store_call(self._redeliveries.page, input.where, after, input.limit)
        return [Candidate.model_validate(row) for row in page]
