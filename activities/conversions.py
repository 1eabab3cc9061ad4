"""Activities that record a conversion and plan its deliveries (ClickHouse only)."""

import asyncio

from temporalio import activity

from relay.models import Pixel
from relay.platforms.event_names import meta_event_name, tiktok_event_name
from relay.store.config import ConfigStore
from relay.store.traffic import TrafficStore
from relay.workflow_io import (
    ConversionInput,
    DeliveryPlan,
    PersistResult,
    PixelTarget,
    PlanInput,
)


def platform_event_name(pixel: Pixel, event_type: str) -> str:
    """The pixel's override, else the default mapping of product.md section 7."""
    if pixel.event_name:
        return pixel.event_name
    if pixel.platform == "meta":
        return meta_event_name(event_type)
    return tiktok_event_name(event_type, pixel.tiktok_api)


class ConversionActivities:
    """Bound to the stores at worker start."""

    def __init__(self, traffic: TrafficStore, config: ConfigStore) -> None:
        self._traffic = traffic
        self._config = config

    @activity.defn
    async def persist_conversion(self, input: ConversionInput) -> PersistResult:
        """Write the conversion row once. A retry of this run writes nothing new; a row
        written by another run (a workflow started again after Temporal's retention)
        means the conversion was handled before and must not be delivered again."""
        run_id = activity.info().workflow_run_id or ""
        conversion_id = input.conversion.conversion_id
        recorded_by = await asyncio.to_thread(self._traffic.recorded_run, conversion_id)
        if recorded_by is None:
            await asyncio.to_thread(self._traffic.record_conversion, input.conversion, run_id)
            return PersistResult()
        return PersistResult(recorded_by_earlier_run=recorded_by != run_id)

    @activity.defn
    async def plan_delivery(self, input: PlanInput) -> DeliveryPlan:
        """The campaign's primary pixels, each with its platform event name."""
        pixels = await asyncio.to_thread(self._config.list_pixels, input.campaign_id)
        targets = [
            PixelTarget(
                pixel_id=p.id,
                platform=p.platform,
                pixel_name=p.name,
                event_name=platform_event_name(p, input.event_type),
            )
            for p in pixels
            if p.primary
        ]
        return DeliveryPlan(pixels=targets)
