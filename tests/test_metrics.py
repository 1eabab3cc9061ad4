"""`/metrics`: Relay's series after real conversions, its token, the worker's listener and
the Temporal SDK's series."""

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.testing import WorkflowEnvironment

from api.routes.metrics import metrics_app
from relay.core.crypto import KeyRing
from relay.core.metrics import ProcessState, render
from relay.core.settings import Settings
from relay.store.pool import ClickHouse
from relay.temporal.setup import connect_temporal
from tests.harness import Relay, running_relay
from tests.platform_server import PlatformServer, Scripted
from tests.support import Samples, delta, samples

SCRAPE_TOKEN = "scrape-only-token"


@pytest.fixture
async def scraped(
    dev_env: WorkflowEnvironment, clickhouse: ClickHouse, platforms: PlatformServer, keys: KeyRing
) -> AsyncIterator[Relay]:
    async with running_relay(
        dev_env, clickhouse, platforms, keys, metrics_token=SCRAPE_TOKEN
    ) as relay:
        yield relay


async def scrape(http: httpx.AsyncClient, token: str = SCRAPE_TOKEN) -> Samples:
    response = await http.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return samples(response.text)


async def test_relay_series_after_conversions(scraped: Relay) -> None:
    relay = scraped
    network = await relay.network()
    campaign = await relay.campaign()
    await relay.pixel(campaign["id"], "tiktok")
    meta = await relay.pixel(campaign["id"], "meta")
    relay.platforms.script("meta", meta["platform_pixel_id"], Scripted(status=400))
    before = await scrape(relay.http)

    click_id = await relay.click(campaign["id"])
    first = await relay.postback(key=network["postback_key"], click_id=click_id)
    again = await relay.postback(key=network["postback_key"], click_id=click_id)
    wrong_key = await relay.postback(key="not-a-key", click_id=click_id)
    too_large = await relay.http.post("/postback", content=b"x" * (17 * 1024))
    assert [first.status_code, again.status_code, wrong_key.status_code] == [200, 200, 401]
    assert too_large.status_code == 413
    await relay.result(first.json()["conversion_id"])
    after = await scrape(relay.http)

    postbacks = "relay_postbacks_total"
    assert delta(before, after, postbacks, outcome="accepted", status="200") == 1
    assert delta(before, after, postbacks, outcome="existing", status="200") == 1
    assert delta(before, after, postbacks, outcome="refused", status="401") == 1
    assert delta(before, after, postbacks, outcome="refused", status="413") == 1
    attempts = "relay_delivery_attempts_total"
    assert delta(before, after, attempts, destination="tiktok", verdict="delivered") == 1
    assert delta(before, after, attempts, destination="meta", verdict="permanent") == 1
    latency = "relay_delivery_attempt_duration_seconds_count"
    assert delta(before, after, latency, destination="tiktok") == 1
    assert delta(before, after, latency, destination="meta") == 1
    assert after[("relay_inbox_depth", ())] == 0
    assert after[("relay_inbox_capacity", ())] == relay.runtime.settings.inbox_capacity
    assert 0 <= after[("relay_config_cache_age_seconds", ())] < 60
    assert ("process_resident_memory_bytes", ()) in after


async def test_metrics_needs_a_token(scraped: Relay) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        refused = await scraped.http.get("/metrics", headers=headers)
        assert refused.status_code == 401
        assert refused.json()["error"]["param"] == "Authorization"
    assert await scrape(scraped.http, "test-admin-token")  # the admin token reads it too


async def test_worker_listener_serves_metrics(scraped: Relay) -> None:
    """`relay worker`'s listener (RELAY_METRICS_PORT): the same series behind the same token."""
    transport = httpx.ASGITransport(app=metrics_app(scraped.runtime))
    async with httpx.AsyncClient(transport=transport, base_url="http://worker.test") as http:
        found = await scrape(http)
        assert ("relay_config_cache_age_seconds", ()) in found
        assert ("process_cpu_seconds_total", ()) in found
        assert (await http.get("/metrics")).status_code == 401


async def test_temporal_sdk_series(dev_env: WorkflowEnvironment, keys: KeyRing) -> None:
    """A client connected as Relay connects runs on the runtime whose metric buffer
    /metrics reads: its requests show as the SDK's series (a counter, as before)."""
    address = dev_env.client.service_client.config.target_host
    client = await connect_temporal(Settings(), address, keys)
    await client.count_workflows()
    text = (await render(ProcessState())).decode()
    types = {family.name: family.type for family in text_string_to_metric_families(text)}
    assert "temporal_request" in types, sorted(n for n in types if n.startswith("temporal"))
    assert types["temporal_request"] == "counter"
    assert types["temporal_request_latency"] == "histogram"
    assert "temporal_request_total{" in text
