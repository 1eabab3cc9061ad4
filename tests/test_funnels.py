"""Funnels: custom conversions, primary fallback, parallel fires, outbound postbacks."""

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.harness import Relay
from tests.platform_server import Scripted
from tests.traffic_source import TrafficSource


@pytest.fixture
def source() -> Iterator[TrafficSource]:
    with TrafficSource() as running:
        yield running


async def _post(relay: Relay, path: str, body: dict[str, Any]) -> dict[str, Any]:
    return await relay.post(path, body)


async def test_ecommerce_funnel_routes_each_event_to_its_pixels(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    cid = campaign["id"]
    meta_main = await relay.pixel(cid, "meta", name="Meta purchase")
    tiktok_main = await relay.pixel(cid, "tiktok", name="TikTok purchase", tiktok_api="pixel_track")
    meta_view = await relay.pixel(cid, "meta", name="Meta product view", primary=False)
    tiktok_view = await relay.pixel(cid, "tiktok", name="TikTok product view", primary=False)
    for pixel in (meta_view, tiktok_view):
        await _post(
            relay,
            f"/api/campaigns/{cid}/custom-conversions",
            {"inbound_event": "AddToCart", "pixel": pixel["id"], "event_name": "AddToCart"},
        )
    click_id = await relay.click(cid)
    key = network["postback_key"]

    cart = (await relay.postback(key=key, click_id=click_id, event="AddToCart")).json()
    await relay.result(cart["conversion_id"])
    sent = {
        p["id"]: relay.platforms.requests_for(p["platform"], p["platform_pixel_id"])
        for p in (meta_main, tiktok_main, meta_view, tiktok_view)
    }
    assert [len(sent[p["id"]]) for p in (meta_main, tiktok_main, meta_view, tiktok_view)] == [
        0,
        0,
        1,
        1,
    ]
    assert sent[meta_view["id"]][0].body["data"][0]["event_name"] == "AddToCart"
    assert sent[tiktok_view["id"]][0].body["data"][0]["event"] == "AddToCart"
    assert sent[meta_view["id"]][0].body["data"][0]["event_id"] == cart["conversion_id"]

    # The sale: TikTok answers slowly; Meta must not wait for it.
    relay.platforms.script("tiktok", tiktok_main["platform_pixel_id"], Scripted(delay_s=1.2))
    sale = (await relay.postback(key=key, click_id=click_id, payout="30", txid="O-9")).json()
    assert sale["conversion_id"] != cart["conversion_id"] and not sale["is_duplicate"]
    await relay.result(sale["conversion_id"])
    [meta_sale] = relay.platforms.requests_for("meta", meta_main["platform_pixel_id"])
    [tiktok_sale] = relay.platforms.requests_for("tiktok", tiktok_main["platform_pixel_id"])
    assert meta_sale.body["data"][0]["event_name"] == "Purchase"
    assert tiktok_sale.body["event"] == "CompletePayment"
    assert tiktok_sale.body["event_id"] == sale["conversion_id"]
    fires = {f["pixel_id"]: f for f in (await relay.conversion(sale["conversion_id"]))["fires"]}
    meta_fire, tiktok_fire = fires[meta_main["id"]], fires[tiktok_main["id"]]
    started_apart = abs(
        datetime.fromisoformat(meta_fire["fired_at"])
        - datetime.fromisoformat(tiktok_fire["fired_at"])
    )
    assert started_apart.total_seconds() < 0.5  # both sends began together
    assert tiktok_fire["duration_ms"] >= 1000 and meta_fire["duration_ms"] < 500


async def test_event_without_custom_mapping_fires_the_primary_pixels(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    main = await relay.pixel(campaign["id"], "meta")
    other = await relay.pixel(campaign["id"], "meta", primary=False)
    await _post(
        relay,
        f"/api/campaigns/{campaign['id']}/custom-conversions",
        {"inbound_event": "AddToCart", "pixel": other["id"], "event_name": "AddToCart"},
    )
    click_id = await relay.click(campaign["id"])
    answer = (
        await relay.postback(key=network["postback_key"], click_id=click_id, event="Subscribe")
    ).json()
    await relay.result(answer["conversion_id"])
    [request] = relay.platforms.requests_for("meta", main["platform_pixel_id"])
    assert request.body["data"][0]["event_name"] == "Subscribe"
    assert relay.platforms.requests_for("meta", other["platform_pixel_id"]) == []


async def test_outbound_postback_macros_encoding_and_log(
    relay: Relay, source: TrafficSource
) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    template = (
        source.url + "/cb?clickid={click_id}&conv={conversion_id}&sum={payout}"
        "&cur={currency}&ev={event}&tx={txid}&s1={sub1}&token=SOURCE-SECRET"
    )
    postback = await _post(
        relay, f"/api/campaigns/{campaign['id']}/postbacks", {"url_template": template}
    )
    click_id = await relay.click(campaign["id"], sub1="a b&c=d/é")
    answer = (
        await relay.postback(
            key=network["postback_key"], click_id=click_id, payout="12.50", txid="T 1"
        )
    ).json()
    result = await relay.result(answer["conversion_id"])
    assert [p.delivered for p in result.postbacks] == [True]
    [call] = source.calls
    assert call.method == "GET" and call.path == "/cb"
    assert call.query == {
        "clickid": [click_id],
        "conv": [answer["conversion_id"]],
        "sum": ["12.5"],
        "cur": ["USD"],
        "ev": ["sale"],
        "tx": ["T 1"],
        "s1": ["a b&c=d/é"],
        "token": ["SOURCE-SECRET"],
    }
    assert "T%201" in call.raw_query and "a%20b%26c%3Dd%2F%C3%A9" in call.raw_query
    [logged] = (await relay.conversion(answer["conversion_id"]))["postbacks"]
    assert logged["postback_id"] == postback["id"] and logged["http_status"] == 200
    assert logged["success"] and logged["response_body"] == "OK"
    assert "SOURCE-SECRET" not in logged["url"] and "token=[REDACTED]" in logged["url"]
    page = await relay.http.get(
        "/api/postback-logs", params={"campaign_id": campaign["id"]}, headers=relay.admin
    )
    assert page.json()["total"] == 1


async def test_postbacks_retry_and_a_dead_source_never_blocks_pixels(
    skipping_relay: Relay, source: TrafficSource
) -> None:
    relay = skipping_relay
    network = await relay.network()
    campaign = await relay.campaign()
    meta = await relay.pixel(campaign["id"], "meta")
    flaky = await _post(
        relay,
        f"/api/campaigns/{campaign['id']}/postbacks",
        {"url_template": source.url + "/flaky?c={click_id}", "method": "POST"},
    )
    dead = await _post(
        relay,
        f"/api/campaigns/{campaign['id']}/postbacks",
        {"url_template": "http://127.0.0.1:9/dead?c={click_id}"},
    )
    rejecting = await _post(
        relay,
        f"/api/campaigns/{campaign['id']}/postbacks",
        {"url_template": source.url + "/gone?c={click_id}", "events": ["lead"]},
    )
    source.script(503, (429, {"Retry-After": "20"}))
    click_id = await relay.click(campaign["id"])
    answer = (await relay.postback(key=network["postback_key"], click_id=click_id)).json()
    result = await relay.result(answer["conversion_id"])
    assert [f.delivered for f in result.fires] == [True]
    outcome = {p.target.postback_id: p.delivered for p in result.postbacks}
    assert outcome == {flaky["id"]: True, dead["id"]: False}  # "lead" only: not planned
    assert rejecting["id"] not in outcome
    assert [c.body["click_id"] for c in source.calls] == [click_id] * 3
    logged = (await relay.conversion(answer["conversion_id"]))["postbacks"]
    flaky_rows = [r for r in logged if r["postback_id"] == flaky["id"]]
    assert [(r["attempt"], r["http_status"], r["verdict"]) for r in flaky_rows] == [
        (1, 503, "retryable"),
        (2, 429, "retryable"),
        (3, 200, "delivered"),
    ]
    dead_rows = [r for r in logged if r["postback_id"] == dead["id"]]
    assert all(r["http_status"] is None for r in dead_rows)
    # A dead source is retried, at most 10 minutes apart, for the whole 24-hour window.
    # (from the first retry: the first try is local, scheduled in unskipped time)
    first, last = (datetime.fromisoformat(dead_rows[i]["scheduled_at"]) for i in (1, -1))
    assert timedelta(hours=23) < last - first <= timedelta(hours=24)
    assert len(dead_rows) > 140
    assert "ConnectError" in dead_rows[-1]["error"]
    assert len(relay.platforms.requests_for("meta", meta["platform_pixel_id"])) == 1


async def test_reversal_fires_only_postbacks_configured_for_it(
    relay: Relay, source: TrafficSource
) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    meta = await relay.pixel(campaign["id"], "meta")
    await _post(
        relay,
        f"/api/campaigns/{campaign['id']}/postbacks",
        {"url_template": source.url + "/sale?c={click_id}"},
    )
    await _post(
        relay,
        f"/api/campaigns/{campaign['id']}/postbacks",
        {
            "url_template": source.url + "/reject?c={click_id}&e={event}",
            "events": ["rejected", "chargeback"],
        },
    )
    click_id = await relay.click(campaign["id"])
    key = network["postback_key"]
    sale = (await relay.postback(key=key, click_id=click_id, txid="R1")).json()
    await relay.result(sale["conversion_id"])
    rejected = (
        await relay.postback(key=key, click_id=click_id, status="Rejected", txid="R1")
    ).json()
    await relay.result(rejected["conversion_id"])
    assert [(c.path, c.query.get("e")) for c in source.calls] == [
        ("/sale", None),
        ("/reject", ["rejected"]),
    ]
    assert len(relay.platforms.requests_for("meta", meta["platform_pixel_id"])) == 1


async def test_event_id_endpoint_predicts_the_server_event_id(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    meta = await relay.pixel(campaign["id"], "meta")
    click_id = await relay.click(campaign["id"])
    predicted = await relay.http.get(
        "/api/event-id", params={"click_id": click_id, "event": "Purchase", "txid": "E-1"}
    )
    assert predicted.status_code == 200
    assert predicted.headers["access-control-allow-origin"] == "*"
    answer = (
        await relay.postback(
            key=network["postback_key"], click_id=click_id, event="purchase", txid="E-1"
        )
    ).json()
    await relay.result(answer["conversion_id"])
    [request] = relay.platforms.requests_for("meta", meta["platform_pixel_id"])
    assert predicted.json()["event_id"] == answer["conversion_id"]
    assert request.body["data"][0]["event_id"] == predicted.json()["event_id"]
    missing = await relay.http.get("/api/event-id")
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "click_id"


async def test_an_absurd_retry_after_is_ignored(
    skipping_relay: Relay, source: TrafficSource
) -> None:
    # 1e12 s would schedule the next attempt 31,700 years out (1e15 overflowed).
    relay = skipping_relay
    network = await relay.network()
    campaign = await relay.campaign()
    await _post(
        relay,
        f"/api/campaigns/{campaign['id']}/postbacks",
        {"url_template": source.url + "/later?c={click_id}"},
    )
    source.script((503, {"Retry-After": "1e12"}), (503, {"Retry-After": "1e15"}))
    click_id = await relay.click(campaign["id"])
    answer = (await relay.postback(key=network["postback_key"], click_id=click_id)).json()
    [outcome] = (await relay.result(answer["conversion_id"], timeout_s=30)).postbacks
    assert outcome.delivered
    rows = (await relay.conversion(answer["conversion_id"]))["postbacks"]
    assert [r["http_status"] for r in rows] == [503, 503, 200]
    # Treated as absent: the retry policy's own backoff (5 s, then 10 s), in the
    # time-skipping server's time (an honoured 1e12 s would skip ahead by as much).
    first, last = (datetime.fromisoformat(rows[i]["scheduled_at"]) for i in (0, -1))
    assert last - first < timedelta(seconds=60)
