"""Redelivery (issue 8 item 3): a failed fire sent again once the platform is back, with the
same event_id, logged as a new attempt; nothing sent again to a fire already delivered;
bulk redelivery with progress; conversions past the platforms' limit reported."""

import asyncio
import os
import re
import signal
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Replayer

from relay.core.crypto import KeyRing
from relay.domain.redelivery import BulkInput, RedeliveryFilter
from relay.process.cli_redeliver import when
from relay.process.worker import WORKFLOWS
from relay.store.pool import ClickHouse
from relay.store.rows import utc_now
from tests.harness import (
    ADMIN_TOKEN,
    Relay,
    failed_conversions,
    meta_event_ids,
    redelivery_ended,
    running_relay,
)
from tests.platform_server import PlatformServer
from tests.served import serving
from workflows.redelivery import BulkRedeliveryWorkflow


async def _redeliver(relay: Relay, conversion_id: str, **body: str) -> Any:
    return await relay.http.post(
        f"/api/conversions/{conversion_id}/redeliver", json=body or None, headers=relay.admin
    )


async def test_a_failed_fire_is_redelivered_once_with_the_same_event_id(relay: Relay) -> None:
    pixel, [conv_id] = await failed_conversions(relay)
    before = await relay.conversion(conv_id)
    assert before["delivery_state"] == "failed"

    answer = await _redeliver(relay, conv_id)
    assert answer.status_code == 202, answer.text
    started = answer.json()
    assert started["sends"] == [
        {"kind": "pixel", "target_id": pixel["id"], "action": "redeliver", "reason": ""}
    ]
    assert started["follow"]["api"] == f"/api/redeliveries/{started['workflow_id']}"
    result = await redelivery_ended(relay, started["workflow_id"])
    assert result.outcome == "delivered" and result.state == "delivered"

    # Two requests in all, both with the conversion's ID as event_id; the second accepted.
    assert meta_event_ids(relay, pixel) == [(conv_id, 400), (conv_id, 200)]
    after = await relay.conversion(conv_id)
    assert after["delivery_state"] == "delivered"
    assert [s["state"] for s in after["sends"]] == ["delivered"]
    fires = after["fires"]
    assert [(f["attempt"], f["success"], f["final"]) for f in fires] == [
        (1, False, False),
        (2, True, True),
    ]
    status = await relay.http.get(started["follow"]["api"], headers=relay.admin)
    assert status.json()["status"] == "COMPLETED"
    assert status.json()["result"]["outcome"] == "delivered"

    # Again: nothing is sent to a fire already delivered, and no workflow is started.
    again = await _redeliver(relay, conv_id)
    assert again.status_code == 200, again.text
    assert again.json()["workflow_id"] is None
    assert [s["action"] for s in again.json()["sends"]] == ["already delivered"]
    assert len(meta_event_ids(relay, pixel)) == 2

    # The redelivery's history replays on the registered workflows.
    handle = relay.runtime.temporal.get_workflow_handle(started["workflow_id"])
    replayer = Replayer(workflows=WORKFLOWS, data_converter=relay.runtime.temporal.data_converter)
    await replayer.replay_workflow(await handle.fetch_history())


async def test_one_send_is_named_by_its_pixel(relay: Relay) -> None:
    pixel, [conv_id] = await failed_conversions(relay)
    wrong = await _redeliver(relay, conv_id, pixel_id="px_elsewhere")
    assert wrong.status_code == 422
    assert wrong.json()["error"]["param"] == "pixel_id"
    both = await _redeliver(relay, conv_id, pixel_id=pixel["id"], postback_id="pb_x")
    assert both.status_code == 422
    assert both.json()["error"]["param"] == "postback_id"
    missing = await _redeliver(relay, "conv_not_there")
    assert missing.status_code == 404

    answer = await _redeliver(relay, conv_id, pixel_id=pixel["id"])
    assert answer.status_code == 202, answer.text
    assert answer.json()["workflow_id"].endswith(f"_{pixel['id']}")
    result = await redelivery_ended(relay, answer.json()["workflow_id"])
    assert [s.action for s in result.sends] == ["delivered"]


async def test_a_conversion_past_the_platforms_limit_is_reported_not_sendable(
    relay: Relay,
) -> None:
    pixel, [conv_id] = await failed_conversions(relay)
    traffic = relay.runtime.traffic
    conversion = traffic.get_conversion(conv_id)
    assert conversion is not None
    old = conversion.model_copy(update={"received_at": utc_now() - timedelta(days=8)})
    traffic.record_conversion(old, "")

    answer = await _redeliver(relay, conv_id)
    assert answer.status_code == 200, answer.text
    [listed] = answer.json()["not_sendable"]
    assert listed["target_id"] == pixel["id"] and "7-day" in listed["reason"]
    assert answer.json()["workflow_id"] is None

    # In bulk it is counted and listed too, never skipped silently.
    bulk = await relay.http.post(
        "/api/redeliveries", json={"campaign_id": pixel["campaign_id"]}, headers=relay.admin
    )
    assert bulk.status_code == 202, bulk.text
    progress = await _bulk_done(relay, bulk.json()["id"])
    assert progress["not_sendable"] == 1 and progress["not_sendable_ids"] == [conv_id]
    assert len(meta_event_ids(relay, pixel)) == 1


async def _bulk_done(relay: Relay, bulk_id: str, seen: list[dict[str, Any]] | None = None) -> Any:
    """Poll the bulk redelivery's progress until it has finished; `seen` collects it."""
    async with asyncio.timeout(120):
        while True:
            answer = await relay.http.get(f"/api/redeliveries/{bulk_id}", headers=relay.admin)
            assert answer.status_code == 200, answer.text
            progress = answer.json()["progress"]
            if seen is not None:
                seen.append(progress)
            if progress["finished"]:
                return progress
            await asyncio.sleep(0.2)


BULK = 200  # the size


async def test_bulk_redelivery_reports_progress_and_delivers_every_fire(
    dev_env: WorkflowEnvironment, clickhouse: ClickHouse, platforms: PlatformServer, keys: KeyRing
) -> None:
    async with running_relay(
        dev_env, clickhouse, platforms, keys, redelivery_rate_per_s=50
    ) as relay:
        await _bulk_redelivery(relay)


async def _bulk_redelivery(relay: Relay) -> None:
    pixel, ids = await failed_conversions(relay, BULK)
    body = {"campaign_id": pixel["campaign_id"], "state": "failed"}
    answer = await relay.http.post("/api/redeliveries", json=body, headers=relay.admin)
    assert answer.status_code == 202, answer.text
    assert answer.json()["matching"] == BULK
    seen: list[dict[str, Any]] = []
    final = await _bulk_done(relay, answer.json()["id"], seen)
    assert final["total"] == final["done"] == final["delivered"] == BULK
    assert final["failed"] == final["not_sendable"] == 0
    # Progress was followed while it ran (50 a second, in pages of 100: several seconds).
    assert any(0 < p["done"] < BULK for p in seen if not p["finished"])

    accepted = [e for e, status in meta_event_ids(relay, pixel) if status == 200]
    assert sorted(accepted) == sorted(ids)  # each conversion once, with its own event_id
    states = await asyncio.gather(*(relay.conversion(i) for i in ids))
    assert {s["delivery_state"] for s in states} == {"delivered"}

    # Its history (timers, children, the query's state) replays on the registered workflows.
    history = await relay.runtime.temporal.get_workflow_handle(answer.json()["id"]).fetch_history()
    replayer = Replayer(workflows=WORKFLOWS, data_converter=relay.runtime.temporal.data_converter)
    await replayer.replay_workflow(history)

    # A second run over the same filter sends nothing twice.
    again = await relay.http.post("/api/redeliveries", json=body, headers=relay.admin)
    assert again.json()["matching"] == 0
    assert (await _bulk_done(relay, again.json()["id"]))["done"] == 0
    assert len(meta_event_ids(relay, pixel)) == 2 * BULK


async def test_a_large_bulk_redelivery_continues_as_new(relay: Relay) -> None:
    pixel, ids = await failed_conversions(relay, 5)
    client = relay.runtime.temporal
    where = RedeliveryFilter(campaign_id=pixel["campaign_id"])
    handle = await client.start_workflow(
        BulkRedeliveryWorkflow.run,
        BulkInput(where=where, rate_per_s=50, page_size=2),
        id=f"redeliveries_test_{ids[0]}",
        task_queue=relay.runtime.settings.task_queue,
    )
    progress = await asyncio.wait_for(handle.result(), 60)
    assert (progress.done, progress.delivered, progress.total) == (5, 5, 5)
    runs: list[str] = []
    for _ in range(50):  # visibility is eventually consistent
        runs = [w.run_id async for w in client.list_workflows(f'WorkflowId = "{handle.id}"')]
        if len(runs) == 3:
            break
        await asyncio.sleep(0.1)
    assert len(runs) == 3  # pages of 2: 2, 2, then 1


async def _cli(url: str, *args: str) -> asyncio.subprocess.Process:
    env = {**os.environ, "RELAY_PUBLIC_URL": url, "RELAY_ADMIN_TOKEN": ADMIN_TOKEN}
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "relay",
        "redeliver",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_the_cli_follows_a_bulk_redelivery_and_ctrl_c_leaves_it_running(
    dev_env: WorkflowEnvironment, clickhouse: ClickHouse, platforms: PlatformServer, keys: KeyRing
) -> None:
    # Two redeliveries a second: slow enough to interrupt the first command while it follows.
    async with (
        running_relay(dev_env, clickhouse, platforms, keys, redelivery_rate_per_s=2) as relay,
        serving(relay.runtime) as url,
    ):
        pixel, ids = await failed_conversions(relay, 6)
        campaign = ["--failed", "--since", "1h", "--campaign", pixel["campaign_id"]]
        interrupted = await _cli(url, *campaign, "--pixel", pixel["id"])
        assert interrupted.stdout is not None
        first = await asyncio.wait_for(interrupted.stdout.readline(), 30)
        assert b"6 conversions" in first
        # Interrupted once it follows: it has shown the progress (six take three seconds).
        shown = await asyncio.wait_for(interrupted.stdout.readline(), 30)
        assert b"/6  delivered" in shown or b"RUNNING" in shown, shown
        interrupted.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(interrupted.communicate(), 30)
        assert interrupted.returncode == 130, err.decode()
        text = (first + shown + out).decode()
        bulk_id = re.search(r"relay redeliver --follow (\S+)", text)
        assert bulk_id is not None, text
        assert "goes on" in text

        # Following it again shows it to its end: every fire delivered.
        following = await _cli(url, "--follow", bulk_id.group(1))
        out, err = await asyncio.wait_for(following.communicate(), 60)
        assert following.returncode == 0, err.decode()
        assert "6/6  delivered 6  failed 0  not sendable 0" in out.decode()
        accepted = [e for e, status in meta_event_ids(relay, pixel) if status == 200]
        assert sorted(accepted) == sorted(ids)

        # Nothing left to redeliver: a new command ends at once with nothing sent.
        again = await _cli(url, *campaign)
        out, err = await asyncio.wait_for(again.communicate(), 60)
        assert again.returncode == 0, err.decode()
        assert "0 conversions" in out.decode()
        assert len(meta_event_ids(relay, pixel)) == 12


def test_ages_become_times() -> None:
    now = datetime(2026, 1, 2, 12, tzinfo=UTC)
    assert when("24h", now) == "2026-01-01T12:00:00+00:00"
    assert when("30m", now) == "2026-01-02T11:30:00+00:00"
    assert when("2026-01-01T00:00:00", now) == "2026-01-01T00:00:00"
