"""Redelivery: send a conversion's failed fires and postbacks again, one conversion or every
conversion a filter takes, as Temporal workflows (workflows/redelivery.py; the behaviour is
api/services/redeliveries.py's)."""

from typing import Annotated

from fastapi import APIRouter, Body, Query, Response

from api.deps import AdminDep, RuntimeDep
from api.openapi import errors
from api.services import redeliveries
from api.services.redeliveries import (
    BulkOut,
    CountOut,
    RedeliverBody,
    RedeliveriesBody,
    RedeliveryOut,
    RedeliveryStatus,
)

router = APIRouter(prefix="/api", tags=["redelivery"], dependencies=[AdminDep])


@router.post(
    "/conversions/{conversion_id}/redeliver",
    response_model=RedeliveryOut,
    status_code=202,
    responses={
        200: {"model": RedeliveryOut, "description": "Nothing to send: no workflow started."},
        **errors(409),
    },
)
async def redeliver(
    conversion_id: str,
    runtime: RuntimeDep,
    response: Response,
    body: Annotated[RedeliverBody | None, Body()] = None,
    dry_run: Annotated[
        bool, Query(description="plan only: 200 with what would be sent, nothing started")
    ] = False,
) -> RedeliveryOut:
    """Send the conversion's failed fires and outbound postbacks again (or the one pixel or
    postback given), with the same `event_id`, as a Temporal workflow: 202 with its ID. A
    send already delivered is not sent again; a fire older than the platforms' limit is
    listed in `not_sendable`. 200 with no workflow when nothing is to be sent (or with
    `dry_run`)."""
    wanted = body or RedeliverBody()
    out = await redeliveries.start_redelivery(runtime, conversion_id, wanted, dry_run)
    if out.workflow_id is None:
        response.status_code = 200
    return out


@router.post("/redeliveries", response_model=BulkOut, status_code=202)
async def redeliver_many(body: RedeliveriesBody, runtime: RuntimeDep) -> BulkOut:
    """Redeliver every conversion the filter takes, as one Temporal workflow that starts at
    most RELAY_REDELIVERY_RATE_PER_S redeliveries a second; follow it with
    GET /api/redeliveries/{id}."""
    return await redeliveries.redeliver_many(runtime, body)


@router.post("/redeliveries/count", response_model=CountOut)
async def count_redeliveries(body: RedeliveriesBody, runtime: RuntimeDep) -> CountOut:
    """How many conversions POST /api/redeliveries with this filter would redeliver now;
    nothing is started (`relay redeliver --dry-run`)."""
    return await redeliveries.count_matching(runtime, body)


@router.get("/redeliveries/{redelivery_id}", response_model=RedeliveryStatus)
async def redelivery_status(redelivery_id: str, runtime: RuntimeDep) -> RedeliveryStatus:
    """A redelivery's status: a bulk one's progress (total, done, delivered, failed, not
    sendable), or one conversion's result once it has ended."""
    return await redeliveries.redelivery_status(runtime, redelivery_id)
