"""A media buyer who has never used Relay, in a real browser (Chromium): signs in, creates a
network and copies its postback URL, creates a campaign with a Meta and a TikTok pixel, and
after a click and a postback sees the conversion and its two fires. A mistyped token then
makes the Meta pixel fail; the buyer finds the failure on the overview, fixes the token and
redelivers the fire from the conversion's page."""

import asyncio
from collections.abc import Callable
from typing import TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from selenium.webdriver.common.by import By

from tests.browser import chromium
from tests.buyer import Buyer
from tests.harness import Relay
from tests.served import serving

T = TypeVar("T")
META_PIXEL, TIKTOK_PIXEL = "1234567890", "CABC123DEF"
META_TOKEN, TIKTOK_TOKEN = "EAAB-buyer-token", "tt-buyer-token"


async def _step(action: Callable[..., T], *args: object) -> T:
    """One browser step, in a thread: the server answers on this loop meanwhile."""
    return await asyncio.to_thread(action, *args)


def _set_up(buyer: Buyer, offer_url: str) -> tuple[str, str]:
    """Sign in, create a network and a campaign with two pixels; the copied postback URL
    and the campaign's ID."""
    buyer.sign_in()
    buyer.wait_for_path("/ui/overview$")
    buyer.open("/ui/networks")
    buyer.submit("new-network", {"name": "Adnet"})
    assert "shown only now" in buyer.text()
    postback_url = buyer.copy("#postback-url")

    buyer.open("/ui/campaigns")
    buyer.submit("new-campaign", {"name": "Spring sale", "offer_url": offer_url})
    campaign_id = buyer.campaign_id()
    meta = {
        "platform": "meta",
        "platform_pixel_id": META_PIXEL,
        "access_token": META_TOKEN,
        "name": "Meta purchase",
    }
    buyer.submit("new-pixel", meta)
    buyer.wait_for_path(f"/ui/campaigns/{campaign_id}$")
    tiktok = {
        "platform": "tiktok",
        "platform_pixel_id": TIKTOK_PIXEL,
        "access_token": TIKTOK_TOKEN,
        "name": "TikTok purchase",
    }
    buyer.submit("new-pixel", tiktok)
    page = buyer.text()
    assert "Meta purchase" in page and "TikTok purchase" in page
    assert META_TOKEN not in buyer.browser.page_source
    buyer.screenshot("console-campaign")
    return postback_url, campaign_id


def _network_sends(postback_url: str, click_id: str, txid: str) -> str:
    """The network fills the URL's macros and calls it; the conversion's ID."""
    values = {"CLICK_ID": click_id, "PAYOUT": "42.00", "CURRENCY": "EUR", "TXID": txid}
    values["EVENT"] = "sale"
    parts = urlsplit(postback_url)
    query = [(name, values.get(value, value)) for name, value in parse_qsl(parts.query)]
    answer = httpx.get(parts._replace(query=urlencode(query)).geturl(), timeout=10)
    assert answer.status_code == 200, answer.text
    conversion_id: str = answer.json()["conversion_id"]
    return conversion_id


def _send_state(buyer: Buyer, send: str) -> tuple[str, int]:
    """A send's state as its row in the conversion's Sends table shows it, and how many
    Redeliver buttons the row has."""
    row = buyer.browser.find_element(By.XPATH, f"//table//tr[td[1][contains(., '{send}')]]")
    badge = row.find_element(By.CSS_SELECTOR, "span.state").text
    return badge, len(row.find_elements(By.TAG_NAME, "button"))


def _sees_delivered(buyer: Buyer, conversion_id: str) -> None:
    buyer.open("/ui/conversions")
    buyer.follow(conversion_id)
    buyer.wait_for_path(f"/ui/conversions/{conversion_id}$")
    for send in ("Meta purchase (meta)", "TikTok purchase (tiktok)"):
        assert _send_state(buyer, send) == ("delivered", 0), send


def _change_token(buyer: Buyer, campaign_id: str, token: str) -> None:
    """Open the Meta pixel's card on the campaign's page and give it `token`."""
    buyer.open(f"/ui/campaigns/{campaign_id}")
    card = buyer.browser.find_element(
        By.XPATH, "//article[.//h3[contains(., 'Meta purchase')]][starts-with(@id, 'pixel-')]"
    )
    card.find_element(By.TAG_NAME, "summary").click()
    form = card.find_element(By.CSS_SELECTOR, "form[id^='edit-pixel-']")
    buyer.fill(form, {"access_token": token})
    buyer.click_and_wait(form.find_element(By.CSS_SELECTOR, "button[type=submit]"))
    buyer.wait_for_path(f"/ui/campaigns/{campaign_id}$")


def _finds_and_redelivers(buyer: Buyer, conversion_id: str) -> tuple[str, int]:
    """From the overview's failures to the conversion; Redeliver; the Meta send's state
    once the redelivery is done."""
    buyer.open("/ui/overview")
    buyer.screenshot("console-overview")
    buyer.follow(conversion_id)
    buyer.wait_for_path(f"/ui/conversions/{conversion_id}$")
    assert _send_state(buyer, "Meta purchase (meta)") == ("failed", 1)
    assert _send_state(buyer, "TikTok purchase (tiktok)") == ("delivered", 0)
    assert "Invalid OAuth access token" in buyer.text()  # the platform's own error
    buyer.click_and_wait(
        buyer.browser.find_element(By.XPATH, "//button[normalize-space()='Redeliver']")
    )
    buyer.wait_for_path(f"/ui/conversions/{conversion_id}$")
    buyer.until_text("COMPLETED")
    buyer.screenshot("console-conversion")
    return _send_state(buyer, "Meta purchase (meta)")


async def test_a_new_buyer_sets_up_a_campaign_and_redelivers_a_failed_fire(relay: Relay) -> None:
    relay.platforms.expect_token("meta", META_PIXEL, META_TOKEN)
    relay.platforms.expect_token("tiktok", TIKTOK_PIXEL, TIKTOK_TOKEN)
    async with serving(relay.runtime) as base:
        with chromium() as browser:
            buyer = Buyer(browser, base)
            postback_url, campaign_id = await _step(
                _set_up, buyer, f"{base}/healthz?cid={{click_id}}"
            )
            assert postback_url.startswith(f"{base}/postback?key=")

            click_id = await _step(buyer.click_through, campaign_id)
            first = await _step(_network_sends, postback_url, click_id, "ORDER-1")
            await relay.result(first)
            await _step(_sees_delivered, buyer, first)

            await _step(_change_token, buyer, campaign_id, "EAAB-mistyped")
            click_id = await _step(buyer.click_through, campaign_id)
            second = await _step(_network_sends, postback_url, click_id, "ORDER-2")
            await relay.result(second)
            await _step(_change_token, buyer, campaign_id, META_TOKEN)
            meta_after = await _step(_finds_and_redelivers, buyer, second)
    assert meta_after == ("delivered", 0)
    meta_statuses = [r.status for r in relay.platforms.requests_for("meta", META_PIXEL)]
    assert meta_statuses == [200, 400, 200]
