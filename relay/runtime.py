"""The long-lived clients one Relay process holds, opened and closed together."""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from temporalio.client import Client as TemporalClient

from relay.core.crypto import KeyRing
from relay.core.settings import Settings
from relay.core.supervision import backoff, supervise
from relay.domain.models import PixelFire, PostbackAttempt
from relay.ingest.accept import Admission, Intake
from relay.ingest.forwarder import Forwarder, workflow_starter
from relay.ingest.inbox import Inbox
from relay.ingest.rerecord import rerecord_missing
from relay.store.attempt_log import AttemptLog, pixel_fire_log, postback_log
from relay.store.click_cache import ClickCache
from relay.store.config import ConfigStore
from relay.store.config_cache import ConfigCache
from relay.store.database import apply_migrations, check_schema, open_clickhouse
from relay.store.network_keys import hash_clear_postback_keys, report_stranded_postback_keys
from relay.store.pool import ClickHouse
from relay.store.retention import apply_retention
from relay.store.traffic import TrafficStore
from relay.temporal import search_attributes
from relay.temporal.setup import connect_temporal

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass
class Runtime:
    """What the API and the worker share: settings, clients, stores, secrets, and the
    configuration cache (`embedded`: every configuration write goes through this process)."""

    settings: Settings
    clickhouse: ClickHouse
    temporal: TemporalClient
    keys: KeyRing
    admin_token: str
    embedded: bool = False
    config_cache: ConfigCache = field(init=False)
    clicks: ClickCache = field(init=False)
    intake: Intake | None = None  # set while the API's inbox and forwarder run

    def __post_init__(self) -> None:
        self.config_cache = ConfigCache(
            ConfigStore(self.clickhouse), self.settings.config_refresh_s, self.embedded
        )
        self.clicks = ClickCache(TrafficStore(self.clickhouse))

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking store call off the event loop."""
        return await asyncio.to_thread(call, *args)

    @property
    def config(self) -> ConfigStore:
        """The configuration tables; writes through it refresh this process's cache."""
        return ConfigStore(self.clickhouse, on_change=self.config_cache.invalidate)

    @property
    def traffic(self) -> TrafficStore:
        return TrafficStore(self.clickhouse)

    @property
    def fire_log(self) -> AttemptLog[PixelFire]:
        return pixel_fire_log(self.clickhouse)

    @property
    def postback_log(self) -> AttemptLog[PostbackAttempt]:
        return postback_log(self.clickhouse)


# How far back a start looks for conversions ClickHouse lost (relay/ingest/rerecord.py): the last
# writes before an OS crash or power cut, were they not yet on disk.
RERECORD_WINDOW_S = 86_400.0


async def _rerecord_at_start(runtime: Runtime) -> None:
    """Once per start, in the background: the conversions accepted within the window whose
    row ClickHouse lacks are recorded again from their runs' histories (nothing is sent).
    Retried with backoff while Temporal or ClickHouse cannot answer."""
    failures = 0
    while True:
        try:
            await rerecord_missing(
                runtime.temporal,
                runtime.clickhouse,
                runtime.settings.inbox_file,
                RERECORD_WINDOW_S,
            )
            return
        except Exception as exc:
            failures += 1
            log.warning(
                "re-recording conversions missing from ClickHouse failed (%s: %s); retrying",
                type(exc).__name__,
                exc,
            )
            await asyncio.sleep(backoff(failures))


@asynccontextmanager
async def running_intake(runtime: Runtime) -> AsyncIterator[Intake]:
    """The API's durable inbox and its forwarder, running until the block ends. Entries
    not yet forwarded stay in the inbox file for the next start."""
    settings = runtime.settings
    # Raises InboxInUse if another process has this inbox file open.
    inbox = Inbox(settings.inbox_file, settings.inbox_capacity, settings.inbox_memory_days)
    task: asyncio.Task[None] | None = None
    rerecord: asyncio.Task[None] | None = None
    try:
        shared = (
            settings.shared_dedup if settings.shared_dedup is not None else not runtime.embedded
        )
        # Eager start hands the first task straight to a worker on this client (`relay up`).
        indexed = await search_attributes.available(runtime.temporal, runtime.temporal.namespace)
        start = workflow_starter(runtime.temporal, settings.task_queue, True, shared, indexed)
        forwarder = Forwarder(inbox, start, settings.forwarder_concurrency)
        intake = Intake(
            runtime.config_cache,
            runtime.traffic,
            inbox,
            runtime.keys,
            settings.inbox_retry_after_s,
            forwarder,
            Admission(settings.postback_max_in_flight),
            clicks=runtime.clicks,
        )
        # Never ends by itself: a failure is logged with its cause, reported on /readyz and
        # restarted with backoff.
        task = asyncio.create_task(
            supervise("forwarder", forwarder.run, forwarder.part), name="forwarder"
        )
        rerecord = asyncio.create_task(_rerecord_at_start(runtime), name="rerecord")
        runtime.intake = intake
        yield intake
    finally:
        runtime.intake = None
        if rerecord is not None:
            rerecord.cancel()
            await asyncio.gather(rerecord, return_exceptions=True)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            forwarder.part.forget()
        await inbox.close()


@asynccontextmanager
async def open_runtime(
    settings: Settings,
    temporal_address: str,
    keys: KeyRing,
    admin_token: str,
    embedded: bool = False,
) -> AsyncIterator[Runtime]:
    """Open ClickHouse and Temporal; close ClickHouse on exit. On ClickHouse: the embedded
    `relay up` applies the migrations (one process, under the migration lock); `relay api`
    and `relay worker` (not `embedded`) only check the schema and raise SchemaMismatch when
    it is not this release's (`relay migrate` is their single applier). Then the
    personal-data retention, and clear postback keys are hashed."""
    clickhouse = open_clickhouse(
        settings.clickhouse_dsn,
        settings.clickhouse_database,
        settings.clickhouse_pool_size,
        settings.clickhouse_batch_linger_ms / 1000,
    )
    try:
        if embedded:
            apply_migrations(clickhouse)
        else:
            check_schema(clickhouse)
        apply_retention(
            clickhouse, settings.click_pii_retention_days, settings.delivery_pii_retention_days
        )
        hash_clear_postback_keys(clickhouse, keys)
        report_stranded_postback_keys(clickhouse, keys)
        temporal = await connect_temporal(settings, temporal_address, keys)
        yield Runtime(settings, clickhouse, temporal, keys, admin_token, embedded)
    finally:
        clickhouse.close()
