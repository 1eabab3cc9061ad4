"""The long-lived clients one Relay process holds, opened and closed together."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client as ClickHouseClient
from temporalio.client import Client as TemporalClient

from relay.crypto import KeyRing
from relay.settings import Settings
from relay.store.config import ConfigStore
from relay.store.database import apply_migrations, open_clickhouse
from relay.store.fire_log import FireLog
from relay.store.traffic import TrafficStore
from relay.temporal_setup import connect_temporal


@dataclass
class Runtime:
    """What the API and the worker share: settings, clients, stores, secrets."""

    settings: Settings
    clickhouse: ClickHouseClient
    temporal: TemporalClient
    keys: KeyRing
    admin_token: str

    @property
    def config(self) -> ConfigStore:
        return ConfigStore(self.clickhouse)

    @property
    def traffic(self) -> TrafficStore:
        return TrafficStore(self.clickhouse)

    @property
    def fire_log(self) -> FireLog:
        return FireLog(self.clickhouse)


@asynccontextmanager
async def open_runtime(
    settings: Settings, temporal_address: str, keys: KeyRing, admin_token: str
) -> AsyncIterator[Runtime]:
    """Open ClickHouse (applying migrations) and Temporal; close ClickHouse on exit."""
    clickhouse = open_clickhouse(settings.clickhouse_dsn, settings.clickhouse_database)
    try:
        apply_migrations(clickhouse)
        temporal = await connect_temporal(settings, temporal_address)
        yield Runtime(settings, clickhouse, temporal, keys, admin_token)
    finally:
        clickhouse.close()
