"""A whole Relay in the test process: API over ASGI, a worker on its own task queue,
the real in-process ClickHouse engine, a real Temporal server and the local platforms."""

import asyncio
import tempfile
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from temporalio.testing import WorkflowEnvironment

from api.app import create_app
from relay.core.crypto import KeyRing
from relay.core.settings import Settings
from relay.domain.redelivery import RedeliveryResult
from relay.domain.workflow_io import ConversionResult
from relay.process.worker import relay_worker
from relay.runtime import Runtime, running_intake
from relay.store.pool import ClickHouse
from tests.platform_server import PlatformServer, Scripted
from workflows.conversion import ConversionWorkflow
from workflows.redelivery import RedeliveryWorkflow

ADMIN_TOKEN = "test-admin-token"
# The key ring the committed histories were recorded with (tests/record_histories.py): test
# data only. Histories recorded before the payload codec hold plain payloads.
RECORDING_KEYS = "rec:coCppUmKj4FTtxOSmwTllSGtShROctHfsqUcQ3n0CEg="
LOOPBACK_SOURCES = "127.0.0.1/32"
BROWSER_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"
# Meta's answer to a token it does not accept: a permanent failure, so a fire fails for good.
BAD_TOKEN = Scripted(status=400, body=PlatformServer.meta_error(190))


@dataclass
class Relay:
    """Handles a test needs, plus shortcuts for the admin, click and postback APIs."""

    runtime: Runtime
    http: httpx.AsyncClient
    platforms: PlatformServer
    env: WorkflowEnvironment

    @property
    def pool_size(self) -> int:
        return self.runtime.clickhouse.size

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN_TOKEN}"}

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(path, json=body, headers=self.admin)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def network(self) -> dict[str, Any]:
        return await self.post("/api/networks", {"name": "Network " + uuid.uuid4().hex[:6]})

    async def campaign(self, **fields: Any) -> dict[str, Any]:
        body = {"name": "Campaign", "offer_url": "https://shop.example/lp?cid={click_id}", **fields}
        return await self.post("/api/campaigns", body)

    async def pixel(self, campaign_id: str, platform: str, **fields: Any) -> dict[str, Any]:
        """Create a pixel and bind its token to it in the platform stand-in, which refuses
        any other token for the pixel (Meta 190, TikTok 40105)."""
        body = {
            "platform": platform,
            "platform_pixel_id": f"{platform}{uuid.uuid4().hex[:10]}",
            "access_token": f"SECRET-{platform}-{uuid.uuid4().hex}",
            "name": f"{platform} main",
            **fields,
        }
        created = await self.post(f"/api/campaigns/{campaign_id}/pixels", body)
        # Relay keeps the token trimmed, as pasted tokens often carry whitespace.
        token = str(body["access_token"]).strip()
        self.platforms.expect_token(platform, created["platform_pixel_id"], token)
        return created

    async def click(
        self, campaign_id: str, headers: dict[str, str] | None = None, **query: str
    ) -> str:
        """Follow the tracking link like a browser; return the click ID from the redirect."""
        response = await self.http.get(
            f"/c/{campaign_id}", params=query, headers={"User-Agent": BROWSER_UA, **(headers or {})}
        )
        assert response.status_code == 302, response.text
        return parse_qs(urlsplit(response.headers["location"]).query)["cid"][0]

    async def postback(self, **params: str) -> httpx.Response:
        return await self.http.get("/postback", params=params)

    async def forwarded(self, conversion_id: str, timeout_s: float = 30) -> None:
        """Wait until the inbox has handed the conversion to Temporal."""
        async with asyncio.timeout(timeout_s):
            while await self.pending(conversion_id):  # noqa: ASYNC110 - polls another store
                await asyncio.sleep(0.02)

    async def pending(self, conversion_id: str) -> bool:
        intake = self.runtime.intake
        assert intake is not None
        entries = await intake.inbox.take(0, 1_000_000)
        return any(e.conversion_id == conversion_id for e in entries)

    async def result(self, conversion_id: str, timeout_s: float = 60) -> ConversionResult:
        await self.forwarded(conversion_id, timeout_s)
        handle = self.runtime.temporal.get_workflow_handle_for(
            ConversionWorkflow.run, conversion_id
        )
        if not self.env.supports_time_skipping:
            return await asyncio.wait_for(handle.result(), timeout_s)
        # The API started the workflow, so this handle is not the time-skipping client's own:
        # unlock time skipping explicitly while waiting, as that client's handles do.
        async with self.env.time_skipping_unlocked():  # type: ignore[attr-defined]
            return await asyncio.wait_for(handle.result(), timeout_s)

    async def conversion(self, conversion_id: str) -> dict[str, Any]:
        response = await self.http.get(f"/api/conversions/{conversion_id}", headers=self.admin)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found


def physical_rows(clickhouse: ClickHouse, conversion_id: str) -> int:
    """Stored rows for an ID, not collapsed by FINAL: proves that no second write happened."""
    result = clickhouse.query(
        "SELECT count() FROM conversions WHERE conversion_id = {id:String}",
        parameters={"id": conversion_id},
    )
    return int(result.result_rows[0][0])


def network_conversions(clickhouse: ClickHouse, network_id: str) -> int:
    """Conversions recorded for one network: a test's own network leaves out every other
    test's conversions, however late they are written."""
    result = clickhouse.query(
        "SELECT count() FROM conversions FINAL WHERE network_id = {id:String}",
        parameters={"id": network_id},
    )
    return int(result.result_rows[0][0])


async def failed_conversions(relay: Relay, count: int = 1) -> tuple[dict[str, Any], list[str]]:
    """`count` conversions on a new campaign whose Meta pixel refuses each one's first
    request for good (then accepts again); waits until every workflow is done. The pixel
    and the conversions' IDs."""
    network = await relay.network()
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], "meta")
    relay.platforms.script("meta", pixel["platform_pixel_id"], *[BAD_TOKEN] * count)
    ids = []
    for _ in range(count):
        click_id = await relay.click(campaign["id"])
        answer = await relay.postback(key=network["postback_key"], click_id=click_id)
        ids.append(answer.json()["conversion_id"])
    await asyncio.gather(*(relay.result(i) for i in ids))
    return pixel, ids


async def redelivery_ended(relay: Relay, workflow_id: str) -> RedeliveryResult:
    """Wait for a redelivery workflow's end: its result."""
    handle = relay.runtime.temporal.get_workflow_handle_for(RedeliveryWorkflow.run, workflow_id)
    return await asyncio.wait_for(handle.result(), 60)


def meta_event_ids(relay: Relay, pixel: dict[str, Any]) -> list[tuple[str, int]]:
    """(event_id, HTTP status) of every request the Meta pixel got, oldest first."""
    requests = relay.platforms.requests_for("meta", pixel["platform_pixel_id"])
    return [(r.body["data"][0]["event_id"], r.status) for r in requests]


@asynccontextmanager
async def running_relay(
    env: WorkflowEnvironment,
    clickhouse: ClickHouse,
    platforms: PlatformServer,
    keys: KeyRing,
    **overrides: Any,
) -> AsyncIterator[Relay]:
    """Relay wired to the given servers, with a fresh task queue so tests never share work,
    and a fresh inbox. One process owns the configuration, as in `relay up`. Outbound
    postbacks may reach 127.0.0.1, where the tests' traffic sources listen (pass
    `outbound_allowed_networks=[]` for the default: public addresses only)."""
    overrides = {"outbound_allowed_networks": [LOOPBACK_SOURCES], **overrides}
    with tempfile.TemporaryDirectory(prefix="relay-inbox-") as inbox_dir:
        settings = Settings(
            meta_base_url=platforms.base_url,
            tiktok_base_url=platforms.base_url,
            task_queue=f"relay-test-{uuid.uuid4().hex[:8]}",
            inbox_path=Path(inbox_dir) / "inbox.sqlite",
            workflow_sandbox=True,  # workflow code that breaks determinism fails here
            **overrides,
        )
        async with relay_with(env, clickhouse, platforms, keys, settings) as relay:
            yield relay


@asynccontextmanager
async def relay_with(
    env: WorkflowEnvironment,
    clickhouse: ClickHouse,
    platforms: PlatformServer,
    keys: KeyRing,
    settings: Settings,
) -> AsyncIterator[Relay]:
    """Relay on exactly these settings (no fresh task queue or inbox: the caller's own)."""
    temporal = env.client
    runtime = Runtime(settings, clickhouse, temporal, keys, ADMIN_TOKEN, embedded=True)

    @asynccontextmanager
    async def opened() -> AsyncIterator[Runtime]:
        yield runtime

    app = create_app(opened)
    app.state.runtime = runtime
    transport = httpx.ASGITransport(app=app, client=("203.0.113.9", 51000))
    async with (
        httpx.AsyncClient(transport=transport, base_url="http://relay.test") as http,
        relay_worker(
            temporal, settings, clickhouse, keys, config=runtime.config_cache, clicks=runtime.clicks
        ) as worker,
        worker,
        running_intake(runtime),
    ):
        yield Relay(runtime, http, platforms, env)
