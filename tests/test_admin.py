"""The whole admin API: CRUD per resource, validation naming the field, 404s, timezones."""

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from relay.domain.models import PixelFire, Platform
from tests.harness import Relay


async def _json(relay: Relay, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = await relay.http.request(method, path, json=body, headers=relay.admin)
    return response.status_code, (response.json() if response.content else None)


async def test_crud_for_every_resource(relay: Relay) -> None:
    network = await relay.network()
    assert (await _json(relay, "PATCH", f"/api/networks/{network['id']}", {"name": "Renamed"}))[1][
        "name"
    ] == "Renamed"
    campaign = await relay.campaign(repeatable_events=["Dep"])
    assert campaign["repeatable_events"] == ["deposit"]
    cid = campaign["id"]
    status, patched = await _json(relay, "PATCH", f"/api/campaigns/{cid}", {"currency": "EUR"})
    assert status == 200 and patched["currency"] == "EUR" and patched["name"] == "Campaign"
    pixel = await relay.pixel(cid, "tiktok")
    status, rotated = await _json(
        relay,
        "PATCH",
        f"/api/campaigns/{cid}/pixels/{pixel['id']}",
        {"access_token": "new-token-123456", "primary": False},
    )
    assert status == 200 and rotated["primary"] is False and "access_token" not in rotated
    custom = await relay.post(
        f"/api/campaigns/{cid}/custom-conversions",
        {"inbound_event": "AddToCart", "pixel": pixel["id"], "event_name": "AddToCart"},
    )
    status, changed = await _json(
        relay,
        "PATCH",
        f"/api/campaigns/{cid}/custom-conversions/{custom['id']}",
        {"event_name": "ViewContent"},
    )
    assert status == 200 and changed["event_name"] == "ViewContent"
    postback = await relay.post(
        f"/api/campaigns/{cid}/postbacks",
        {"url_template": "https://ts.example/cb?c={click_id}", "events": ["Sale", "lead"]},
    )
    assert postback["events"] == ["sale", "lead"] and postback["method"] == "GET"
    for path, count in (
        (f"/api/campaigns/{cid}/pixels", 1),
        (f"/api/campaigns/{cid}/custom-conversions", 1),
        (f"/api/campaigns/{cid}/postbacks", 1),
    ):
        assert len((await _json(relay, "GET", path))[1]) == count
    for path in (
        f"/api/campaigns/{cid}/postbacks/{postback['id']}",
        f"/api/campaigns/{cid}/custom-conversions/{custom['id']}",
        f"/api/campaigns/{cid}/pixels/{pixel['id']}",
        f"/api/campaigns/{cid}",
        f"/api/networks/{network['id']}",
    ):
        assert (await _json(relay, "DELETE", path))[0] == 204
        status, error = await _json(relay, "GET", path)
        assert status == 404 and error["error"]["code"] == "not_found", path


async def test_deleting_a_pixel_keeps_its_fire_logs(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], "meta")
    click_id = await relay.click(campaign["id"])
    answer = (await relay.postback(key=network["postback_key"], click_id=click_id)).json()
    await relay.result(answer["conversion_id"])
    path = f"/api/campaigns/{campaign['id']}/pixels/{pixel['id']}"
    assert (await _json(relay, "DELETE", path))[0] == 204
    assert (await _json(relay, "GET", path))[0] == 404
    fires = (await relay.conversion(answer["conversion_id"]))["fires"]
    assert [f["pixel_id"] for f in fires] == [pixel["id"]]


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            "/api/campaigns/{cid}/pixels",
            {"platform": "snap", "platform_pixel_id": "1", "access_token": "t" * 12, "name": "x"},
            "platform",
        ),
        (
            "/api/campaigns/{cid}/custom-conversions",
            {"inbound_event": "AddToCart", "pixel": "{other_pixel}", "event_name": "AddToCart"},
            "pixel",
        ),
        (
            "/api/campaigns/{cid}/custom-conversions",
            {"inbound_event": "", "pixel": "{pixel}", "event_name": "AddToCart"},
            "inbound_event",
        ),
        (
            "/api/campaigns/{cid}/postbacks",
            {"url_template": "https://ts.example/?c={clickid}"},
            "url_template",
        ),
        ("/api/campaigns/{cid}/postbacks", {"url_template": "https://{sub1}/x"}, "url_template"),
        (
            "/api/campaigns/{cid}/postbacks",
            {"url_template": "https://ts.example/", "method": "PUT"},
            "method",
        ),
        ("/api/campaigns", {"name": "x", "offer_url": ""}, "offer_url"),
        ("/api/settings", {"timezone": "Not/AZone"}, "timezone"),
    ],
)
async def test_validation_errors_are_422_naming_the_field(
    relay: Relay, path: str, body: dict[str, Any], param: str
) -> None:
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], "meta")
    other = await relay.pixel((await relay.campaign())["id"], "meta")
    filled = {
        k: v.replace("{other_pixel}", other["id"]).replace("{pixel}", pixel["id"])
        if isinstance(v, str)
        else v
        for k, v in body.items()
    }
    method = "PUT" if path == "/api/settings" else "POST"
    status, error = await _json(relay, method, path.replace("{cid}", campaign["id"]), filled)
    assert status == 422, error
    assert error["error"]["param"] == param


async def test_unknown_resources_are_404(relay: Relay) -> None:
    campaign = await relay.campaign()
    for path in (
        "/api/networks/net_nope",
        "/api/campaigns/cmp_nope/pixels",
        f"/api/campaigns/{campaign['id']}/pixels/px_nope",
        f"/api/campaigns/{campaign['id']}/postbacks/pb_nope",
        f"/api/campaigns/{campaign['id']}/custom-conversions/cc_nope",
        "/api/conversions/conv_nope",
    ):
        status, error = await _json(relay, "GET", path)
        assert status == 404, path
        assert error["error"]["param"]


async def test_log_times_follow_the_workspace_timezone_across_dst(relay: Relay) -> None:
    conversion_id = "conv_dst_" + uuid.uuid4().hex[:8]
    # US clocks sprang forward on 2026-03-08 at 07:00 UTC (02:00 EST -> 03:00 EDT).
    for minute, at in (
        (1, datetime(2026, 3, 8, 6, 30, tzinfo=UTC)),
        (2, datetime(2026, 3, 8, 7, 30, tzinfo=UTC)),
    ):
        relay.runtime.fire_log.append(
            PixelFire(
                fire_id=str(uuid.uuid4()),
                conversion_id=conversion_id,
                campaign_id="c",
                pixel_id="p",
                platform=Platform.META,
                pixel_name="p",
                event_name="Purchase",
                event_id=conversion_id,
                attempt=minute,
                request_url="",
                request_body="",
                http_status=200,
                response_body="",
                response_truncated=False,
                verdict="delivered",
                success=True,
                error="",
                duration_ms=1,
                fired_at=at,
            )
        )
    await _json(relay, "PUT", "/api/settings", {"timezone": "America/New_York"})
    try:
        status, page = await _json(relay, "GET", f"/api/pixel-logs?conversion_id={conversion_id}")
        assert status == 200
        shown = sorted(item["fired_at"] for item in page["items"])
        assert shown == ["2026-03-08T01:30:00-05:00", "2026-03-08T03:30:00-04:00"]
        # A time without an offset is read in the workspace zone: 02:59 local is 07:59 UTC.
        later = await _json(
            relay, "GET", f"/api/pixel-logs?conversion_id={conversion_id}&since=2026-03-08T01:45:00"
        )
        assert [i["attempt"] for i in later[1]["items"]] == [2]
    finally:
        await _json(relay, "PUT", "/api/settings", {"timezone": "UTC"})


async def test_openapi_documents_every_route_with_examples(relay: Relay) -> None:
    spec = (await relay.http.get("/openapi.json")).json()
    paths = spec["paths"]
    for route in (
        "/postback",
        "/c/{campaign_id}",
        "/api/clicks",
        "/api/event-id",
        "/api/networks",
        "/api/networks/{network_id}",
        "/api/campaigns",
        "/api/campaigns/{campaign_id}",
        "/api/campaigns/{campaign_id}/pixels",
        "/api/campaigns/{campaign_id}/pixels/{pixel_id}",
        "/api/campaigns/{campaign_id}/custom-conversions",
        "/api/campaigns/{campaign_id}/custom-conversions/{custom_conversion_id}",
        "/api/campaigns/{campaign_id}/postbacks",
        "/api/campaigns/{campaign_id}/postbacks/{postback_id}",
        "/api/settings",
        "/api/conversions",
        "/api/conversions/{conversion_id}",
        "/api/pixel-logs",
        "/api/postback-logs",
        "/healthz",
        "/readyz",
    ):
        assert route in paths, route
    schemas = spec["components"]["schemas"]
    for name in (
        "NetworkIn",
        "CampaignIn",
        "PixelIn",
        "CustomConversionIn",
        "OutboundPostbackIn",
        "ClickIn",
        "SettingsIn",
    ):
        assert schemas[name]["examples"], name
    assert (await relay.http.get("/docs")).status_code == 200
