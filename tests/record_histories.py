"""Record the workflow histories the replay tests replay:
`python -m tests.record_histories [name ...]` (default: every scenario).

Runs real conversions through a real dev server, the in-process ClickHouse engine, the
local platform server and a local traffic source, then writes each workflow's history to
tests/histories/. Re-record only on purpose: a history that stops replaying is what the
replay test exists to catch, so record new scenarios rather than overwrite old ones.
"""

import asyncio
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.testing import WorkflowEnvironment

from relay import search_attributes
from relay.crypto import KeyRing
from relay.payload_codec import relay_data_converter
from relay.store.database import apply_migrations, open_clickhouse
from tests.conftest import binary
from tests.harness import RECORDING_KEYS, Relay, running_relay
from tests.platform_server import PlatformServer, Scripted
from tests.traffic_source import TrafficSource

OUT = Path(__file__).parent / "histories"
# The workflow shape being recorded: `conversion_*` are runs from before the inbox (persist
# and plan as activities), `inbox_*` runs with the first step as a local activity,
# `firsttry_*` runs whose sends also make their first try as a local activity, `encrypted_*`
# the same shape with payloads encrypted by the codec under RECORDING_KEYS, `states_*` runs
# started with search attributes that upsert them and record their delivery state (recorded
# before the codec was merged; the codec reads plain payloads as they are), `shaped_*` runs
# started with `ConversionInput.shape` 1 (no patch markers, one upsert; encrypted),
# `regular_*` runs of shape 2 (every send a regular activity from its first try; encrypted).
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


SCENARIOS: dict[str, Callable[[Relay, TrafficSource], Awaitable[str]]] = {
    "clean": clean,
    "retries": retries,
    "funnel": funnel,
    "duplicate": duplicate,
    "reversal": reversal,
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
                conversion_id = await SCENARIOS[name](relay, source)
                handle = relay.runtime.temporal.get_workflow_handle(conversion_id)
                history = await handle.fetch_history()
                path = OUT / f"{SHAPE}_{name}.json"
                path.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
                print(f"wrote {path} ({len(history.events)} events)")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:] or list(SCENARIOS)))
