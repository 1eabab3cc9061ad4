"""Record the workflow histories the replay tests replay. From the repository root:

    .venv/bin/python -m tests.record_histories [scenario ...]

with no scenario, every one in SCENARIOS. A file already in tests/histories/ is never
overwritten (the run says it kept it): a history that stops replaying is what the replay
test exists to catch, so record a new shape or scenario under a new name, and delete a
file first only to re-record it on purpose.

Runs real workflows through a real dev server (the `temporal` binary the test extras
install), the in-process ClickHouse engine, the local platform server and a local traffic
source, with payloads encrypted under RECORDING_KEYS, then writes each history to
tests/histories/.
"""

import asyncio
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from relay.core.ids import click_claim_id, txid_claim_id
from relay.domain.redelivery import BULK_PREFIX, BulkInput, RedeliveryFilter
from relay.store.database import apply_migrations, open_clickhouse
from relay.temporal import search_attributes
from relay.temporal.payload_codec import relay_data_converter
from tests.conftest import binary
from tests.harness import RECORDING_KEYS, Relay, running_relay
from tests.platform_server import PlatformServer, Scripted
from tests.traffic_source import TrafficSource
from workflows.redelivery import BulkRedeliveryWorkflow

OUT = Path(__file__).parent / "histories"
# The workflow shape being recorded: `conversion_*` are runs from before the inbox (persist
# and plan as activities), `inbox_*` runs with the first step as a local activity,
# `firsttry_*` runs whose sends also make their first try as a local activity, `encrypted_*`
# the same shape with payloads encrypted by the codec under RECORDING_KEYS, `states_*` runs
# started with search attributes that upsert them and record their delivery state (recorded
# before the codec was merged; the codec reads plain payloads as they are), `shaped_*` runs
# started with `ConversionInput.shape` 1 (no patch markers, one upsert; encrypted),
# `regular_*` runs of shape 2 (every send a regular activity from its first try; encrypted).
# The other workflows' histories are named by their scenario: `redelivery_*`, `bulk_*`,
# `claim_*` (encrypted).
SHAPE = "regular"


async def _setup(relay: Relay) -> tuple[str, str, dict[str, str]]:
    network = await relay.network()
    campaign = await relay.campaign()
    meta = await relay.pixel(campaign["id"], "meta")
    await relay.pixel(campaign["id"], "tiktok")
    click_id = await relay.click(campaign["id"], fbclid="IwAR-replay")
    return network["postback_key"], click_id, {"campaign": campaign["id"], **meta}


async def _accept(relay: Relay, **params: str) -> str:
    conversion_id: str = (await relay.postback(**params)).json()["conversion_id"]
    await relay.result(conversion_id)
    return conversion_id


async def clean(relay: Relay, source: TrafficSource) -> str:
    key, click_id, _ = await _setup(relay)
    return await _accept(relay, key=key, click_id=click_id, payout="7")


async def retries(relay: Relay, source: TrafficSource) -> str:
    key, click_id, meta = await _setup(relay)
    relay.platforms.script(
        "meta", meta["platform_pixel_id"], Scripted(status=500), Scripted(status=503)
    )
    return await _accept(relay, key=key, click_id=click_id, payout="7")


async def funnel(relay: Relay, source: TrafficSource) -> str:
    """A permanent Meta failure, TikTok delivered, a traffic-source postback retried."""
    key, click_id, meta = await _setup(relay)
    relay.platforms.script(
        "meta", meta["platform_pixel_id"], Scripted(status=400, body=PlatformServer.meta_error(190))
    )
    await relay.post(
        f"/api/campaigns/{meta['campaign']}/postbacks",
        {"url_template": source.url + "/cb?c={click_id}&p={payout}"},
    )
    source.script(503)
    return await _accept(relay, key=key, click_id=click_id, payout="9", txid="F1")


async def duplicate(relay: Relay, source: TrafficSource) -> str:
    key, click_id, _ = await _setup(relay)
    await _accept(relay, key=key, click_id=click_id, txid="D1")
    return await _accept(relay, key=key, click_id=click_id, txid="D2")


async def reversal(relay: Relay, source: TrafficSource) -> str:
    key, click_id, meta = await _setup(relay)
    await relay.post(
        f"/api/campaigns/{meta['campaign']}/postbacks",
        {"url_template": source.url + "/rej?c={click_id}", "events": ["rejected"]},
    )
    await _accept(relay, key=key, click_id=click_id, txid="R1")
    return await _accept(relay, key=key, click_id=click_id, txid="R1", status="rejected")


async def redelivery(relay: Relay, source: TrafficSource) -> dict[str, WorkflowHandle[Any, Any]]:
    """RedeliveryWorkflow: a Meta fire and a traffic-source postback that failed for good,
    redelivered (both delivered the second time; TikTok, delivered, is not sent again)."""
    key, click_id, meta = await _setup(relay)
    relay.platforms.script(
        "meta", meta["platform_pixel_id"], Scripted(status=400, body=PlatformServer.meta_error(190))
    )
    await relay.post(
        f"/api/campaigns/{meta['campaign']}/postbacks",
        {"url_template": source.url + "/cb?c={click_id}"},
    )
    source.script(404)
    conversion_id = await _accept(relay, key=key, click_id=click_id, payout="5")
    answer = await relay.http.post(
        f"/api/conversions/{conversion_id}/redeliver", headers=relay.admin
    )
    assert answer.status_code == 202, answer.text
    handle = relay.runtime.temporal.get_workflow_handle(answer.json()["workflow_id"])
    await handle.result()
    return {"redelivery_fire_and_postback": handle}


async def bulk(relay: Relay, source: TrafficSource) -> dict[str, WorkflowHandle[Any, Any]]:
    """BulkRedeliveryWorkflow over three failed conversions in pages of two: the first run
    continues as new, the second redelivers the last conversion and ends."""
    key, click_id, meta = await _setup(relay)
    failed = Scripted(status=400, body=PlatformServer.meta_error(190))
    relay.platforms.script("meta", meta["platform_pixel_id"], failed, failed, failed)
    clicks = [click_id, *[await relay.click(meta["campaign"]) for _ in range(2)]]
    for click in clicks:  # one click each: a second sale on a click is a duplicate
        await _accept(relay, key=key, click_id=click)
    client = relay.runtime.temporal
    indexed = await search_attributes.available(client, client.namespace)
    first = await client.start_workflow(
        BulkRedeliveryWorkflow.run,
        BulkInput(
            where=RedeliveryFilter(campaign_id=meta["campaign"]),
            rate_per_s=50,
            page_size=2,
            search_attributes=indexed,
        ),
        id=f"{BULK_PREFIX}record_{meta['campaign']}",
        task_queue=relay.runtime.settings.task_queue,
    )
    progress = await first.result()
    assert progress.done == progress.delivered == 3, progress
    first_run = first.first_execution_run_id
    last = client.get_workflow_handle(first.id)
    assert first_run and (await last.describe()).run_id != first_run  # it continued as new
    return {
        "bulk_continued": client.get_workflow_handle(first.id, run_id=first_run),
        "bulk_last_page": last,
    }


async def claim(relay: Relay, source: TrafficSource) -> dict[str, WorkflowHandle[Any, Any]]:
    """DedupClaimWorkflow: the claims a conversion takes when several API replicas share
    dedup (RELAY_SHARED_DEDUP), its transaction ID's and its click's."""
    runtime = relay.runtime
    async with running_relay(
        relay.env, runtime.clickhouse, relay.platforms, runtime.keys, shared_dedup=True
    ) as shared:
        key, click_id, _ = await _setup(shared)
        conversion_id = await _accept(shared, key=key, click_id=click_id, txid="C1")
        conversion = await shared.conversion(conversion_id)
    client = runtime.temporal
    by_txid = txid_claim_id(conversion["network_id"], conversion["event_type"], "C1")
    by_click = click_claim_id(click_id, conversion["event_type"])
    return {
        "claim_txid": client.get_workflow_handle(by_txid),
        "claim_click": client.get_workflow_handle(by_click),
    }


Scenario = Callable[[Relay, TrafficSource], Awaitable[dict[str, WorkflowHandle[Any, Any]]]]


def _conversion(scenario: Callable[[Relay, TrafficSource], Awaitable[str]]) -> Scenario:
    """A conversion scenario, its history named by the shape recorded (SHAPE)."""

    async def recorded(relay: Relay, source: TrafficSource) -> dict[str, WorkflowHandle[Any, Any]]:
        conversion_id = await scenario(relay, source)
        handle = relay.runtime.temporal.get_workflow_handle(conversion_id)
        return {f"{SHAPE}_{scenario.__name__}": handle}

    return recorded


SCENARIOS: dict[str, Scenario] = {
    "clean": _conversion(clean),
    "retries": _conversion(retries),
    "funnel": _conversion(funnel),
    "duplicate": _conversion(duplicate),
    "reversal": _conversion(reversal),
    "redelivery": redelivery,
    "bulk": bulk,
    "claim": claim,
}


async def main(names: list[str]) -> None:
    keys = KeyRing.parse(RECORDING_KEYS)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"),
        data_converter=relay_data_converter(keys),
        search_attributes=search_attributes.KEYS,
    )
    with (
        tempfile.TemporaryDirectory() as tmp,
        PlatformServer() as platforms,
        TrafficSource() as source,
    ):
        clickhouse = open_clickhouse(f"chdb://{tmp}", "relay_record")
        apply_migrations(clickhouse)
        async with running_relay(env, clickhouse, platforms, keys) as relay:
            for name in names:
                for stem, handle in (await SCENARIOS[name](relay, source)).items():
                    path = OUT / f"{stem}.json"
                    if path.exists():
                        print(f"kept {path}: delete it first to re-record it")
                        continue
                    history = await handle.fetch_history()
                    # The history's JSON holds no workflow ID, and a bulk run names its
                    # children after its own: kept beside the events for the replayer.
                    recorded = {"workflowId": handle.id, **history.to_json_dict()}
                    path.write_text(json.dumps(recorded, indent=1) + "\n")
                    print(f"wrote {path} ({len(history.events)} events)")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or list(SCENARIOS)))
