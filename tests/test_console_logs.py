"""The console's Pixel logs page: every attempt, filtered like GET /api/pixel-logs."""

from tests.console import sign_in
from tests.harness import Relay
from tests.test_redelivery import _failed


async def test_pixel_logs_list_attempts_and_filter_them(relay: Relay) -> None:
    pixel, [conversion_id] = await _failed(relay)  # its Meta pixel refused it for good
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


async def test_a_bad_pixel_log_filter_is_shown_next_to_its_field(relay: Relay) -> None:
    await sign_in(relay)
    page = await relay.http.get("/ui/pixel-logs", params={"platform": "myspace"})
    assert page.status_code == 422
    assert 'id="platform-error"' in page.text and "No attempt matches." not in page.text


async def test_pixel_logs_need_a_session(relay: Relay) -> None:
    page = await relay.http.get("/ui/pixel-logs", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"].startswith("/ui/sign-in?next=")
