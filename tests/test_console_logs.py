"""The console's Pixel logs and Postback logs pages: every attempt, filtered like
GET /api/pixel-logs and GET /api/postback-logs."""

from tests.console import sign_in
from tests.harness import Relay, failed_conversions
from tests.traffic_source import TrafficSource


async def test_pixel_logs_list_attempts_and_filter_them(relay: Relay) -> None:
    pixel, [conversion_id] = await failed_conversions(relay)  # its Meta pixel refused it for good
    await sign_in(relay)
    campaign_id = pixel["campaign_id"]
    page = await relay.http.get("/ui/pixel-logs", params={"campaign_id": campaign_id})
    assert page.status_code == 200, page.text
    assert f'href="/ui/conversions/{conversion_id}"' in page.text
    assert "1\u20131 of 1" in page.text and "SECRET-" not in page.text
    assert 'class="state state-failed">permanent<' in page.text

    delivered_only = await relay.http.get(
        "/ui/pixel-logs", params={"campaign_id": campaign_id, "outcome": "true"}
    )
    assert "No attempt matches." in delivered_only.text
    tiktok = await relay.http.get(
        "/ui/pixel-logs", params={"campaign_id": campaign_id, "platform": "tiktok"}
    )
    assert "No attempt matches." in tiktok.text
    network_id = (await relay.conversion(conversion_id))["network_id"]
    other = await relay.network()
    for params, found in (
        ({"event": "Purchase", "network_id": network_id}, True),
        ({"event": "purchase"}, False),  # the name as sent: exact
        ({"network_id": other["id"]}, False),
    ):
        listed = await relay.http.get(
            "/ui/pixel-logs", params={"campaign_id": campaign_id, **params}
        )
        assert (f'href="/ui/conversions/{conversion_id}"' in listed.text) is found, params
    assert 'name="network_id"' in listed.text and 'name="event"' in listed.text


async def test_a_bad_pixel_log_filter_is_shown_next_to_its_field(relay: Relay) -> None:
    await sign_in(relay)
    page = await relay.http.get("/ui/pixel-logs", params={"platform": "myspace"})
    assert page.status_code == 422
    assert 'id="platform-error"' in page.text and "No attempt matches." not in page.text


async def test_pixel_logs_need_a_session(relay: Relay) -> None:
    page = await relay.http.get("/ui/pixel-logs", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/ui/sign-in?next=")


async def test_postback_logs_list_attempts_with_secrets_redacted(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    with TrafficSource() as source:
        template = source.url + "/cb?clickid={click_id}&ev={event}&token=SOURCE-SECRET"
        path = f"/api/campaigns/{campaign['id']}/postbacks"
        await relay.post(path, {"url_template": template})
        click_id = await relay.click(campaign["id"])
        answer = await relay.postback(key=network["postback_key"], click_id=click_id, event="Lead")
        conversion_id = answer.json()["conversion_id"]
        await relay.result(conversion_id)
    await sign_in(relay)
    page = await relay.http.get("/ui/postback-logs", params={"campaign_id": campaign["id"]})
    assert page.status_code == 200, page.text
    assert f'href="/ui/conversions/{conversion_id}"' in page.text
    assert "1\u20131 of 1" in page.text and 'class="state state-delivered"' in page.text
    assert "token=[REDACTED]" in page.text and "SOURCE-SECRET" not in page.text

    failed_only = await relay.http.get(
        "/ui/postback-logs", params={"campaign_id": campaign["id"], "outcome": "false"}
    )
    assert "No attempt matches." in failed_only.text
    other = await relay.network()
    for params, found in (
        ({"network_id": network["id"], "event": "LEAD"}, True),  # read as the API reads events
        ({"network_id": other["id"]}, False),
        ({"event": "sale"}, False),
    ):
        listed = await relay.http.get(
            "/ui/postback-logs", params={"campaign_id": campaign["id"], **params}
        )
        assert listed.status_code == 200, listed.text
        assert (f'href="/ui/conversions/{conversion_id}"' in listed.text) is found, params
    api = await relay.http.get(
        "/api/postback-logs",
        params={"network_id": network["id"], "event_type": "lead"},
        headers=relay.admin,
    )
    assert [a["conversion_id"] for a in api.json()["items"]] == [conversion_id]
    bad = await relay.http.get("/ui/postback-logs", params={"since": "yesterday"})
    assert bad.status_code == 422 and 'id="since-error"' in bad.text
