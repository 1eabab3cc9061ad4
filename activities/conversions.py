"""Activities that record a conversion and plan its deliveries (ClickHouse only)."""

from pydantic import ValidationError
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.attempts import store_call
from relay.conversions.plan import fires_for, pixel_targets
from relay.domain.events import is_reversal
from relay.domain.models import CustomConversion, OutboundPostback
from relay.domain.workflow_io import (
    ConversionInput,
    DeliveryPlan,
    PersistResult,
    PlanInput,
    PostbackTarget,
)
from relay.store.config import ConfigStore
from relay.store.traffic import TrafficStore


class ConversionActivities:
    """Bound to the stores at worker start."""

    def __init__(self, traffic: TrafficStore, config: ConfigStore) -> None:
        self._traffic = traffic
        self._config = config

    @activity.defn
    async def persist_conversion(self, input: ConversionInput) -> PersistResult:
        """Write the conversion row once; a retry, or a reset of this workflow, writes
        nothing new. A row with another receipt time was written for an earlier postback
        of the same ID (a resend after Temporal's retention): that one was handled then,
        so this run must not deliver it again."""
        conversion = input.conversion
        received = await store_call(self._traffic.recorded_receipt, conversion.conversion_id)
        if received is None:
            run_id = activity.info().workflow_run_id or ""
            await store_call(self._traffic.record_conversion, conversion, run_id)
            return PersistResult()
        return PersistResult(recorded_by_earlier_run=received != conversion.received_at)

    @activity.defn
    async def plan_delivery(self, input: PlanInput) -> DeliveryPlan:
        """Pixels: the custom conversions for this event, else the primary pixels (a
        reversal fires none). Postbacks: those listing this event, or listing none."""
        try:
            pixels = await store_call(self._config.list_pixels, input.campaign_id)
            customs = await store_call(
                self._config.in_campaign, CustomConversion, input.campaign_id
            )
            postbacks = await store_call(
                self._config.in_campaign, OutboundPostback, input.campaign_id
            )
        except ValidationError as exc:
            # A configuration row this code cannot read will not read better on a retry.
            raise ApplicationError(
                f"campaign {input.campaign_id} configuration is unreadable: {exc}",
                non_retryable=True,
            ) from None
        reversal = is_reversal(input.event_type)
        return DeliveryPlan(
            pixels=[] if reversal else pixel_targets(pixels, customs, input.event_type),
            postbacks=[
                PostbackTarget(postback_id=p.id, method=p.method)
                for p in postbacks
                if fires_for(p, input.event_type)
            ],
        )
