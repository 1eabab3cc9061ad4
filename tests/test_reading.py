"""The reading API (filters, paging, workspace timezone), server-side clicks, health."""

from datetime import datetime
from typing import Any

from tests.harness import Relay
from tests.platform_server import Scripted


async def test_pixel_logs_filter_and_page(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    meta = await relay.pixel(campaign["id"], "meta")
    await relay.pixel(campaign["id"], "tiktok")
    relay.platforms.script("meta", meta["platform_pixel_id"], Scripted(status=400))
    conversions = []
    for txid in ("A", "B", "C"):
        click_id = await relay.click(campaign["id"])
        answer = await relay.postback(key=network["postback_key"], click_id=click_id, txid=txid)
        conversions.append(answer.json()["conversion_id"])
        await relay.result(conversions[-1])

    async def page(**params: str) -> dict[str, Any]:
        response = await relay.http.get("/api/pixel-logs", params=params, headers=relay.admin)
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    everything = await page(campaign_id=campaign["id"])
    assert everything["total"] == 6
    failed = await page(campaign_id=campaign["id"], success="false")
    assert failed["total"] == 1
    assert [i["platform"] for i in failed["items"]] == ["meta"]
    tiktok = await page(campaign_id=campaign["id"], platform="tiktok", limit="2")
    assert tiktok["total"] == 3 and len(tiktok["items"]) == 2
    rest = await page(campaign_id=campaign["id"], platform="tiktok", limit="2", offset="2")
    assert len(rest["items"]) == 1
    seen = {i["conversion_id"] for i in [*tiktok["items"], *rest["items"]]}
    assert seen == set(conversions)
    one = await page(conversion_id=conversions[0])
    assert one["total"] == 2
    future = await page(campaign_id=campaign["id"], since="2299-01-01T00:00:00Z")
    assert future["total"] == 0
    bad = await relay.http.get("/api/pixel-logs", params={"limit": "0"}, headers=relay.admin)
    assert bad.status_code == 422 and bad.json()["error"]["param"] == "limit"

    # A lead from another network: its fires, by network and by the event name sent.
    other = await relay.network()
    click_id = await relay.click(campaign["id"])
    answer = await relay.postback(key=other["postback_key"], click_id=click_id, event="lead")
    lead = answer.json()["conversion_id"]
    await relay.result(lead)
    of_other = await page(network_id=other["id"])
    assert of_other["total"] == 2 and {i["conversion_id"] for i in of_other["items"]} == {lead}
    assert (await page(network_id=network["id"]))["total"] == 6
    sent = {i["platform"]: i["event_name"] for i in of_other["items"]}
    leads = await page(campaign_id=campaign["id"], event_name=sent["meta"], platform="meta")
    assert [i["conversion_id"] for i in leads["items"]] == [lead]


async def test_times_are_shown_in_the_workspace_timezone(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    await relay.pixel(campaign["id"], "meta")
    click_id = await relay.click(campaign["id"])
    answer = await relay.postback(key=network["postback_key"], click_id=click_id)
    conv_id = answer.json()["conversion_id"]
    await relay.result(conv_id)
    put = await relay.http.put(
        "/api/settings", json={"timezone": "Asia/Kolkata"}, headers=relay.admin
    )
    assert put.status_code == 200
    try:
        stored = await relay.conversion(conv_id)
        received = datetime.fromisoformat(stored["received_at"])
        offset = received.utcoffset()
        assert offset is not None and offset.total_seconds() == 5.5 * 3600
        assert stored["fires"][0]["fired_at"].endswith("+05:30")
    finally:
        await relay.http.put("/api/settings", json={"timezone": "UTC"}, headers=relay.admin)
    wrong = await relay.http.put(
        "/api/settings", json={"timezone": "Mars/Olympus"}, headers=relay.admin
    )
    assert wrong.status_code == 422 and wrong.json()["error"]["param"] == "timezone"


async def test_server_side_click_then_postback(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    meta = await relay.pixel(campaign["id"], "meta")
    cookie_fbc = "fb.1.1554763741205.AbCdEf-_123.AQEAAQMB"
    response = await relay.http.post(
        "/api/clicks",
        headers=relay.admin,
        json={
            "campaign_id": campaign["id"],
            "ip": "2001:db8::1",
            "user_agent": "UA/2",
            "landing_url": "https://lander.example/p",
            "fbc": cookie_fbc,
            "country": "de",
        },
    )
    assert response.status_code == 201
    click_id = response.json()["click_id"]
    answer = await relay.postback(key=network["postback_key"], click_id=click_id)
    await relay.result(answer.json()["conversion_id"])
    [request] = relay.platforms.requests_for("meta", meta["platform_pixel_id"])
    user = request.body["data"][0]["user_data"]
    assert user["fbc"] == cookie_fbc  # passed through byte-for-byte, 5 segments
    assert user["client_ip_address"] == "2001:db8::1"
    assert request.body["data"][0]["event_source_url"] == "https://lander.example/p"


async def test_health_and_readiness(relay: Relay) -> None:
    assert (await relay.http.get("/healthz")).json() == {"status": "ok"}
    ready = await relay.http.get("/readyz", headers=relay.admin)
    assert ready.status_code == 200
    assert ready.json() == {
        "ready": True,
        "temporal": "ok",
        "clickhouse": "ok",
        "stuck": {},
        "inbox": {"depth": 0, "capacity": 200_000, "oldest_age_s": None},
    }
