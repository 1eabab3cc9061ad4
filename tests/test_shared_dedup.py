"""Several API replicas, each with its own inbox: Temporal's claims decide across them."""

import asyncio

from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from relay.store.pool import ClickHouse
from tests.harness import physical_rows, running_relay
from tests.platform_server import PlatformServer


async def test_concurrent_postbacks_split_across_two_inboxes_give_one_original(
    dev_env: WorkflowEnvironment,
    clickhouse: ClickHouse,
    platforms: PlatformServer,
    keys: KeyRing,
) -> None:
    async with (
        running_relay(dev_env, clickhouse, platforms, keys, shared_dedup=True) as one,
        running_relay(dev_env, clickhouse, platforms, keys, shared_dedup=True) as two,
    ):
        key = (await one.network())["postback_key"]
        campaign = await one.campaign()
        pixel = await one.pixel(campaign["id"], "meta")
        click_id = await one.click(campaign["id"])
        two.runtime.config_cache.invalidate()  # written through the other replica
        replicas = [one, two] * 10
        responses = await asyncio.gather(
            *(r.postback(key=key, click_id=click_id, txid=f"S-{i}") for i, r in enumerate(replicas))
        )
        # The same transaction sent to both replicas at once: one conversion.
        same = await asyncio.gather(
            *(r.postback(key=key, click_id=click_id, txid="TWICE") for r in (one, two))
        )
        assert {r.status_code for r in [*responses, *same]} == {200}
        answers = [r.json() for r in responses]
        ids = {a["conversion_id"] for a in answers}
        assert len(ids) == 20
        for replica, answer in zip(replicas, answers, strict=True):
            await replica.result(answer["conversion_id"])
        twice = {s.json()["conversion_id"] for s in same}
        assert len(twice) == 1
        await one.result(twice.pop())
        records = [await one.conversion(c) for c in ids]
        assert sum(not r["is_duplicate"] for r in records) == 1
        assert all(physical_rows(clickhouse, c) == 1 for c in ids)
        # One original sale on the click: the pixel fired once, for it.
        [request] = platforms.requests_for("meta", pixel["platform_pixel_id"])
        [original] = [r for r in records if not r["is_duplicate"]]
        assert request.body["data"][0]["event_id"] == original["conversion_id"]
