"""The delivery logs: every attempt to fire a pixel and to send an outbound postback,
newest first, filtered and paged, times in the workspace's zone."""

from api.services.listing import Page, Window, in_zone
from api.services.settings import workspace_zone
from relay.domain.models import PixelFire, Platform, PostbackAttempt
from relay.runtime import Runtime


async def pixel_logs(
    runtime: Runtime,
    window: Window,
    *,
    conversion_id: str | None = None,
    campaign_id: str | None = None,
    pixel_id: str | None = None,
    platform: Platform | None = None,
    network_id: str | None = None,
    event_name: str | None = None,
) -> Page[PixelFire]:
    """Pixel delivery attempts, newest first; `network_id` keeps the attempts of that
    network's conversions, `event_name` is the event sent (e.g. Purchase)."""
    zone = await workspace_zone(runtime)
    where = window.filter(
        zone,
        conversion_network=network_id,
        conversion_id=conversion_id,
        campaign_id=campaign_id,
        pixel_id=pixel_id,
        platform=platform.value if platform else None,
        event_name=event_name,
    )
    items, total = await runtime.run(runtime.fire_log.search, where, window.limit, window.offset)
    return Page[PixelFire](
        items=[in_zone(f, zone) for f in items],
        total=total,
        limit=window.limit,
        offset=window.offset,
    )


async def postback_logs(
    runtime: Runtime,
    window: Window,
    *,
    conversion_id: str | None = None,
    campaign_id: str | None = None,
    postback_id: str | None = None,
    network_id: str | None = None,
    event_type: str | None = None,
) -> Page[PostbackAttempt]:
    """Outbound postback attempts, newest first; `network_id` keeps the attempts of that
    network's conversions, `event_type` is the conversion's event (e.g. sale)."""
    zone = await workspace_zone(runtime)
    where = window.filter(
        zone,
        conversion_network=network_id,
        conversion_id=conversion_id,
        campaign_id=campaign_id,
        postback_id=postback_id,
        event_type=event_type,
    )
    log = runtime.postback_log
    items, total = await runtime.run(log.search, where, window.limit, window.offset)
    return Page[PostbackAttempt](
        items=[in_zone(p, zone) for p in items],
        total=total,
        limit=window.limit,
        offset=window.offset,
    )
