"""Reading the delivery logs: pixel fire and outbound postback attempts, in the
workspace's timezone (the behaviour is api/services/logs.py's)."""

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import AdminDep, Bounded, RuntimeDep, WindowDep
from api.services import logs
from api.services.listing import Page
from relay.domain.models import PixelFire, Platform, PostbackAttempt

router = APIRouter(prefix="/api", tags=["reading"], dependencies=[AdminDep])


@router.get("/pixel-logs", response_model=Page[PixelFire])
async def pixel_logs(
    runtime: RuntimeDep,
    window: WindowDep,
    conversion_id: str | None = None,
    campaign_id: str | None = None,
    pixel_id: str | None = None,
    platform: Platform | None = None,
    network_id: Bounded = None,
    event_name: Annotated[
        str | None, Query(description="the event name sent, e.g. Purchase", max_length=200)
    ] = None,
) -> Page[PixelFire]:
    """Pixel delivery attempts, newest first, filtered and paged."""
    return await logs.pixel_logs(
        runtime,
        window,
        conversion_id=conversion_id,
        campaign_id=campaign_id,
        pixel_id=pixel_id,
        platform=platform,
        network_id=network_id,
        event_name=event_name,
    )


@router.get("/postback-logs", response_model=Page[PostbackAttempt])
async def postback_logs(
    runtime: RuntimeDep,
    window: WindowDep,
    conversion_id: str | None = None,
    campaign_id: str | None = None,
    postback_id: str | None = None,
    network_id: Bounded = None,
    event_type: Annotated[
        str | None, Query(description="the conversion's event, e.g. sale", max_length=200)
    ] = None,
) -> Page[PostbackAttempt]:
    """Outbound postback attempts, newest first, filtered and paged."""
    return await logs.postback_logs(
        runtime,
        window,
        conversion_id=conversion_id,
        campaign_id=campaign_id,
        postback_id=postback_id,
        network_id=network_id,
        event_type=event_type,
    )
