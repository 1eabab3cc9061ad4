"""ConversionWorkflow: record first, then fire every planned pixel and postback in parallel.

Deterministic orchestration only; every read and write happens in activities. Runs take one
first step (`prepare_conversion`, a local activity: record, decide and plan). Each send's
first try is a local activity; a try that should be retried continues as a regular activity
with the declared retry policy and the retry window, so retries survive worker restarts and
show in the history as attempts.

Versions: a run takes its branches from the `shape` its input recorded. Each behaviour
tests its floor, the shape it began at (`SHAPED`, `REGULAR_SENDS` below), with `>=`; none
tests `CURRENT_SHAPE`, what new runs start with, so bumping that for the next change leaves
every recorded run on its branches (docs/workflow-changes.md). From `REGULAR_SENDS` (2)
runs send as regular activities from the first try: each send's completion is in the
history as soon as it happens, so after a crash only the sends then in flight go again (a
local activity's result is recorded only when its workflow task completes, and a crash
before that re-ran every send of the task). A delivered send whose attempt row could not
be written returns the row, recorded here by its own activity. Shape 1 runs replay with
local first tries; both shapes take the other branches without markers. Runs started
before shapes replay on the branches their `workflow.patched` markers chose: before the
inbox (persist, then plan, as activities), before local first tries, before recorded
delivery states.
"""

import asyncio
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

from workflows.sends import (
    PIXEL_SENDS,
    POSTBACK_SENDS,
    Channel,
    local_first,
    retry_delay,
    retryable,
    why,
)
from workflows.summary import run_summary

with workflow.unsafe.imports_passed_through():
    from activities.conversions import ConversionActivities
    from activities.prepare import PrepareActivities
    from activities.records import RecordActivities
    from activities.states import StateActivities
    from relay.domain.delivery_states import DeliveryState, finished
    from relay.domain.events import is_reversal
    from relay.domain.models import Conversion
    from relay.domain.workflow_io import (
        CLAIM_WORKFLOW,
        CONVERSION_WORKFLOW,
        ClaimInput,
        ConversionInput,
        ConversionResult,
        DeliveryPlan,
        FireOutcome,
        PixelTarget,
        PlanInput,
        PostbackOutcome,
        PostbackTarget,
        Prepared,
        SendPixelInput,
        SendPixelResult,
        SendPostbackInput,
        SendPostbackResult,
    )
    from relay.temporal.search_attributes import CAMPAIGN_ID, DELIVERY_STATE
    from workflows.retry_policies import (
        PERSIST_RETRY,
        PERSIST_TIMEOUT,
        PLAN_RETRY,
        PLAN_TIMEOUT,
        PREPARE_TIMEOUT,
    )

PREPARE_PATCH = "prepare-local-activity"
LOCAL_FIRST_PATCH = "send-first-try-local"
# Runs record how their delivery ended (delivery_states) and, when started with search
# attributes, upsert their campaign and delivery state.
STATE_PATCH = "delivery-state"
REVERSAL = "reversal: fires no pixel, only postbacks configured for it"
# Shape floors: the shape each behaviour began at. Test `input.shape >= FLOOR`, never
# against CURRENT_SHAPE (a moving value: recorded runs would change branch when it moves).
SHAPED = 1  # the first shape: no patch markers
REGULAR_SENDS = 2  # the shape whose sends are regular activities from the first try


@workflow.defn(name=CONVERSION_WORKFLOW)
class ConversionWorkflow:
    """One conversion, workflow ID = conversion ID."""

    @workflow.run
    async def run(self, input: ConversionInput) -> ConversionResult:
        self._shaped = input.shape >= SHAPED
        self._regular_sends = input.shape >= REGULAR_SENDS
        self._indexed = False  # whether this run upserts search attributes
        self._announced = False  # whether its campaign was upserted
        self._campaign_id = ""
        if self._uses(PREPARE_PATCH):
            return await self._prepared_run(input)
        return await self._legacy_run(input)

    def _uses(self, patch: str) -> bool:
        """Whether this run takes a change: a shaped run takes all of them, without a
        marker; an older run follows the marker it recorded (or records it, the first time)."""
        return self._shaped or workflow.patched(patch)

    async def _prepared_run(self, input: ConversionInput) -> ConversionResult:
        prepared: Prepared = await workflow.execute_local_activity_method(
            PrepareActivities.prepare_conversion,
            input,
            start_to_close_timeout=PREPARE_TIMEOUT,
            retry_policy=PERSIST_RETRY,
        )
        conversion = prepared.conversion
        self._campaign_id = conversion.campaign_id
        result = ConversionResult(conversion_id=conversion.conversion_id)
        tracked = self._uses(STATE_PATCH)
        self._indexed = tracked and input.search_attributes
        if prepared.skipped:
            result.skipped = prepared.skipped
            self._upsert(_skipped_state(conversion))
            workflow.set_current_details(run_summary(result))
            return result
        if not self._shaped:
            self._upsert()  # older runs: the campaign at once
        window = timedelta(seconds=prepared.retry_window_s)
        fires = [
            self._fire(conversion.conversion_id, t, conversion, window) for t in prepared.pixels
        ]
        postbacks = [
            self._postback(conversion.conversion_id, t, conversion, window)
            for t in prepared.postbacks
        ]
        return await self._deliver(result, conversion, fires, postbacks, tracked)

    async def _legacy_run(self, input: ConversionInput) -> ConversionResult:
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
        fires = [self._fire(conversion.conversion_id, t) for t in plan.pixels]
        postbacks = [self._postback(conversion.conversion_id, t) for t in plan.postbacks]
        tracked = workflow.patched(STATE_PATCH)
        return await self._deliver(result, conversion, fires, postbacks, tracked)

    async def _deliver(
        self,
        result: ConversionResult,
        conversion: Conversion,
        fires: list[Coroutine[Any, Any, FireOutcome]],
        postbacks: list[Coroutine[Any, Any, PostbackOutcome]],
        tracked: bool,
    ) -> ConversionResult:
        # Every pixel fire and outbound postback runs in parallel; none waits on another.
        fire_outcomes, postback_outcomes = await asyncio.gather(
            asyncio.gather(*fires), asyncio.gather(*postbacks)
        )
        result.fires = list(fire_outcomes)
        result.postbacks = list(postback_outcomes)
        if is_reversal(conversion.event_type):
            result.skipped = REVERSAL
        # The Temporal UI's "current details": no command, so every history replays.
        workflow.set_current_details(run_summary(result))
        if tracked:
            await self._record_state(result)
        return result

    def _upsert(self, state: DeliveryState | str | None = None) -> None:
        """Search attributes (IDs and the state only): the campaign, once decided and not
        yet upserted, and the delivery state when it changes. A shaped run upserts once
        when it ends, or earlier, before it first waits to retry a send."""
        if not self._indexed:
            return
        updates = []
        if self._campaign_id and not self._announced:
            updates.append(CAMPAIGN_ID.value_set(self._campaign_id))
            self._announced = True
        if state is not None:
            updates.append(DELIVERY_STATE.value_set(str(state)))
        if updates:
            workflow.upsert_search_attributes(updates)

    def _before_retry_wait(self) -> None:
        if self._shaped and not self._announced:
            self._upsert()

    async def _record_state(self, result: ConversionResult) -> None:
        """Every send is over: record how each ended and the conversion's state, so the
        API can say which failed for good and the Temporal UI can find them."""
        record = finished(result)
        if self._shaped:
            self._upsert(record.state)
        elif self._indexed:
            workflow.upsert_search_attributes([DELIVERY_STATE.value_set(record.state)])
        await workflow.execute_local_activity_method(
            StateActivities.record_delivery_state,
            record,
            start_to_close_timeout=PERSIST_TIMEOUT,
            retry_policy=PERSIST_RETRY,
        )

    async def _fire(
        self,
        conversion_id: str,
        target: PixelTarget,
        conversion: Conversion | None = None,
        window: timedelta | None = None,
    ) -> FireOutcome:
        input = SendPixelInput(conversion_id=conversion_id, target=target, conversion=conversion)
        summary = f"{target.platform.value} {target.event_name} -> {target.pixel_name}"
        delivered, error = await self._send(PIXEL_SENDS, input, summary, window)
        # A fire that failed for good leaves the workflow completed, marked for redelivery.
        return FireOutcome(target=target, delivered=delivered, error=error)

    async def _postback(
        self,
        conversion_id: str,
        target: PostbackTarget,
        conversion: Conversion | None = None,
        window: timedelta | None = None,
    ) -> PostbackOutcome:
        input = SendPostbackInput(conversion_id=conversion_id, target=target, conversion=conversion)
        summary = f"postback {target.method} {target.postback_id}"
        delivered, error = await self._send(POSTBACK_SENDS, input, summary, window)
        return PostbackOutcome(target=target, delivered=delivered, error=error)

    async def _send(
        self,
        channel: Channel,
        input: SendPixelInput | SendPostbackInput,
        summary: str,
        window: timedelta | None,
    ) -> tuple[bool, str]:
        """One send to any destination, with its channel's activity and retry policy:
        whether it was delivered, and why not. Runs with a retry window (`window`) retry
        within it; shape 1 runs try first as a local activity, then wait durably."""
        if window is not None and self._local_first_try():
            started = workflow.now()
            sent, error = await local_first(channel.activity, input, summary)
            if error is None or not retryable(error):
                if sent is not None:
                    await self._record_unlogged(sent)
                return error is None, why(error)
            self._before_retry_wait()
            await workflow.sleep(max(retry_delay(error), channel.first_wait_floor))
            input.attempt_offset = 1
            window -= workflow.now() - started
        policy, schedule_to_close = (
            channel.within(window) if window is not None else (channel.retry, None)
        )
        try:
            sent = await workflow.execute_activity_method(
                channel.activity,
                input,
                start_to_close_timeout=channel.timeout,
                schedule_to_close_timeout=schedule_to_close,
                retry_policy=policy,
                summary=summary,
            )
        except ActivityError as err:
            return False, why(err)
        await self._record_unlogged(sent)
        return True, ""

    def _local_first_try(self) -> bool:
        """Shape 1 (and older runs that recorded the patch) try first as a local activity."""
        return not self._regular_sends and self._uses(LOCAL_FIRST_PATCH)

    async def _record_unlogged(self, sent: SendPixelResult | SendPostbackResult) -> None:
        """The delivered attempt's row, when the send could not store it in time."""
        if sent.unlogged is None:
            return
        record = (
            RecordActivities.record_pixel_fire
            if isinstance(sent, SendPixelResult)
            else RecordActivities.record_postback_attempt
        )
        await workflow.execute_activity(
            record.__name__,  # the activity's name: the row's type matches the one chosen
            sent.unlogged,
            start_to_close_timeout=PERSIST_TIMEOUT,
            retry_policy=PERSIST_RETRY,
            summary=f"record attempt {sent.attempt}",
        )


def _skipped_state(conversion: Conversion) -> DeliveryState:
    if not conversion.is_duplicate and not conversion.attributed:
        return DeliveryState.UNATTRIBUTED
    # A duplicate, or a conversion an earlier run of this ID already delivered.
    return DeliveryState.DUPLICATE


@workflow.defn(name=CLAIM_WORKFLOW)
class DedupClaimWorkflow:
    """Holds a dedup claim: its workflow ID is the claim, its memo names the holder.

    Temporal's workflow-ID uniqueness is linearizable, so of N concurrent postbacks
    competing for one claim exactly one starts this workflow. Used when several API
    replicas accept postbacks (relay/ingest/claims.py), and by runs recorded before the inbox.
    """

    @workflow.run
    async def run(self, input: ClaimInput) -> str:
        return input.conversion_id
