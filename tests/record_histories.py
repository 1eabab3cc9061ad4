"""Record the workflow histories the replay tests replay: `python -m tests.record_histories`.

Runs real conversions through a real dev server, the in-process ClickHouse engine and the
local platform server, then writes each workflow's history to tests/histories/. Re-record
only on purpose: a history that stops replaying is what the replay test exists to catch.
"""

import asyncio
import json
import tempfile
from pathlib import Path

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from relay.crypto import KeyRing
from relay.store.database import apply_migrations, open_clickhouse
from tests.conftest import binary
from tests.harness import Relay, running_relay
from tests.platform_server import PlatformServer, Scripted

OUT = Path(__file__).parent / "histories"


async def _conversion(relay: Relay, retries: bool) -> str:
    network = await relay.network()
    campaign = await relay.campaign()
    meta = await relay.pixel(campaign["id"], "meta")
    await relay.pixel(campaign["id"], "tiktok")
    if retries:
        relay.platforms.script(
            "meta", meta["platform_pixel_id"], Scripted(status=500), Scripted(status=503)
        )
    click_id = await relay.click(campaign["id"], fbclid="IwAR-replay")
    answer = await relay.postback(key=network["postback_key"], click_id=click_id, payout="7")
    conversion_id: str = answer.json()["conversion_id"]
    await relay.result(conversion_id)
    return conversion_id


async def main() -> None:
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=binary("temporal"), data_converter=pydantic_data_converter
    )
    with tempfile.TemporaryDirectory() as tmp, PlatformServer() as platforms:
        clickhouse = open_clickhouse(f"chdb://{tmp}", "relay_record")
        apply_migrations(clickhouse)
        keys = KeyRing.parse(KeyRing.generate_spec("rec"))
        async with running_relay(env, clickhouse, platforms, keys) as relay:
            for name, retries in (("clean", False), ("retries", True)):
                conversion_id = await _conversion(relay, retries)
                handle = relay.runtime.temporal.get_workflow_handle(conversion_id)
                history = await handle.fetch_history()
                path = OUT / f"conversion_{name}.json"
                path.write_text(json.dumps(history.to_json_dict(), indent=1) + "\n")
                print(f"wrote {path} ({len(history.events)} events)")
    await env.shutdown()


if __name__ == "__main__":
    asyncio.run(main())
