"""Power loss in `relay up`: ClickHouse writes not yet on disk are lost, the inbox (fsynced)
and Temporal (SQLite WAL, synchronous FULL) keep theirs; `rerecord_missing` writes the lost
conversion rows again from the runs' histories, and sends nothing again.

A lost write is simulated by dropping the newest parts of `conversions`
(`ALTER TABLE ... DROP PART`, which chdb supports): after an OS crash, a part whose files had
not reached the disk is missing or fails its checksums when ClickHouse loads the table, which
then serves without it (a broken part is detached at start), so the rows it held are gone,
and only those. The tests stop merges on the table first, so the newest part holds the newest
insert only, as it does in the seconds before a crash.
"""

import asyncio
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowExecutionStatus, WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from relay.domain.models import Conversion
from relay.domain.workflow_io import ConversionInput
from relay.ingest.inbox import Candidate, Inbox
from relay.ingest.rerecord import prepared_in, rerecord_missing
from relay.store.pool import ClickHouse
from relay.store.rows import select_dicts
from relay.temporal.payload_codec import relay_data_converter
from tests.harness import RECORDING_KEYS, Relay, physical_rows, running_relay
from tests.platform_server import PlatformServer
from tests.support import workflow_type
from workflows.conversion import ConversionWorkflow

RERECORD_DEADLINE_S = 60.0


# The conversion workflow's histories (the others hold no first step).
HISTORIES = [
    path
    for path in sorted((Path(__file__).parent / "histories").glob("*.json"))
    if workflow_type(path) == "ConversionWorkflow"
]


def _row(store: ClickHouse, conversion_id: str) -> dict[str, Any] | None:
    """The stored row, all but when it was written."""
    rows = select_dicts(
        store,
        "SELECT * EXCEPT recorded_at FROM conversions WHERE conversion_id = {id:String}",
        {"id": conversion_id},
    )
    assert len(rows) <= 1
    return rows[0] if rows else None


def _active_parts(store: ClickHouse) -> list[str]:
    """The table's parts, newest first."""
    rows = store.query(
        "SELECT name FROM system.parts WHERE database = currentDatabase() "
        "AND table = 'conversions' AND active ORDER BY max_block_number DESC"
    ).result_rows
    return [str(r[0]) for r in rows]


def _parts_holding(store: ClickHouse, conversion_id: str) -> set[str]:
    rows = store.query(
        "SELECT DISTINCT _part FROM conversions WHERE conversion_id = {id:String}",
        parameters={"id": conversion_id},
    ).result_rows
    return {str(r[0]) for r in rows}


async def _delivered(relay: Relay, key: str, campaign_id: str, payout: str) -> str:
    click_id = await relay.click(campaign_id, fbclid="IwAR-power")
    answer = await relay.postback(key=key, click_id=click_id, payout=payout, txid=payout)
    assert answer.status_code == 200, answer.text
    conversion_id: str = answer.json()["conversion_id"]
    result = await relay.result(conversion_id)
    assert [f.delivered for f in result.fires] == [True, True]
    return conversion_id


async def test_a_conversion_row_lost_with_its_part_is_recorded_again_and_not_sent_again(
    dev_env: WorkflowEnvironment, store: ClickHouse, platforms: PlatformServer, keys: KeyRing
) -> None:
    async with running_relay(dev_env, store, platforms, keys) as relay:
        network = await relay.network()
        campaign = await relay.campaign(currency="EUR")
        pixels = [await relay.pixel(campaign["id"], p) for p in ("meta", "tiktok")]
        store.command("SYSTEM STOP MERGES conversions")
        kept = await _delivered(relay, network["postback_key"], campaign["id"], "5")
        lost = await _delivered(relay, network["postback_key"], campaign["id"], "12.50")
        before = _row(store, lost)
        assert before is not None
        assert before["campaign_id"] == campaign["id"] and before["attributed"] == 1
        assert str(before["payout"]) == "12.500000"

        # The power goes: the newest part(s), holding the last conversion's row, are lost.
        lost_parts = _parts_holding(store, lost)
        newest = _active_parts(store)[: len(lost_parts)]
        assert lost_parts == set(newest) and not lost_parts & _parts_holding(store, kept)
        for part in sorted(lost_parts):
            store.command(f"ALTER TABLE conversions DROP PART '{part}'")
        assert _row(store, lost) is None
        assert _row(store, kept) is not None

        temporal = relay.runtime.temporal
        handle = temporal.get_workflow_handle(lost)
        run_before = await handle.describe()
        assert run_before.status == WorkflowExecutionStatus.COMPLETED
        events_before = len((await handle.fetch_history()).events)
        inbox = relay.runtime.settings.inbox_path
        assert inbox is not None

        count = await asyncio.wait_for(
            rerecord_missing(temporal, store, inbox, since_s=3600), RERECORD_DEADLINE_S
        )
        assert count == 1
        # The same row: campaign, payout, attribution, the run that recorded it, and the rest.
        assert _row(store, lost) == before
        assert physical_rows(store, lost) == 1 and physical_rows(store, kept) == 1
        stored = await relay.conversion(lost)
        assert stored["campaign_id"] == campaign["id"] and stored["payout"] == "12.500000"
        assert stored["attributed"] is True
        # Nothing left to do: a second pass records nothing.
        again = rerecord_missing(temporal, store, inbox, since_s=3600)
        assert await asyncio.wait_for(again, RERECORD_DEADLINE_S) == 0
        assert physical_rows(store, lost) == 1

        # No run started or continued, and each platform got each conversion once.
        run_after = await handle.describe()
        assert run_after.run_id == run_before.run_id
        assert run_after.status == WorkflowExecutionStatus.COMPLETED
        assert len((await handle.fetch_history()).events) == events_before
        await asyncio.sleep(0.5)  # a send started by mistake would have arrived by now
        for pixel in pixels:
            requests = platforms.requests_for(pixel["platform"], pixel["platform_pixel_id"])
            event_ids = sorted(r.body["data"][0]["event_id"] for r in requests)
            assert event_ids == sorted([kept, lost])


async def test_runs_that_have_not_recorded_their_conversion_are_left_to_them(
    dev_env: WorkflowEnvironment,
    store: ClickHouse,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="relay.ingest.rerecord")
    inbox_path = tmp_path / "inbox.sqlite"
    inbox = Inbox(inbox_path, capacity=100, memory_days=1)
    waiting, unknown, queued = (f"conv_{uuid.uuid4().hex}" for _ in range(3))
    for conversion_id in (waiting, unknown, queued):
        candidate = Candidate(
            conversion_id, "net_x", f"click_{conversion_id}", "sale", "", True, ""
        )
        assert (await inbox.accept(candidate)).status == "accepted"
    await inbox.forwarded([waiting, unknown])  # `queued` is still in the inbox
    # `waiting` has a run that no worker has picked up: its first step has not run.
    conversion = Conversion(
        conversion_id=waiting,
        click_id="click_x",
        network_id="net_x",
        event_type="sale",
        currency="USD",
        received_at=datetime.now(UTC),
    )
    handle = await dev_env.client.start_workflow(
        ConversionWorkflow.run,
        ConversionInput(conversion=conversion),
        id=waiting,
        task_queue=f"nobody-{uuid.uuid4().hex[:8]}",
    )
    try:
        started = time.monotonic()
        count = await asyncio.wait_for(
            rerecord_missing(dev_env.client, store, inbox_path, since_s=3600),
            RERECORD_DEADLINE_S,
        )
        assert count == 0
        for conversion_id in (waiting, unknown, queued):
            assert physical_rows(store, conversion_id) == 0
        assert (await handle.describe()).status == WorkflowExecutionStatus.RUNNING
        # `unknown` has no run at all: said, with its ID; the run left waiting is counted.
        messages = [r.getMessage() for r in caplog.records if r.name == "relay.ingest.rerecord"]
        assert any("no longer has their runs" in m and unknown in m for m in messages)
        assert any(
            "2 missing from ClickHouse, 0 re-recorded, 1 left to runs" in m for m in messages
        )
        # Conversions accepted before the window are not looked at.
        assert await rerecord_missing(dev_env.client, store, inbox_path, since_s=0.0) == 0
        assert time.monotonic() - started < RERECORD_DEADLINE_S
    finally:
        await handle.terminate("test over")
        await inbox.close()


def _history(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_the_first_steps_decision_is_read_from_every_recorded_shape(path: Path) -> None:
    """Runs with the first step (a local activity) hold the conversion as it was recorded,
    encrypted or not; runs from before it (`conversion_*`: persist, then plan) have none."""
    history = _history(path)
    converter = relay_data_converter(KeyRing.parse(RECORDING_KEYS))
    prepared = await prepared_in(converter, history)
    if path.stem.startswith("conversion_"):
        assert prepared is None
        return
    assert prepared is not None
    started = history.events[0].workflow_execution_started_event_attributes
    [input] = await converter.decode(started.input.payloads, [ConversionInput])
    accepted = input.conversion
    recorded = prepared.conversion
    assert recorded.conversion_id == accepted.conversion_id
    assert recorded.received_at == accepted.received_at and recorded.payout == accepted.payout
    # Decided by the step: the click's campaign, attribution, duplicate status.
    assert recorded.campaign_id and recorded.currency
    assert recorded.is_duplicate == path.stem.endswith("_duplicate")
