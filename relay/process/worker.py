"""Building the Temporal worker: workflows, activities bound to their clients."""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import httpx
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker, WorkflowRunner
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from activities.conversions import ConversionActivities
from activities.pixel_sends import DeliveryActivities
from activities.postback_sends import OutboundActivities
from activities.prepare import PrepareActivities
from activities.records import RecordActivities
from activities.redelivery import RedeliveryActivities
from activities.states import StateActivities
from relay.core.crypto import KeyRing
from relay.core.logs import BindIds
from relay.core.settings import Settings
from relay.destinations import registry
from relay.destinations.checked_http import checked_client
from relay.store.attempt_log import pixel_fire_log, postback_log
from relay.store.click_cache import ClickCache
from relay.store.config import ConfigStore
from relay.store.config_cache import ConfigCache
from relay.store.delivery_states import DeliveryStates
from relay.store.pool import ClickHouse
from relay.store.redeliveries import Redeliveries
from relay.store.traffic import TrafficStore
from relay.temporal.payload_codec import worker_data_converter
from workflows.conversion import ConversionWorkflow, DedupClaimWorkflow
from workflows.redelivery import BulkRedeliveryWorkflow, RedeliveryWorkflow

WORKFLOWS = [ConversionWorkflow, DedupClaimWorkflow, RedeliveryWorkflow, BulkRedeliveryWorkflow]

# Modules the sandbox hands to workflows as they are instead of re-importing them for every
# new workflow run: Relay's own (deterministic data models and pure functions; workflow
# code does no I/O) and the libraries they import.
PASSTHROUGH = ("relay", "activities", "pydantic", "pydantic_core", "httpx", "phonenumbers")


def workflow_runner(sandboxed: bool) -> WorkflowRunner:
    """The sandbox re-imports the workflow module for every new run (measured: a quarter of
    the worker's CPU under load). Relay's workflow code does no I/O and reads no clock; the
    test suite runs it sandboxed, so a change that breaks determinism fails there."""
    if not sandboxed:
        return UnsandboxedWorkflowRunner()
    restrictions = SandboxRestrictions.default.with_passthrough_modules(*PASSTHROUGH)
    return SandboxedWorkflowRunner(restrictions=restrictions)


def platform_client(base_url: str, timeout_s: float) -> httpx.AsyncClient:
    """One pooled client per platform per worker; the timeout bounds each request."""
    return httpx.AsyncClient(
        base_url=base_url,
        timeout=httpx.Timeout(timeout_s),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20),
        headers={"User-Agent": "Relay/0.1"},
    )


def worker_client(client: Client, settings: Settings, keys: KeyRing) -> Client:
    """`client` (same connection, so eager starts still reach this worker) with the
    worker's data converter: it refuses inputs not encrypted with the key ring, which
    only someone outside Relay could have started (relay/temporal/payload_codec.py)."""
    config = client.config()
    config["data_converter"] = worker_data_converter(keys, settings.temporal_plaintext_until)
    return Client(**config)


@asynccontextmanager
async def relay_worker(
    client: Client,
    settings: Settings,
    clickhouse: ClickHouse,
    keys: KeyRing,
    task_queue: str | None = None,
    config: ConfigCache | None = None,
    clicks: ClickCache | None = None,
) -> AsyncIterator[Worker]:
    """A configured worker, not yet running; its HTTP clients close when the block ends.

    `config` and `clicks` are the process's caches, shared with the API in `relay up`."""
    store = ConfigStore(clickhouse)
    config = config or ConfigCache(store, settings.config_refresh_s)
    traffic = TrafficStore(clickhouse)
    clicks = clicks or ClickCache(traffic)
    async with (
        AsyncExitStack() as stack,
        checked_client(
            settings.outbound_allowed_networks,
            settings.postback_timeout_s,
            # Identity: the start of the answer is logged as sent, never inflated first.
            {"User-Agent": "Relay/0.1 (postback)", "Accept-Encoding": "identity"},
        ) as postback_http,
    ):
        clients = {
            platform: await stack.enter_async_context(
                platform_client(
                    getattr(settings, destination.base_url_setting),
                    getattr(settings, destination.timeout_setting),
                )
            )
            for platform, destination in registry.PLATFORMS.items()
        }
        legacy = ConversionActivities(traffic, store)
        prepare = PrepareActivities(settings, traffic, clicks, config)
        delivery = DeliveryActivities(
            settings,
            config,
            traffic,
            clicks,
            pixel_fire_log(clickhouse),
            keys,
            clients,
        )
        outbound = OutboundActivities(
            settings,
            config,
            traffic,
            clicks,
            postback_log(clickhouse),
            postback_http,
        )
        redelivery = RedeliveryActivities(
            traffic,
            DeliveryStates(clickhouse),
            pixel_fire_log(clickhouse),
            postback_log(clickhouse),
            Redeliveries(clickhouse),
            settings.max_event_age_days,
        )
        records = RecordActivities(pixel_fire_log(clickhouse), postback_log(clickhouse))
        yield Worker(
            worker_client(client, settings, keys),
            task_queue=task_queue or settings.task_queue,
            workflows=WORKFLOWS,
            activities=[
                prepare.prepare_conversion,
                legacy.persist_conversion,
                legacy.plan_delivery,
                delivery.send_pixel_event,
                outbound.send_outbound_postback,
                StateActivities(DeliveryStates(clickhouse)).record_delivery_state,
                records.record_pixel_fire,
                records.record_postback_attempt,
                redelivery.plan_redelivery,
                redelivery.count_redeliverable,
                redelivery.find_redeliverable,
            ],
            workflow_runner=workflow_runner(settings.workflow_sandbox),
            # Activities a worker takes are started: their timeouts run. Taking no more
            # than it can run keeps a busy process from timing out sends it holds.
            max_concurrent_activities=settings.worker_max_activities,
            max_concurrent_workflow_tasks=settings.worker_max_workflow_tasks,
            max_concurrent_local_activities=settings.worker_max_local_activities,
            max_concurrent_workflow_task_polls=settings.worker_workflow_pollers,
            nonsticky_to_sticky_poll_ratio=0.5,  # half the polls for new runs
            # On shutdown, sends in flight finish and log their attempt; only past this
            # grace are they cancelled (a cancelled send logs nothing and is sent again).
            graceful_shutdown_timeout=timedelta(seconds=settings.worker_shutdown_grace),
            # Each run's conversion and click IDs on its log lines (relay/core/logs.py).
            interceptors=[BindIds()],
        )
