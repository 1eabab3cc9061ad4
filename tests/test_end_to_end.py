"""Click -> postback -> conversion row -> Meta and TikTok requests -> log rows."""

import json
from typing import Any

import pytest

from tests.harness import BROWSER_UA, Relay

GEO = {"X-Geo-Country": "US", "X-Geo-Region": "CA", "X-Geo-City": "Menlo Park"}
# (postback email, postback phone, platform, user field, expected hash): the official
# examples of platforms.md sections 1.2 (Meta) and 2.4 (TikTok).
VECTORS = [
    (
        "John_Smith@gmail.com",
        "(650)555-1212",
        "meta",
        "em",
        "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f",
    ),
    (
        "John_Smith@gmail.com",
        "(650)555-1212",
        "meta",
        "ph",
        "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176",
    ),
    (
        " ALICE_abc@gmail.com ",
        "(+1)2133734253",
        "tiktok",
        "email",
        "848a771458438fc2ec420560d769fb9b9b86851ee338ec56517baabd79d3bb4f",
    ),
    (
        " ALICE_abc@gmail.com ",
        "(+1)2133734253",
        "tiktok",
        "phone",
        "9f7ec22d72092cd3c0b58726ed9c2d91b92e51a3f29837508fb2948bb22dd2fd",
    ),
]


def _only(value: Any) -> Any:
    return value[0] if isinstance(value, list) else value


@pytest.mark.parametrize(("email", "phone", "platform", "field", "expected"), VECTORS)
async def test_official_hash_examples_reach_the_platform(
    relay: Relay, email: str, phone: str, platform: str, field: str, expected: str
) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], platform)
    click_id = await relay.click(campaign["id"], headers=GEO)
    answer = await relay.postback(
        key=network["postback_key"], click_id=click_id, email=email, phone=phone
    )
    assert answer.status_code == 200, answer.text
    await relay.result(answer.json()["conversion_id"])
    [request] = relay.platforms.requests_for(platform, pixel["platform_pixel_id"])
    event = request.body["data"][0]
    user = event["user_data"] if platform == "meta" else event["user"]
    assert _only(user[field]) == expected
    assert request.problems == []


async def test_click_to_meta_and_tiktok_with_logs(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign(currency="EUR")
    meta = await relay.pixel(campaign["id"], "meta", test_event_code="TEST123")
    tiktok = await relay.pixel(campaign["id"], "tiktok")
    click_id = await relay.click(campaign["id"], headers=GEO, fbclid="IwAR-Ab_c", ttclid="E.C.P.x1")
    answer = await relay.postback(
        key=network["postback_key"],
        clickid=click_id,
        payout="12.50",
        txid="ORDER-1",
        email="Person@Example.com",
    )
    assert answer.status_code == 200
    body = answer.json()
    conv_id = body["conversion_id"]
    assert body == {
        "conversion_id": conv_id,
        "status": "accepted",
        "is_duplicate": False,
        "attributed": None,  # decided by the workflow from the click
    }

    result = await relay.result(conv_id)
    assert [f.delivered for f in result.fires] == [True, True]
    assert (await relay.conversion(conv_id))["attributed"] is True

    [meta_request] = relay.platforms.requests_for("meta", meta["platform_pixel_id"])
    assert meta_request.problems == []
    assert meta_request.path == f"/v24.0/{meta['platform_pixel_id']}/events"
    assert meta_request.body["test_event_code"] == "TEST123"
    event = meta_request.body["data"][0]
    assert event["event_name"] == "Purchase"
    assert event["event_id"] == conv_id
    assert event["action_source"] == "website"
    assert event["event_source_url"].startswith("https://shop.example/lp?cid=")
    user = event["user_data"]
    assert user["client_ip_address"] == "203.0.113.9"
    assert user["client_user_agent"] == BROWSER_UA
    assert user["fbc"].startswith("fb.1.") and user["fbc"].endswith(".IwAR-Ab_c")
    assert len(user["fbc"].split(".")[2]) == 13  # click time in milliseconds
    assert _only(user["country"]) == (
        "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"
    )
    assert _only(user["ct"]) == "0007a3d64c01e23d5075203c5977c14e4f7e01a3fc570686fcc50b5e1dd42685"
    assert _only(user["em"]) == "542d240129883c019e106e3b1b2d3f3cb3537c43c425364de8e951d5a3083345"
    assert event["custom_data"] == {
        "value": 12.5,
        "currency": "EUR",
        "content_type": "product",
        "order_id": conv_id,
    }

    [tiktok_request] = relay.platforms.requests_for("tiktok", tiktok["platform_pixel_id"])
    assert tiktok_request.problems == []
    assert tiktok_request.path == "/open_api/v1.3/event/track/"
    assert tiktok_request.headers["access-token"].startswith("SECRET-tiktok-")
    tt_event = tiktok_request.body["data"][0]
    assert tt_event["event"] == "Purchase"
    assert tt_event["event_id"] == conv_id
    assert tt_event["user"]["ttclid"] == "E.C.P.x1"
    assert tt_event["user"]["ip"] == "203.0.113.9"
    assert tt_event["properties"]["order_id"] == conv_id

    stored = await relay.conversion(conv_id)
    assert stored["payout"] == "12.500000" and stored["currency"] == "EUR"
    assert stored["txid"] == "ORDER-1"
    fires = stored["fires"]
    assert sorted(f["platform"] for f in fires) == ["meta", "tiktok"]
    for fire in fires:
        assert fire["success"] and fire["attempt"] == 1 and fire["http_status"] == 200
        assert fire["verdict"] == "delivered"
        assert "SECRET-" not in fire["request_body"]
        assert "person@example.com" not in json.dumps(fire).lower()
    meta_fire = next(f for f in fires if f["platform"] == "meta")
    assert json.loads(meta_fire["request_body"])["access_token"] == "[REDACTED]"
    assert json.loads(meta_fire["response_body"])["events_received"] == 1

    history = await relay.runtime.temporal.get_workflow_handle(conv_id).fetch_history()
    recorded = json.dumps(history.to_json_dict())
    assert "SECRET-" not in recorded
    assert "person@example.com" not in recorded.lower()


async def test_unknown_click_is_recorded_unattributed_and_not_delivered(relay: Relay) -> None:
    network = await relay.network()
    answer = await relay.postback(key=network["postback_key"], click_id="never-seen", payout="3")
    assert answer.status_code == 200
    body = answer.json()
    assert body["attributed"] is None and body["status"] == "accepted"
    result = await relay.result(body["conversion_id"])
    assert result.fires == [] and result.skipped.startswith("unattributed")
    stored = await relay.conversion(body["conversion_id"])
    assert stored["attributed"] is False and stored["fires"] == []
