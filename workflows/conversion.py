"""ConversionWorkflow: persist first, then fire every planned pixel in parallel.

Deterministic orchestration only; every read and write happens in activities.
"""

import asyncio

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from activities.conversions import ConversionActivities
    from activities.delivery import DeliveryActivities
    from activities.outbound import OutboundActivities
    from relay.platforms.event_names import is_reversal
    from relay.workflow_io import (
        ClaimInput,
        ConversionInput,
        ConversionResult,
        DeliveryPlan,
        FireOutcome,
        PixelTarget,
        PlanInput,
        PostbackOutcome,
        PostbackTarget,
        SendPixelInput,
        SendPostbackInput,
    )
    from workflows.retry_policies import (
        DELIVERY_RETRY,
        DELIVERY_TIMEOUT,
        OUTBOUND_RETRY,
        OUTBOUND_TIMEOUT,
        PERSIST_RETRY,
        PERSIST_TIMEOUT,
        PLAN_RETRY,
        PLAN_TIMEOUT,
    )


@workflow.defn
class ConversionWorkflow:
    """One conversion, workflow ID = conversion ID."""

    @workflow.run
    async def run(self, input: ConversionInput) -> ConversionResult:
        conversion = input.conversion
        persisted = await workflow.execute_activity_method(
            ConversionActivities.persist_conversion,
            input,
            start_to_close_timeout=PERSIST_TIMEOUT,
            retry_policy=PERSIST_RETRY,
        )
        result = ConversionResult(conversion_id=conversion.conversion_id)
        if persisted.recorded_by_earlier_run:
            result.skipped = "recorded by an earlier run; not delivered again"
            return result
        if conversion.is_duplicate:
            result.skipped = "duplicate of an earlier conversion for this click and event"
            return result
        if not conversion.attributed:
            result.skipped = "unattributed: no click with this ID"
            return result
        plan: DeliveryPlan = await workflow.execute_activity_method(
            ConversionActivities.plan_delivery,
            PlanInput(
                conversion_id=conversion.conversion_id,
                campaign_id=conversion.campaign_id,
                event_type=conversion.event_type,
            ),
            start_to_close_timeout=PLAN_TIMEOUT,
            retry_policy=PLAN_RETRY,
        )
        # Every pixel fire and outbound postback runs in parallel; none waits on another.
        fires = [self._fire(conversion.conversion_id, t) for t in plan.pixels]
        postbacks = [self._postback(conversion.conversion_id, t) for t in plan.postbacks]
        fire_outcomes, postback_outcomes = await asyncio.gather(
            asyncio.gather(*fires), asyncio.gather(*postbacks)
        )
        result.fires = list(fire_outcomes)
        result.postbacks = list(postback_outcomes)
        if is_reversal(conversion.event_type):
            result.skipped = "reversal: fires no pixel, only postbacks configured for it"
        return result

    async def _fire(self, conversion_id: str, target: PixelTarget) -> FireOutcome:
        try:
            await workflow.execute_activity_method(
                DeliveryActivities.send_pixel_event,
                SendPixelInput(conversion_id=conversion_id, target=target),
                start_to_close_timeout=DELIVERY_TIMEOUT,
                retry_policy=DELIVERY_RETRY,
                summary=f"{target.platform.value} {target.event_name} -> {target.pixel_name}",
            )
        except ActivityError as err:
            # A fire that failed for good leaves the workflow completed, marked for redelivery.
            cause = err.cause
            return FireOutcome(target=target, delivered=False, error=str(cause or err))
        return FireOutcome(target=target, delivered=True)

    async def _postback(self, conversion_id: str, target: PostbackTarget) -> PostbackOutcome:
        try:
            await workflow.execute_activity_method(
                OutboundActivities.send_outbound_postback,
                SendPostbackInput(conversion_id=conversion_id, target=target),
                start_to_close_timeout=OUTBOUND_TIMEOUT,
                retry_policy=OUTBOUND_RETRY,
                summary=f"postback {target.method} {target.postback_id}",
            )
        except ActivityError as err:
            return PostbackOutcome(target=target, delivered=False, error=str(err.cause or err))
        return PostbackOutcome(target=target, delivered=True)


@workflow.defn
class DedupClaimWorkflow:
    """Holds a dedup claim: its workflow ID is the claim, its memo names the holder.

    Temporal's workflow-ID uniqueness is linearizable, so of N concurrent postbacks
    competing for one claim exactly one starts this workflow.
    """

    @workflow.run
    async def run(self, input: ClaimInput) -> str:
        return input.conversion_id
