"""The long-lived clients one Relay process holds, opened and closed together."""

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from temporalio.client import Client as TemporalClient

from relay.crypto import KeyRing
from relay.models import PixelFire, PostbackAttempt
from relay.settings import Settings
from relay.store.attempt_log import AttemptLog, pixel_fire_log, postback_log
from relay.store.config import ConfigStore
from relay.store.database import apply_migrations, open_clickhouse
from relay.store.pool import ClickHouse
from relay.store.traffic import TrafficStore
from relay.temporal_setup import connect_temporal

T = TypeVar("T")


@dataclass
class Runtime:
    """What the API and the worker share: settings, clients, stores, secrets."""

    settings: Settings
    clickhouse: ClickHouse
    temporal: TemporalClient
    keys: KeyRing
    admin_token: str

    async def run(self, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking store call off the event loop."""
        return await asyncio.to_thread(call, *args)

    @property
    def config(self) -> ConfigStore:
        return ConfigStore(self.clickhouse)

    @property
    def traffic(self) -> TrafficStore:
        return TrafficStore(self.clickhouse)

    @property
    def fire_log(self) -> AttemptLog[PixelFire]:
        return pixel_fire_log(self.clickhouse)

    @property
    def postback_log(self) -> AttemptLog[PostbackAttempt]:
        return postback_log(self.clickhouse)


@asynccontextmanager
async def open_runtime(
    settings: Settings, temporal_address: str, keys: KeyRing, admin_token: str
) -> AsyncIterator[Runtime]:
    """Open ClickHouse (applying migrations) and Temporal; close ClickHouse on exit."""
    clickhouse = open_clickhouse(
        settings.clickhouse_dsn, settings.clickhouse_database, settings.clickhouse_pool_size
    )
    try:
        apply_migrations(clickhouse)
        temporal = await connect_temporal(settings, temporal_address)
        yield Runtime(settings, clickhouse, temporal, keys, admin_token)
    finally:
        clickhouse.close()
