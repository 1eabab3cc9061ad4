"""Redelivery workflows: one conversion's failed sends, or every conversion a filter takes.

`RedeliveryWorkflow` plans from the stores (a local activity), runs the conversion
workflow's own send activities again for each failed send (same pixel, same event name,
same `event_id`: the platforms deduplicate), each new attempt numbered after the logged
ones, then records the conversion's new delivery state. `BulkRedeliveryWorkflow` runs one
such child per conversion, at most `rate_per_s` started a second, exposes its progress by
the `progress` query and continues as new after each page of conversions.
"""

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import TypedSearchAttributes
from temporalio.exceptions import ActivityError, ChildWorkflowError, WorkflowAlreadyStartedError

from workflows.sends import PIXEL_SENDS, POSTBACK_SENDS, why  # a workflow module: imported

with workflow.unsafe.imports_passed_through():
    from activities.redelivery import Candidate, PageInput, RedeliveryActivities
    from activities.states import StateActivities
    from relay.domain.delivery_states import DeliveryState
    from relay.domain.redelivery import (
        LISTED_IDS,
        BulkInput,
        BulkProgress,
        Outcome,
        PlannedPixel,
        PlannedPostback,
        RedeliveryInput,
        RedeliveryResult,
        finish,
        result_of,
    )
    from relay.domain.workflow_io import SendPixelInput, SendPostbackInput
    from relay.temporal.search_attributes import DELIVERY_STATE, by_ids
    from workflows.retry_policies import (
        PERSIST_RETRY,
        PERSIST_TIMEOUT,
    )

Send = tuple[tuple[str, str], str]  # (kind, target ID) and the error ('' when delivered)


@workflow.defn
class RedeliveryWorkflow:
    """One conversion's redelivery; its ID starts with `redeliver_` and names it."""

    @workflow.run
    async def run(self, input: RedeliveryInput) -> RedeliveryResult:
        plan = await workflow.execute_local_activity_method(
            RedeliveryActivities.plan_redelivery,
            input,
            start_to_close_timeout=PERSIST_TIMEOUT,
            retry_policy=PERSIST_RETRY,
        )
        conversion_id = plan.conversion_id
        sends = [self._fire(conversion_id, p) for p in plan.pixels]
        sends += [self._postback(conversion_id, p) for p in plan.postbacks]
        outcomes = dict(await asyncio.gather(*sends))
        state = plan.record.state if plan.record else DeliveryState.PENDING.value
        if plan.sends_anything:
            record = finish(plan, outcomes)
            state = record.state
            await workflow.execute_local_activity_method(
                StateActivities.record_delivery_state,
                record,
                start_to_close_timeout=PERSIST_TIMEOUT,
                retry_policy=PERSIST_RETRY,
            )
        if input.search_attributes:
            workflow.upsert_search_attributes([DELIVERY_STATE.value_set(state)])
        return result_of(plan, outcomes, state)

    async def _fire(self, conversion_id: str, planned: PlannedPixel) -> Send:
        target = planned.target
        input = SendPixelInput(
            conversion_id=conversion_id, target=target, attempt_offset=planned.attempt_offset
        )
        summary = f"redeliver {target.platform.value} {target.event_name} -> {target.pixel_name}"
        send = workflow.execute_activity_method(
            PIXEL_SENDS.activity,
            input,
            start_to_close_timeout=PIXEL_SENDS.timeout,
            retry_policy=PIXEL_SENDS.retry,
            summary=summary,
        )
        return ("pixel", target.pixel_id), await _error(send)

    async def _postback(self, conversion_id: str, planned: PlannedPostback) -> Send:
        target = planned.target
        input = SendPostbackInput(
            conversion_id=conversion_id, target=target, attempt_offset=planned.attempt_offset
        )
        send = workflow.execute_activity_method(
            POSTBACK_SENDS.activity,
            input,
            start_to_close_timeout=POSTBACK_SENDS.timeout,
            retry_policy=POSTBACK_SENDS.retry,
            summary=f"redeliver postback {target.method} {target.postback_id}",
        )
        return ("postback", target.postback_id), await _error(send)


async def _error(send: Awaitable[Any]) -> str:
    """'' once the send is delivered; why it failed for good otherwise (never '')."""
    try:
        await send
    except ActivityError as err:
        return why(err) or "failed"
    return ""


@workflow.defn
class BulkRedeliveryWorkflow:
    """Every conversion a filter takes; its ID starts with `redeliveries_`."""

    def __init__(self) -> None:
        self._progress = BulkProgress()

    @workflow.query
    def progress(self) -> BulkProgress:
        return self._progress

    @workflow.run
    async def run(self, input: BulkInput) -> BulkProgress:
        if input.progress is None:
            total = await workflow.execute_local_activity_method(
                RedeliveryActivities.count_redeliverable,
                input.where,
                start_to_close_timeout=PERSIST_TIMEOUT,
                retry_policy=PERSIST_RETRY,
            )
            self._progress = BulkProgress(total=total)
        else:
            self._progress = input.progress
        page = await workflow.execute_local_activity_method(
            RedeliveryActivities.find_redeliverable,
            PageInput(
                where=input.where,
                after_at=input.after_at,
                after_id=input.after_id,
                limit=input.page_size,
            ),
            start_to_close_timeout=PERSIST_TIMEOUT,
            retry_policy=PERSIST_RETRY,
        )
        await self._redeliver(page, input)
        if len(page) == input.page_size:
            # A full page: more may follow. A fresh run keeps the history short.
            last = page[-1]
            workflow.continue_as_new(
                input.model_copy(
                    update={
                        "progress": self._progress,
                        "after_at": last.received_at,
                        "after_id": last.conversion_id,
                    }
                )
            )
        self._progress.finished = True
        self._progress.total = self._progress.done
        return self._progress

    async def _redeliver(self, page: list[Candidate], input: BulkInput) -> None:
        """One child per conversion, started at most `rate_per_s` a second (the rate bounds
        starts, not completions); returns once every child has ended. Children start in
        batches, one timer per batch: a timer per child cost a workflow task each, which
        held a bulk job to a few children a second whatever the rate."""
        batch = max(1, int(input.rate_per_s))
        interval = timedelta(seconds=batch / input.rate_per_s)
        children: list[asyncio.Future[None]] = []
        for first in range(0, len(page), batch):
            if self._progress.done or children:  # the job's first batch waits for nothing
                await workflow.sleep(interval)
            for candidate in page[first : first + batch]:
                children.append(asyncio.ensure_future(self._child(candidate, input)))
        await asyncio.gather(*children)

    async def _child(self, candidate: Candidate, input: BulkInput) -> None:
        where = input.where
        child = RedeliveryInput(
            conversion_id=candidate.conversion_id,
            pixel_id=where.pixel_id or "",
            platform=where.platform.value if where.platform else "",
            search_attributes=input.search_attributes,
        )
        try:
            result = await workflow.execute_child_workflow(
                RedeliveryWorkflow.run,
                child,
                id=f"{workflow.info().workflow_id}_{candidate.conversion_id}",
                search_attributes=_attributes(candidate) if input.search_attributes else None,
                static_summary=f"redelivery of {candidate.conversion_id}",
            )
            outcome = result.outcome
        except (ChildWorkflowError, WorkflowAlreadyStartedError):
            # Failed as a workflow (e.g. its conversion is gone), or not started: listed.
            outcome = Outcome.FAILED
        self._count(candidate.conversion_id, outcome)

    def _count(self, conversion_id: str, outcome: Outcome) -> None:
        p = self._progress
        p.done += 1
        p.total = max(p.total, p.done)
        if outcome == Outcome.DELIVERED:
            p.delivered += 1
        elif outcome == Outcome.FAILED:
            p.failed += 1
            if len(p.failed_ids) < LISTED_IDS:
                p.failed_ids.append(conversion_id)
        elif outcome == Outcome.NOT_SENDABLE:
            p.not_sendable += 1
            if len(p.not_sendable_ids) < LISTED_IDS:
                p.not_sendable_ids.append(conversion_id)
        else:
            p.nothing_to_send += 1


def _attributes(c: Candidate) -> TypedSearchAttributes:
    """A redelivery is found by the IDs of its conversion, like the conversion itself."""
    return by_ids(c.click_id, c.network_id, c.event_type, c.campaign_id)
