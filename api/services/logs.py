"""The delivery logs: every attempt to fire a pixel and to send an outbound postback,
newest first, filtered and paged, times in the workspace's zone; a pixel's health."""

from dataclasses import dataclass
from datetime import datetime, timedelta

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


@dataclass(frozen=True)
class PixelHealth:
    """How a pixel's sends have gone lately, from its delivery attempts (times in the
    workspace's zone)."""

    last_delivered: PixelFire | None  # its newest delivered attempt
    last_failed: PixelFire | None  # its newest failed attempt (retries included)
    failed_recently: int  # its failed attempts since `since`
    since: datetime


async def pixel_health(runtime: Runtime, pixel_id: str, now: datetime) -> PixelHealth:
    """A pixel's newest delivered and failed attempts, and its failed attempts over the 24
    hours before `now`, read from the pixel log as `GET /api/pixel-logs` reads it."""
    since = now - timedelta(hours=24)
    delivered = await pixel_logs(runtime, Window(success=True, limit=1), pixel_id=pixel_id)
    failed = await pixel_logs(runtime, Window(success=False, limit=1), pixel_id=pixel_id)
    recent = await pixel_logs(
        runtime, Window(success=False, since=since, limit=1), pixel_id=pixel_id
    )
    return PixelHealth(
        last_delivered=delivered.items[0] if delivered.items else None,
        last_failed=failed.items[0] if failed.items else None,
        failed_recently=recent.total,
        since=since,
    )
