"""Reading conversions and the pixel fire log, in the workspace's timezone."""

import asyncio
from datetime import datetime
from typing import Annotated, TypeVar
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from api.deps import AdminDep, RuntimeDep
from relay.errors import NotFound
from relay.models import Conversion, PixelFire, Platform
from relay.platforms.event_names import is_reversal
from relay.runtime import Runtime
from relay.store.fire_log import FireFilter

router = APIRouter(prefix="/api", tags=["reading"], dependencies=[AdminDep])

M = TypeVar("M", bound=BaseModel)


class ConversionOut(Conversion):
    reversed: bool = False
    reversed_by: list[str] = Field(default_factory=list)
    reverses: list[str] = Field(default_factory=list)
    fires: list[PixelFire]


class PixelLogPage(BaseModel):
    items: list[PixelFire]
    total: int
    limit: int
    offset: int


async def _zone(runtime: Runtime) -> ZoneInfo:
    name = await asyncio.to_thread(runtime.config.get_setting, "timezone")
    return ZoneInfo(name or "UTC")


def _aware(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A time given without an offset is read in the workspace timezone."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=zone)


def in_zone(model: M, zone: ZoneInfo) -> M:
    """A copy whose datetimes are shown in the workspace timezone (storage stays UTC)."""
    changes = {
        name: value.astimezone(zone)
        for name, value in model.__dict__.items()
        if isinstance(value, datetime)
    }
    return model.model_copy(update=changes)


@router.get("/conversions/{conversion_id}", response_model=ConversionOut)
async def get_conversion(conversion_id: str, runtime: RuntimeDep) -> ConversionOut:
    """One conversion with every delivery attempt of its pixel fires."""
    conversion = await asyncio.to_thread(runtime.traffic.get_conversion, conversion_id)
    if conversion is None:
        raise NotFound(f"conversion {conversion_id!r} is not recorded", "conversion_id")
    fires = await asyncio.to_thread(runtime.fire_log.for_conversion, conversion_id)
    links = await asyncio.to_thread(runtime.traffic.reversal_links, conversion)
    zone = await _zone(runtime)
    reversal = is_reversal(conversion.event_type)
    return ConversionOut(
        **in_zone(conversion, zone).model_dump(),
        reversed=bool(links) and not reversal,
        reversed_by=[] if reversal else links,
        reverses=links if reversal else [],
        fires=[in_zone(f, zone) for f in fires],
    )


@router.get("/pixel-logs", response_model=PixelLogPage)
async def pixel_logs(
    runtime: RuntimeDep,
    conversion_id: str | None = None,
    campaign_id: str | None = None,
    pixel_id: str | None = None,
    platform: Platform | None = None,
    success: bool | None = None,
    since: Annotated[datetime | None, Query(description="ISO 8601, inclusive")] = None,
    until: Annotated[datetime | None, Query(description="ISO 8601, exclusive")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> PixelLogPage:
    """Delivery attempts, newest first, filtered and paged."""
    zone = await _zone(runtime)
    where = FireFilter(
        conversion_id=conversion_id,
        campaign_id=campaign_id,
        pixel_id=pixel_id,
        platform=platform.value if platform else None,
        success=success,
        since=_aware(since, zone),
        until=_aware(until, zone),
    )
    items, total = await asyncio.to_thread(runtime.fire_log.search, where, limit, offset)
    return PixelLogPage(
        items=[in_zone(f, zone) for f in items], total=total, limit=limit, offset=offset
    )
