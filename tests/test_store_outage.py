"""ClickHouse killed or paused for 30 s in the distributed mode (one `relay api`, one `relay
worker`, ClickHouse over HTTP from `tests.clickhouse_http`) while conversions are posted and
delivered: every postback answered 200 reaches Meta, TikTok and the outbound postback once the
store is back, without a restart, and a send the platform accepted is not repeated because
its attempt row could not be written (killed: no event sent twice; paused: at most twice).
The attempt log and the delivery states catch up too."""

import asyncio
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import clickhouse_connect
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from tests.distributed import ClickHouseHttp, Cluster, Role
from tests.embedded import free_port
from tests.platform_server import PlatformServer
from tests.traffic_source import TrafficSource

ADMIN = "store-outage-admin-token-of-32-characters"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
PIXELS = {"meta": "outagemeta", "tiktok": "outagetiktok"}
OUTAGE_S = 30.0
RATE_PER_S = 25.0


@dataclass
class Deployment:
    api: Role
    worker: Role
    clickhouse: ClickHouseHttp
    platforms: PlatformServer
    source: TrafficSource


@pytest.fixture
def stand_ins() -> Iterator[tuple[PlatformServer, TrafficSource]]:
    with PlatformServer() as platforms, TrafficSource() as source:
        for platform, pixel in PIXELS.items():
            platforms.expect_token(platform, pixel, f"token-{pixel}")
        yield platforms, source


@pytest.fixture
async def deployment(
    tmp_path: Path,
    dev_env: WorkflowEnvironment,
    stand_ins: tuple[PlatformServer, TrafficSource],
) -> AsyncIterator[Deployment]:
    platforms, source = stand_ins
    clickhouse = ClickHouseHttp(
        tmp_path / "clickhouse", tmp_path / "clickhouse.log", port=free_port()
    )
    clickhouse.start()
    shared = Cluster(
        temporal_address=dev_env.client.service_client.config.target_host,
        clickhouse_dsn=clickhouse.dsn,
        database=f"relay_outage_{uuid.uuid4().hex[:8]}",
        task_queue=f"store-outage-{uuid.uuid4().hex[:8]}",
        encryption_key=KeyRing.generate_spec("so"),
        admin_token=ADMIN,
        settings={
            "RELAY_CONFIG_REFRESH_S": "0.5",
            "RELAY_WORKER_HEARTBEAT_S": "0.5",
            "RELAY_META_BASE_URL": platforms.base_url,
            "RELAY_TIKTOK_BASE_URL": platforms.base_url,
            "RELAY_OUTBOUND_ALLOWED_NETWORKS": '["127.0.0.0/8"]',
        },
    )
    api = Role("api", shared, tmp_path / "api")
    worker = Role("worker", shared, tmp_path / "worker")
    try:
        await asyncio.to_thread(shared.migrate, tmp_path / "migrate")
        for role in (api, worker):
            role.start()
        for role in (api, worker):
            await asyncio.to_thread(role.wait_ready)
        yield Deployment(api, worker, clickhouse, platforms, source)
    finally:
        for role in (api, worker):
            role.stop()
        clickhouse.stop()


async def _funnel(http: httpx.AsyncClient, d: Deployment) -> tuple[str, str]:
    """A network, a campaign with a Meta and a TikTok pixel and an outbound postback."""

    async def create(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await http.post(f"{d.api.url}{path}", json=body, headers=AUTH)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    network = await create("/api/networks", {"name": "n"})
    campaign = await create(
        "/api/campaigns", {"name": "c", "offer_url": "https://shop.example/?cid={click_id}"}
    )
    for platform, pixel in PIXELS.items():
        body = {"platform": platform, "platform_pixel_id": pixel, "name": platform}
        await create(
            f"/api/campaigns/{campaign['id']}/pixels", {**body, "access_token": f"token-{pixel}"}
        )
    await create(
        f"/api/campaigns/{campaign['id']}/postbacks",
        {"url_template": d.source.url + "/cb?e={event_id}"},
    )
    return network["postback_key"], campaign["id"]


async def _clicks(http: httpx.AsyncClient, api: Role, campaign: str, n: int) -> list[str]:
    ids = []
    for _ in range(n):
        response = await http.get(f"{api.url}/c/{campaign}", headers={"User-Agent": "UA/1"})
        assert response.status_code == 302, response.text
        ids.append(parse_qs(urlsplit(response.headers["location"]).query)["cid"][0])
    return ids


async def _post_all(http: httpx.AsyncClient, api: Role, key: str, clicks: list[str]) -> list[str]:
    """One postback per click at RATE_PER_S, each resent (as a network does) until 200."""
    answered: list[str] = []

    async def one(click: str) -> None:
        params = {"key": key, "click_id": click, "payout": "4.20", "txid": f"T-{click}"}
        for _ in range(600):
            try:
                response = await http.get(f"{api.url}/postback", params=params)
            except httpx.TransportError:
                await asyncio.sleep(0.2)
                continue
            if response.status_code == 503:
                await asyncio.sleep(float(response.headers.get("retry-after", "1")))
                continue
            assert response.status_code == 200, response.text
            answered.append(response.json()["conversion_id"])
            return
        raise AssertionError(f"the postback for {click} was never accepted")

    tasks = []
    for click in clicks:
        tasks.append(asyncio.create_task(one(click)))
        await asyncio.sleep(1 / RATE_PER_S)
    await asyncio.gather(*tasks)
    return answered


def _event(request: Any) -> str:
    data = request.body.get("data")
    return str((data[0] if isinstance(data, list) else request.body)["event_id"])


def _received(d: Deployment) -> dict[str, Counter[str]]:
    """How many times each destination got each event ID (answered as accepted)."""
    got = {
        platform: Counter(
            _event(r)
            for r in d.platforms.requests_for(platform, pixel)
            if r.status == 200 and not r.problems
        )
        for platform, pixel in PIXELS.items()
    }
    got["postback"] = Counter(c.query["e"][0] for c in list(d.source.calls) if "e" in c.query)
    return got


async def _until(what: str, timeout_s: float, check: Any) -> None:
    deadline = time.monotonic() + timeout_s
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.5)


@pytest.mark.parametrize(
    ("fault", "conversions", "most_copies"), [("kill", 300, 1), ("pause", 150, 2)]
)
async def test_clickhouse_outage_delays_delivery_never_loses_or_repeats_it(
    deployment: Deployment, fault: str, conversions: int, most_copies: int
) -> None:
    d = deployment
    async with httpx.AsyncClient(timeout=30) as http:
        # No wait for the worker's configuration cache: it plans each conversion from a
        # configuration at least as new as the conversion's receipt (current_since).
        key, campaign = await _funnel(http, d)
        clicks = await _clicks(http, d.api, campaign, conversions)

        async def outage() -> None:
            await asyncio.sleep(conversions / RATE_PER_S / 3)  # a third posted before
            d.clickhouse.kill() if fault == "kill" else d.clickhouse.pause()
            await asyncio.sleep(OUTAGE_S / 2)
            # Not ready, naming the store, while it is away.
            ready = await http.get(f"{d.api.url}/readyz", timeout=15)
            assert ready.status_code == 503, ready.text
            await asyncio.sleep(OUTAGE_S / 2)
            d.clickhouse.start() if fault == "kill" else d.clickhouse.resume()

        answered, _ = await asyncio.gather(_post_all(http, d.api, key, clicks), outage())
        ids = set(answered)
        assert len(ids) == conversions

        def delivered() -> bool:
            return all(set(got) >= ids for got in _received(d).values())

        await _until("every conversion at every destination", 240, delivered)
        for destination, got in _received(d).items():
            assert set(got) == ids, destination
            worst = got.most_common(1)[0]
            assert worst[1] <= most_copies, (destination, worst, sum(got.values()) - len(ids))

        # The bookkeeping caught up by itself: every delivered send has its attempt row and
        # every conversion its final state; the API is ready again.
        ch = clickhouse_connect.get_client(
            dsn=d.clickhouse.dsn, database=d.api.env["RELAY_CLICKHOUSE_DATABASE"]
        )
        try:

            def bookkept() -> bool:
                fired, posted, states = ch.query(
                    "SELECT (SELECT uniqExact(conversion_id, platform) FROM pixel_fires "
                    "WHERE success), (SELECT uniqExact(conversion_id) FROM postback_attempts "
                    "WHERE success), (SELECT countIf(state = 'delivered') FROM "
                    "delivery_states FINAL)"
                ).result_rows[0]
                return bool(fired == 2 * conversions and posted == conversions == states)

            await _until("the attempt rows and delivery states", 120, bookkept)
        finally:
            ch.close()
        ready = await http.get(f"{d.api.url}/readyz")
        assert ready.status_code == 200, ready.text
