"""A ClickHouse outage delays a conversion, never loses it (product.md section 9)."""

import threading
from collections.abc import Sequence
from typing import Any

import clickhouse_connect
from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from relay.store.pool import ClickHouse
from tests.harness import physical_rows, running_relay
from tests.platform_server import PlatformServer


class ClickHouseDown(ClickHouse):
    """The real engine, but the first `failures` conversion writes fail as if it were down."""

    def __init__(self, dsn: str, database: str, failures: int) -> None:
        super().__init__([clickhouse_connect.get_client(dsn=dsn, database=database)])
        self.failures = failures
        self.refused = 0
        self._lock = threading.Lock()

    def insert(self, table: str, rows: Sequence[Sequence[Any]], column_names: list[str]) -> None:
        with self._lock:
            if table == "conversions" and self.refused < self.failures:
                self.refused += 1
                raise ConnectionError("ClickHouse is unreachable (simulated outage)")
        super().insert(table, rows, column_names)


async def test_persist_retries_through_an_outage_and_records_once(
    skipping_env: WorkflowEnvironment,
    clickhouse: ClickHouse,  # requested so the schema exists before the outage starts
    clickhouse_location: tuple[str, str],
    platforms: PlatformServer,
    keys: KeyRing,
) -> None:
    # Each attempt tries the write 4 times in place (activities/attempts.py), so 8 refusals
    # fail two whole attempts of the first step; its retry policy brings the third.
    down = ClickHouseDown(*clickhouse_location, failures=8)
    async with running_relay(skipping_env, down, platforms, keys) as relay:
        network = await relay.network()
        campaign = await relay.campaign()
        pixel = await relay.pixel(campaign["id"], "meta")
        click_id = await relay.click(campaign["id"])
        answer = await relay.postback(key=network["postback_key"], click_id=click_id, txid="O")
        assert answer.status_code == 200  # Temporal has it; ClickHouse can wait
        conversion_id = answer.json()["conversion_id"]
        result = await relay.result(conversion_id)
        assert [f.delivered for f in result.fires] == [True]
        assert down.refused == 8
        assert physical_rows(relay.runtime.clickhouse, conversion_id) == 1
        assert len(relay.platforms.requests_for("meta", pixel["platform_pixel_id"])) == 1
        history = await relay.runtime.temporal.get_workflow_handle(conversion_id).fetch_history()
        # The first step is a local activity: one marker for its result, and its retries
        # inside the workflow task (none of them wrote a second row, checked above).
        markers = [e for e in history.events if e.HasField("marker_recorded_event_attributes")]
        assert len(markers) >= 1
    down.close()
