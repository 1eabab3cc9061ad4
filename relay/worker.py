"""Building the Temporal worker: workflows, activities bound to their clients."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from temporalio.client import Client
from temporalio.worker import Worker

from activities.conversions import ConversionActivities
from activities.delivery import DeliveryActivities
from activities.outbound import OutboundActivities
from relay.crypto import KeyRing
from relay.settings import Settings
from relay.store.attempt_log import pixel_fire_log, postback_log
from relay.store.config import ConfigStore
from relay.store.pool import ClickHouse
from relay.store.traffic import TrafficStore
from workflows.conversion import ConversionWorkflow, DedupClaimWorkflow

WORKFLOWS = [ConversionWorkflow, DedupClaimWorkflow]


def platform_client(base_url: str, timeout_s: float) -> httpx.AsyncClient:
    """One pooled client per platform per worker; the timeout bounds each request."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": "Relay/0.1"},
    )


@asynccontextmanager
async def relay_worker(
    client: Client,
    settings: Settings,
    clickhouse: ClickHouse,
    keys: KeyRing,
    task_queue: str | None = None,
) -> AsyncIterator[Worker]:
    """A configured worker, not yet running; its HTTP clients close when the block ends."""
    config = ConfigStore(clickhouse)
    traffic = TrafficStore(clickhouse)
    async with (
        platform_client(settings.meta_base_url, settings.meta_timeout_s) as meta_http,
        platform_client(settings.tiktok_base_url, settings.tiktok_timeout_s) as tiktok_http,
        httpx.AsyncClient(
            # Redirects are not followed: a 3xx is logged as such, and a redirect cannot
            # take the request to a host the template did not name.
            timeout=httpx.Timeout(settings.postback_timeout_s),
            headers={"User-Agent": "Relay/0.1 (postback)"},
        ) as postback_http,
    ):
        conversions = ConversionActivities(traffic, config)
        delivery = DeliveryActivities(
            settings, config, traffic, pixel_fire_log(clickhouse), keys, meta_http, tiktok_http
        )
        outbound = OutboundActivities(config, traffic, postback_log(clickhouse), postback_http)
        yield Worker(
            client,
            task_queue=task_queue or settings.task_queue,
            workflows=WORKFLOWS,
            activities=[
                conversions.persist_conversion,
                conversions.plan_delivery,
                delivery.send_pixel_event,
                outbound.send_outbound_postback,
            ],
        )
