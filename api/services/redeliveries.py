"""Redelivery: send a conversion's failed fires and postbacks again, one conversion or every
conversion a filter takes, as Temporal workflows (workflows/redelivery.py), and read how a
redelivery stands."""

import uuid
from collections.abc import Awaitable
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict
from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.service import RPCError, RPCStatusCode

from api.services.listing import Time, aware
from api.services.settings import workspace_zone
from relay.core.errors import Conflict, InvalidField, NotFound, Unavailable
from relay.domain.delivery_states import DeliveryState
from relay.domain.models import Platform
from relay.domain.redelivery import (
    BULK_PREFIX,
    Action,
    BulkInput,
    BulkProgress,
    NotRedeliverable,
    RedeliveryFilter,
    RedeliveryInput,
    RedeliveryResult,
    SendAction,
    plan_redelivery,
    redelivery_id,
)
from relay.runtime import Runtime
from relay.store.delivery_states import DeliveryStates
from relay.store.redeliveries import Redeliveries
from relay.store.rows import utc_now
from relay.temporal import search_attributes
from workflows.redelivery import BulkRedeliveryWorkflow, RedeliveryWorkflow


class RedeliverBody(BaseModel):
    """Which send to redeliver; neither: every failed fire and outbound postback."""

    model_config = ConfigDict(extra="forbid")
    pixel_id: str | None = None
    postback_id: str | None = None


class Follow(BaseModel):
    """Where to follow a redelivery."""

    api: str  # GET this path of the API
    temporal_ui: str  # this path of the Temporal UI lists it
    temporal_cli: str


class RedeliveryOut(BaseModel):
    conversion_id: str
    workflow_id: str | None  # None when nothing is to be sent
    sends: list[SendAction]  # every send considered, with what is done with it
    not_sendable: list[SendAction]  # those too old for the platforms: not sent
    follow: Follow | None = None


class RedeliveriesBody(BaseModel):
    """The conversions to redeliver: finished ones whose delivery state is `state` (both
    failed and partial if not given), received in [since, until) (naive times are in the
    workspace's timezone), narrowed by campaign, network, pixel or platform."""

    model_config = ConfigDict(extra="forbid")
    state: Literal["failed", "partial"] | None = None
    campaign_id: str | None = None
    network_id: str | None = None
    pixel_id: str | None = None
    platform: Platform | None = None
    since: Time | None = None
    until: Time | None = None


class BulkOut(BaseModel):
    id: str  # the bulk redelivery's workflow ID
    matching: int  # conversions the filter takes now
    follow: Follow


class CountOut(BaseModel):
    matching: int  # conversions the filter takes now: what a redelivery would start with


class RedeliveryStatus(BaseModel):
    id: str
    kind: Literal["bulk", "conversion"]
    status: str  # RUNNING, COMPLETED, FAILED, TERMINATED, ...
    progress: BulkProgress | None = None  # a bulk redelivery's
    result: RedeliveryResult | None = None  # one conversion's, once completed


def follow(runtime: Runtime, workflow_id: str) -> Follow:
    """Where the workflow `workflow_id` is followed: the API, the Temporal UI, the CLI."""
    namespace = runtime.temporal.namespace
    query = quote(f'WorkflowId = "{workflow_id}"')
    return Follow(
        api=f"/api/redeliveries/{workflow_id}",
        temporal_ui=f"/namespaces/{namespace}/workflows?query={query}",
        temporal_cli=f"temporal workflow describe --workflow-id {workflow_id}",
    )


def temporal_ui_link(runtime: Runtime, workflow_id: str) -> str | None:
    """The Temporal UI's list of runs with this workflow ID, if the UI's address is known:
    `relay up`'s UI under the console (/ui/temporal, decoded for the signed-in), else
    RELAY_TEMPORAL_UI_URL's."""
    base = runtime.settings.temporal_ui_url
    if base is None and runtime.embedded:
        base = "/ui/temporal"
    if base is None:
        return None
    return base.rstrip("/") + follow(runtime, workflow_id).temporal_ui


async def start_redelivery(
    runtime: Runtime, conversion_id: str, wanted: RedeliverBody, dry_run: bool = False
) -> RedeliveryOut:
    """Plan the redelivery and start its workflow if it sends anything (`workflow_id` None
    if not, or with `dry_run`: the plan alone); the API's route and the console's Redeliver
    button both call this."""
    if wanted.pixel_id and wanted.postback_id:
        raise InvalidField("give pixel_id or postback_id, not both", "postback_id")
    conversion = await runtime.run(runtime.traffic.get_conversion, conversion_id)
    if conversion is None:
        raise NotFound(f"conversion {conversion_id!r} is not recorded", "conversion_id")
    record = await runtime.run(DeliveryStates(runtime.clickhouse).get, conversion_id)
    fires = await runtime.run(runtime.fire_log.for_conversion, conversion_id)
    postbacks = await runtime.run(runtime.postback_log.for_conversion, conversion_id)
    input = RedeliveryInput(
        conversion_id=conversion_id,
        pixel_id=wanted.pixel_id or "",
        postback_id=wanted.postback_id or "",
    )
    try:
        plan = plan_redelivery(
            input,
            conversion,
            record,
            fires,
            postbacks,
            utc_now(),
            runtime.settings.max_event_age_days,
        )
    except NotRedeliverable as exc:
        if exc.param == "conversion_id":
            raise Conflict(str(exc), exc.param) from None
        raise InvalidField(str(exc), exc.param) from None
    out = RedeliveryOut(
        conversion_id=conversion_id,
        workflow_id=None,
        sends=plan.actions,
        not_sendable=[a for a in plan.actions if a.action == Action.NOT_SENDABLE],
    )
    if not plan.sends_anything or dry_run:
        return out
    target = wanted.pixel_id or wanted.postback_id or ""
    workflow_id = redelivery_id(conversion_id, len(fires) + len(postbacks), target)
    indexed = await _indexed(runtime)
    input.search_attributes = indexed
    namespace = runtime.temporal.namespace
    link = quote(f'WorkflowId = "{conversion_id}"')
    # The same request twice at once starts one workflow (same ID, the running one is
    # used); once it has sent, its attempts are logged and the next gets a new ID.
    await _start(
        runtime.temporal.start_workflow(
            RedeliveryWorkflow.run,
            input,
            id=workflow_id,
            task_queue=runtime.settings.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
            id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
            search_attributes=search_attributes.at_start(conversion) if indexed else None,
            static_summary=f"redelivery of {conversion_id}",
            static_details=f"Redelivery of conversion "
            f"[{conversion_id}](/namespaces/{namespace}/workflows?query={link})",
        )
    )
    out.workflow_id = workflow_id
    out.follow = follow(runtime, workflow_id)
    return out


async def _start(start: Awaitable[object]) -> None:
    try:
        await start
    except RPCError as exc:
        raise Unavailable(f"Temporal did not start the redelivery: {exc.message}") from None


async def _indexed(runtime: Runtime) -> bool:
    return await search_attributes.available(runtime.temporal, runtime.temporal.namespace)


async def _filter(runtime: Runtime, body: RedeliveriesBody) -> RedeliveryFilter:
    """The store's filter from the body; `until` not later than `since` is a 422."""
    zone = await workspace_zone(runtime)
    since, until = aware(body.since, zone), aware(body.until, zone)
    if since is not None and until is not None and since >= until:
        raise InvalidField("until must be later than since", "until")
    where = RedeliveryFilter(
        campaign_id=body.campaign_id,
        network_id=body.network_id,
        pixel_id=body.pixel_id,
        platform=body.platform,
        since=since,
        until=until,
    )
    if body.state:
        where.states = [DeliveryState(body.state)]
    return where


async def count_matching(runtime: Runtime, body: RedeliveriesBody) -> CountOut:
    """How many conversions a bulk redelivery with this filter would take now."""
    where = await _filter(runtime, body)
    return CountOut(matching=await runtime.run(Redeliveries(runtime.clickhouse).count, where))


async def redeliver_many(runtime: Runtime, body: RedeliveriesBody) -> BulkOut:
    """Start one workflow that redelivers every conversion the filter takes, at most
    RELAY_REDELIVERY_RATE_PER_S a second; `until` not later than `since` is a 422."""
    where = await _filter(runtime, body)
    matching = await runtime.run(Redeliveries(runtime.clickhouse).count, where)
    workflow_id = f"{BULK_PREFIX}{utc_now():%Y%m%dT%H%M%S}_{uuid.uuid4().hex[:8]}"
    input = BulkInput(
        where=where,
        rate_per_s=runtime.settings.redelivery_rate_per_s,
        search_attributes=await _indexed(runtime),
    )
    await _start(
        runtime.temporal.start_workflow(
            BulkRedeliveryWorkflow.run,
            input,
            id=workflow_id,
            task_queue=runtime.settings.task_queue,
            static_summary=f"bulk redelivery of {matching} conversions",
        )
    )
    return BulkOut(id=workflow_id, matching=matching, follow=follow(runtime, workflow_id))


async def redelivery_status(runtime: Runtime, redelivery_id: str) -> RedeliveryStatus:
    """A redelivery's status: a bulk one's progress, or one conversion's result once it
    has ended; a 404 naming `redelivery_id` for a workflow that is not a redelivery."""
    handle = runtime.temporal.get_workflow_handle(redelivery_id)
    try:
        described = await handle.describe()
        status = described.status or WorkflowExecutionStatus.RUNNING
        out = RedeliveryStatus(id=redelivery_id, kind="conversion", status=status.name)
        if described.workflow_type == "BulkRedeliveryWorkflow":
            bulk = runtime.temporal.get_workflow_handle_for(
                BulkRedeliveryWorkflow.run, redelivery_id
            )
            out.kind = "bulk"
            if status == WorkflowExecutionStatus.COMPLETED:
                out.progress = await bulk.result()
            else:
                out.progress = await bulk.query(BulkRedeliveryWorkflow.progress)
        elif described.workflow_type == "RedeliveryWorkflow":
            if status == WorkflowExecutionStatus.COMPLETED:
                one = runtime.temporal.get_workflow_handle_for(
                    RedeliveryWorkflow.run, redelivery_id
                )
                out.result = await one.result()
        else:
            raise _not_a_redelivery(redelivery_id)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise _not_a_redelivery(redelivery_id) from None
        raise Unavailable(f"Temporal did not answer: {exc.message}") from None
    return out


def _not_a_redelivery(redelivery_id: str) -> NotFound:
    return NotFound(f"no redelivery {redelivery_id!r}", "redelivery_id")
