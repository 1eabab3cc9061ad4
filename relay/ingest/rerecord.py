"""Conversion rows lost by ClickHouse, recorded again from Temporal's histories.

A conversion's row is written by its workflow's first step (`prepare_conversion`), once: a
row that ClickHouse loses afterwards (parts not yet on disk when the OS crashed or the power
went, a restore from an older backup) is not written again by anything else, while Temporal
shows the run completed. The inbox remembers every conversion it accepted (`seen`, fsynced,
for `RELAY_INBOX_MEMORY_DAYS`), and each run's history holds what its first step decided:
the result of the `prepare_conversion` local activity (a `core_local_activity` marker whose
result is `relay.domain.workflow_io.Prepared`, encrypted by the payload
codec). `rerecord_missing`
looks up the conversions accepted recently that ClickHouse lacks and writes each row again
with the same store call the first step makes (`TrafficStore.submit_conversion`).

It starts no workflow and sends nothing: a conversion whose run has not yet made its first
step (still in the inbox, not started, or the first step not finished) is left to that run,
which records the row itself. The attempt logs are not re-recorded: the request and response
bodies they hold are in no history (the fsync settings of migration 0010 keep them).
"""

import asyncio
import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.api.common.v1 import Payload, Payloads
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import Client, WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.service import RPCError, RPCStatusCode

from relay.domain.models import Conversion
from relay.domain.workflow_io import CONVERSION_WORKFLOW, Prepared
from relay.store.pool import ClickHouse
from relay.store.traffic import TrafficStore

log = logging.getLogger(__name__)

WORKFLOW_TYPE = CONVERSION_WORKFLOW
PREPARE_ACTIVITY = "prepare_conversion"
# The marker the SDK's core records for each completed local activity: details "data"
# (JSON: seq, attempt, activity_type, ...) and "result" (the activity's return value).
LOCAL_ACTIVITY_MARKER = "core_local_activity"
CHECK_CHUNK = 5_000  # conversion IDs looked up in ClickHouse per query
CONCURRENCY = 8  # histories read at once
SHOWN_IDS = 5  # conversion IDs a log line names, at most


@dataclass
class _Outcome:
    recorded: list[str] = field(default_factory=list)
    unprepared: list[str] = field(default_factory=list)  # left to their own run
    gone: list[str] = field(default_factory=list)  # no history (past retention)


def accepted_since(inbox_path: Path, since: float) -> list[str]:
    """Conversion IDs the inbox accepted at or after `since` (epoch seconds) and has
    forwarded, oldest first; the file is opened read-only (the API may hold it open)."""
    if not inbox_path.exists():
        return []
    conn = sqlite3.connect(f"{inbox_path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT conversion_id FROM seen WHERE accepted_at >= ? AND conversion_id NOT IN "
            "(SELECT conversion_id FROM pending) ORDER BY accepted_at",
            (since,),
        ).fetchall()
    finally:
        conn.close()
    return [str(row[0]) for row in rows]


def missing_conversions(clickhouse: ClickHouse, conversion_ids: list[str]) -> list[str]:
    """The IDs with no row in `conversions`, in the order given."""
    present: set[str] = set()
    for start in range(0, len(conversion_ids), CHECK_CHUNK):
        chunk = conversion_ids[start : start + CHECK_CHUNK]
        rows = clickhouse.query(
            "SELECT DISTINCT conversion_id FROM conversions "
            "WHERE conversion_id IN {ids:Array(String)}",
            {"ids": chunk},
        ).result_rows
        present.update(str(row[0]) for row in rows)
    return [c for c in conversion_ids if c not in present]


async def _decode(converter: DataConverter, payload: Payload, hint: type) -> Any:
    [value] = await converter.decode([payload], [hint])
    return value


async def prepared_in(converter: DataConverter, history: WorkflowHistory) -> Prepared | None:
    """The result of the run's completed `prepare_conversion` step, None if it has none,
    decoded with the converter of Relay's clients (payloads encrypted by the codec). The
    step is a local activity (a marker); a regular activity's result is read as well."""
    scheduled: dict[int, str] = {}  # regular activities: scheduled event ID -> type
    for event in history.events:
        result: Payloads | None = None
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            activity_type = event.activity_task_scheduled_event_attributes.activity_type
            scheduled[event.event_id] = activity_type.name
        elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed = event.activity_task_completed_event_attributes
            if scheduled.get(completed.scheduled_event_id) == PREPARE_ACTIVITY:
                result = completed.result
        elif _is_local_activity_marker(event):
            details = event.marker_recorded_event_attributes.details
            data = details.get("data")
            # A failed try records a failure, not a result.
            if data is not None and data.payloads and "result" in details:
                info = await _decode(converter, data.payloads[0], dict)
                if isinstance(info, dict) and info.get("activity_type") == PREPARE_ACTIVITY:
                    result = details["result"]
        if result is not None and result.payloads:
            prepared: Prepared = await _decode(converter, result.payloads[0], Prepared)
            return prepared
    return None


def _is_local_activity_marker(event: HistoryEvent) -> bool:
    return (
        event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
        and event.marker_recorded_event_attributes.marker_name == LOCAL_ACTIVITY_MARKER
    )


async def _recorded_by_run(temporal: Client, conversion_id: str) -> tuple[Conversion, str] | None:
    """The conversion as its run's first step decided it, and that run's ID; None if the
    run has not made that step (or is not a conversion workflow). Raises RPCError NOT_FOUND
    when Temporal has no workflow with this ID."""
    description = await temporal.get_workflow_handle(conversion_id).describe()
    if description.workflow_type != WORKFLOW_TYPE:
        return None
    run = temporal.get_workflow_handle(conversion_id, run_id=description.run_id)
    prepared = await prepared_in(temporal.data_converter, await run.fetch_history())
    if prepared is None:
        return None
    return prepared.conversion, description.run_id


async def _rerecord_one(
    temporal: Client,
    clickhouse: ClickHouse,
    traffic: TrafficStore,
    conversion_id: str,
    outcome: _Outcome,
) -> None:
    try:
        found = await _recorded_by_run(temporal, conversion_id)
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        outcome.gone.append(conversion_id)
        return
    if found is None:
        outcome.unprepared.append(conversion_id)
        return
    conversion, run_id = found
    # The step stores its row before it completes: a step that completed since the first
    # check has its row now, unless that row was lost.
    if not await asyncio.to_thread(missing_conversions, clickhouse, [conversion_id]):
        return
    # The first step's own write: the row as it decided it, group-committed.
    await asyncio.wrap_future(traffic.submit_conversion(conversion, run_id))
    outcome.recorded.append(conversion_id)


def _some(ids: list[str]) -> str:
    shown = ", ".join(ids[:SHOWN_IDS])
    return shown + (f" and {len(ids) - SHOWN_IDS} more" if len(ids) > SHOWN_IDS else "")


async def rerecord_missing(
    temporal: Client, clickhouse: ClickHouse, inbox_path: Path, since_s: float
) -> int:
    """Record again the conversions accepted into the inbox at `inbox_path` within the last
    `since_s` seconds whose row ClickHouse lacks and whose run has recorded its first step;
    return how many. Starts no workflow and sends nothing. ClickHouse and Temporal errors
    (other than a workflow Temporal no longer has) are raised."""
    accepted = await asyncio.to_thread(accepted_since, inbox_path, time.time() - since_s)
    missing = await asyncio.to_thread(missing_conversions, clickhouse, accepted)
    outcome = _Outcome()
    if missing:
        traffic = TrafficStore(clickhouse)
        slots = asyncio.Semaphore(CONCURRENCY)

        async def one(conversion_id: str) -> None:
            async with slots:
                await _rerecord_one(temporal, clickhouse, traffic, conversion_id, outcome)

        tasks = [asyncio.ensure_future(one(c)) for c in missing]
        try:
            await asyncio.gather(*tasks)
        except BaseException:
            for task in tasks:
                task.cancel()
            raise
    if outcome.recorded:
        log.warning(
            "re-recorded %d conversions missing from ClickHouse (lost after their run recorded "
            "them) from their Temporal histories: %s",
            len(outcome.recorded),
            _some(outcome.recorded),
        )
    if outcome.gone:
        log.warning(
            "%d conversions accepted in the last %.0f s are missing from ClickHouse and "
            "Temporal no longer has their runs (past the namespace's retention?); they cannot "
            "be re-recorded: %s",
            len(outcome.gone),
            since_s,
            _some(outcome.gone),
        )
    log.info(
        "re-record check: %d conversions accepted in the last %.0f s, %d missing from "
        "ClickHouse, %d re-recorded, %d left to runs that have not recorded them yet",
        len(accepted),
        since_s,
        len(missing),
        len(outcome.recorded),
        len(outcome.unprepared),
    )
    return len(outcome.recorded)
