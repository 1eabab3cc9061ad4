"""Relay scaled out as a user runs it: two `relay api` and two `relay worker` processes (the
console script, RELAY_ variables) on one Temporal and one ClickHouse reached over HTTP
(`tests.clickhouse_http`). Postbacks spread over both APIs, with concurrent duplicates split
across them; one worker is SIGKILLed while its sends are in flight and one API is restarted
(SIGTERM, then started again on its data dir). Nothing accepted is lost or delivered as two
originals, and every attempt that completed is in the attempt log."""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import clickhouse_connect
import httpx
import pytest
from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from tests.distributed import ClickHouseHttp, Cluster, Role
from tests.platform_server import PlatformServer, Scripted
from tests.support import until

ADMIN = "multi-process-admin-token-of-32-characters"
AUTH = {"Authorization": f"Bearer {ADMIN}"}
SLOW_S = 2.5  # how long worker A's sends wait at its platform stand-in before the answer
PIXELS = {"meta": "mpmeta", "tiktok": "mptiktok"}


@pytest.fixture
def clickhouse_server(tmp_path: Path) -> Iterator[ClickHouseHttp]:
    with ClickHouseHttp(tmp_path / "clickhouse", tmp_path / "clickhouse.log") as server:
        yield server


@pytest.fixture
def egress() -> Iterator[tuple[PlatformServer, PlatformServer]]:
    """A platform stand-in per worker: which worker sent a request is where it arrived."""
    with PlatformServer() as a, PlatformServer() as b:
        for server in (a, b):
            for platform, pixel in PIXELS.items():
                server.expect_token(platform, pixel, f"token-{pixel}")
        yield a, b


@pytest.fixture
async def cluster(
    tmp_path: Path,
    dev_env: WorkflowEnvironment,
    clickhouse_server: ClickHouseHttp,
    egress: tuple[PlatformServer, PlatformServer],
) -> AsyncIterator[dict[str, Role]]:
    """`relay migrate`, then two APIs and two workers; worker A reaches the platforms
    through egress[0], worker B through egress[1]."""
    config = dev_env.client.service_client.config
    shared = Cluster(
        temporal_address=config.target_host,
        clickhouse_dsn=clickhouse_server.dsn,
        database=f"relay_mp_{uuid.uuid4().hex[:8]}",
        task_queue=f"multi-process-{uuid.uuid4().hex[:8]}",
        encryption_key=KeyRing.generate_spec("mp"),
        admin_token=ADMIN,
        settings={
            "RELAY_CONFIG_REFRESH_S": "0.5",
            "RELAY_WORKER_HEARTBEAT_S": "0.5",
            "RELAY_META_TIMEOUT_S": "8",
            "RELAY_TIKTOK_TIMEOUT_S": "8",
        },
    )
    await asyncio.to_thread(shared.migrate, tmp_path / "migrate")
    roles = {
        "api1": Role("api", shared, tmp_path / "api1"),
        "api2": Role("api", shared, tmp_path / "api2"),
    }
    for name, stand_in in (("worker_a", egress[0]), ("worker_b", egress[1])):
        platforms = {"RELAY_META_BASE_URL": stand_in.base_url}
        platforms["RELAY_TIKTOK_BASE_URL"] = stand_in.base_url
        roles[name] = Role("worker", shared, tmp_path / name, **platforms)
    try:
        for role in roles.values():
            role.start()
        for role in roles.values():
            await asyncio.to_thread(role.wait_ready)
        yield roles
    finally:
        for role in roles.values():
            role.stop()


class Sender:
    """Posts like an affiliate network behind a load balancer: to the API asked for, and
    to the other one when that one does not answer (stopped, restarting)."""

    def __init__(self, http: httpx.AsyncClient, apis: list[Role], key: str) -> None:
        self.http, self.apis, self.key = http, apis, key
        self.answers: list[dict[str, Any]] = []  # with "click" and "txid" added

    async def postback(self, api: int, click: str, txid: str) -> dict[str, Any]:
        params = {"key": self.key, "click_id": click, "txid": txid, "payout": "9.50"}
        for attempt in range(40):
            role = self.apis[(api + attempt) % len(self.apis)]
            try:
                response = await self.http.get(f"{role.url}/postback", params=params)
            except httpx.TransportError:
                await asyncio.sleep(0.1)
                continue
            if response.status_code == 503:  # not ready yet, or shutting down
                await asyncio.sleep(0.1)
                continue
            assert response.status_code == 200, response.text
            answer: dict[str, Any] = {**response.json(), "click": click, "txid": txid}
            answer["served_by"] = role.url
            self.answers.append(answer)
            return answer
        raise AssertionError(f"no API took the postback {txid}")

    async def sale(self, click: str, tag: str) -> None:
        """One click's sales, all at once: the same transaction to both APIs (one
        conversion), and two more transactions, one through each API."""
        same = await asyncio.gather(
            self.postback(0, click, f"{tag}-same"),
            self.postback(1, click, f"{tag}-same"),
            self.postback(0, click, f"{tag}-x"),
            self.postback(1, click, f"{tag}-y"),
        )
        assert same[0]["conversion_id"] == same[1]["conversion_id"]


async def _setup(http: httpx.AsyncClient, api1: Role, api2: Role) -> tuple[str, str]:
    """A network, a campaign and its two pixels, made through API 1: (postback key, id)."""

    async def create(path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await http.post(f"{api1.url}{path}", json=body, headers=AUTH)
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    network = await create("/api/networks", {"name": "n"})
    offer = "https://shop.example/?cid={click_id}"
    campaign = await create("/api/campaigns", {"name": "c", "offer_url": offer})
    for platform, pixel in PIXELS.items():
        body = {"platform": platform, "platform_pixel_id": pixel, "name": platform}
        await create(
            f"/api/campaigns/{campaign['id']}/pixels", {**body, "access_token": f"token-{pixel}"}
        )
    # Written through API 1, read by API 2 within RELAY_CONFIG_REFRESH_S (its snapshot then
    # holds the network too, written first). The workers need no wait: each plans a
    # conversion from a configuration at least as new as its receipt (current_since).

    async def api2_knows_the_campaign() -> bool:
        return (await http.get(f"{api2.url}/c/{campaign['id']}")).status_code == 302

    await until(api2_knows_the_campaign, 20, "API 2 to serve the new campaign")
    return network["postback_key"], campaign["id"]


async def _clicks(http: httpx.AsyncClient, apis: list[Role], campaign: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        response = await http.get(
            f"{apis[i % 2].url}/c/{campaign}", headers={"User-Agent": "Mozilla/5.0"}
        )
        assert response.status_code == 302, response.text
        ids.append(parse_qs(urlsplit(response.headers["location"]).query)["cid"][0])
    return ids


def _in_flight(server: PlatformServer) -> list[float]:
    """Arrival times of the requests still waiting for their (slow) answer."""
    now = time.time()
    return [r.received_at for r in server.requests_for() if now - r.received_at < SLOW_S - 0.5]


async def test_two_apis_and_two_workers_share_temporal_and_clickhouse(
    cluster: dict[str, Role],
    clickhouse_server: ClickHouseHttp,
    egress: tuple[PlatformServer, PlatformServer],
) -> None:
    api1, api2, worker_a = cluster["api1"], cluster["api2"], cluster["worker_a"]
    async with httpx.AsyncClient(timeout=30) as http:
        key, campaign = await _setup(http, api1, api2)
        clicks = await _clicks(http, [api1, api2], campaign, 14)
        sender = Sender(http, [api1, api2], key)

        # Phase 1: worker A's sends are slow; SIGKILL it while one is in flight.
        for platform, pixel in PIXELS.items():
            egress[0].script(platform, pixel, *[Scripted(delay_s=SLOW_S)] * 40)
        used = 0
        async with asyncio.timeout(30):
            while not _in_flight(egress[0]):
                assert used < 8, "worker A was given no send (worker B took every workflow)"
                await sender.sale(clicks[used], f"P1-{used}")
                used += 1
                await asyncio.sleep(0.3)
        worker_a.kill()
        killed_at = time.time()

        # Phase 2: more sales while API 2 is stopped (SIGTERM) and started again.
        async def traffic() -> None:
            for i in range(used, len(clicks) - 1):
                await sender.sale(clicks[i], f"P2-{i}")
                await asyncio.sleep(0.4)

        phase_1 = len(sender.answers)
        sending = asyncio.create_task(traffic())
        # API 2 stops with phase 2 under way: once one of its sales has been answered.
        await until(lambda: len(sender.answers) > phase_1, 30, "a phase 2 postback answered")
        assert await asyncio.to_thread(api2.terminate) == 0
        api2.start()
        await asyncio.to_thread(api2.wait_ready)
        await sending
        await sender.sale(clicks[-1], "P3")  # split across both again, API 2 restarted
        assert {a["served_by"] for a in sender.answers[-4:]} == {api1.url, api2.url}

        database = api1.env["RELAY_CLICKHOUSE_DATABASE"]
        ch = clickhouse_connect.get_client(dsn=clickhouse_server.dsn, database=database)
        try:
            ids = sorted({a["conversion_id"] for a in sender.answers})
            await _until_finished(ch, ids, timeout_s=60)
            _assert_outcome(ch, sender, egress, killed_at)
        finally:
            ch.close()


async def _until_finished(ch: Any, ids: list[str], timeout_s: float) -> None:
    """Until every conversion is recorded and every original's workflow recorded how its
    delivery ended (a duplicate's workflow ends at once, delivering nothing)."""
    deadline = time.monotonic() + timeout_s
    while True:
        recorded, originals, finished = ch.query(
            "SELECT count(), countIf(NOT is_duplicate), countIf(NOT is_duplicate AND "
            "conversion_id IN (SELECT conversion_id FROM delivery_states)) "
            "FROM conversions FINAL WHERE conversion_id IN {ids:Array(String)}",
            parameters={"ids": ids},
        ).result_rows[0]
        if recorded == len(ids) and finished == originals:
            return
        assert time.monotonic() < deadline, (
            f"{recorded} of {len(ids)} conversions recorded, {finished} of {originals} "
            "originals finished"
        )
        await asyncio.sleep(0.5)


def _assert_outcome(
    ch: Any, sender: Sender, egress: tuple[PlatformServer, PlatformServer], killed_at: float
) -> None:
    ids = sorted({a["conversion_id"] for a in sender.answers})
    rows = ch.query(
        "SELECT conversion_id, count(), max(is_duplicate), any(click_id) FROM conversions "
        "WHERE conversion_id IN {ids:Array(String)} GROUP BY conversion_id",
        parameters={"ids": ids},
    ).result_rows
    # One conversion row each (physical rows: no second write by another replica) ...
    assert {r[0]: r[1] for r in rows} == dict.fromkeys(ids, 1)
    # ... and one original per click, however its sales were split across the APIs.
    originals: dict[str, list[str]] = {}
    for conversion_id, _, duplicate, click in rows:
        if not duplicate:
            originals.setdefault(click, []).append(conversion_id)
    assert sorted(originals) == sorted({a["click"] for a in sender.answers})
    assert all(len(v) == 1 for v in originals.values()), originals
    wanted = {c for [c] in originals.values()}

    states = dict(
        ch.query(
            "SELECT conversion_id, state FROM delivery_states FINAL "
            "WHERE conversion_id IN {ids:Array(String)}",
            parameters={"ids": sorted(wanted)},
        ).result_rows
    )
    assert set(states.values()) == {"delivered"}, states

    # Every fire of every original reached a platform stand-in; nothing fired for a duplicate.
    for platform, pixel in PIXELS.items():
        reached = {
            _event(r)
            for server in egress
            for r in server.requests_for(platform, pixel)
            if r.status == 200 and not r.problems
        }
        assert reached == wanted, platform

    # The attempt log: every request a live worker got an answer to is logged; only those
    # cut by the SIGKILL (in flight then, or answered just before it) may be missing.
    logged = ch.query(
        "SELECT conversion_id, platform, groupArray(attempt), max(success) FROM pixel_fires "
        "WHERE conversion_id IN {ids:Array(String)} GROUP BY conversion_id, platform",
        parameters={"ids": sorted(wanted)},
    ).result_rows
    assert len(logged) == 2 * len(wanted)
    requests = [r for server in egress for r in server.requests_for()]
    cut = [
        r for r in egress[0].requests_for() if killed_at - SLOW_S - 1.0 < r.received_at < killed_at
    ]
    assert cut, "worker A was killed with no send in flight"
    for conversion_id, platform, attempts, success in logged:
        assert success == 1
        # No gap but the attempt the SIGKILL cut: it has a number and no row (its retry,
        # by worker B, logs the next number), whether its request had reached the platform
        # (then it is in `cut`) or not yet (killed between its start and its send).
        missing = set(range(1, max(attempts) + 1)) - set(attempts)
        assert len(attempts) == len(set(attempts)) and len(missing) <= 1, attempts
        sent = [r for r in requests if r.platform == platform and _event(r) == conversion_id]
        by_b = [r for r in sent if r in egress[1].requests_for()]
        assert len(by_b) <= len(attempts) <= len(sent)
    unlogged = len(requests) - sum(len(attempts) for _, _, attempts, _ in logged)
    assert 0 <= unlogged <= len(cut)


def _event(request: Any) -> str:
    """The event ID (Relay's conversion ID) of a Meta or TikTok request."""
    data = request.body.get("data")
    return str((data[0] if isinstance(data, list) else request.body)["event_id"])
