"""Pixel health on the campaign page (issue 22 item 7): each pixel's last delivery, its last
failure explained with the link to its fix, and its failed attempts over the last 24 hours
(linked to those attempts in the Pixel logs), read from the pixel log."""

import html
import re

from tests.console import sign_in
from tests.harness import Relay, failed_conversions


def _health(page: str, pixel_name: str) -> dict[str, str]:
    found = re.search(
        rf'<dl class="facts health" aria-label="Health of {pixel_name}">(.*?)</dl>', page, re.S
    )
    assert found, page
    pairs = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", found.group(1), re.S)
    return dict(pairs)


async def test_a_pixel_shows_its_last_delivery_last_failure_and_recent_failures(
    relay: Relay,
) -> None:
    pixel, [failed_id] = await failed_conversions(relay)
    campaign_id = (await relay.conversion(failed_id))["campaign_id"]
    path = f"/ui/campaigns/{campaign_id}"
    await sign_in(relay)

    health = _health((await relay.http.get(path)).text, pixel["name"])
    assert health["Last delivered"] == "nothing delivered yet"
    failure = health["Last failure"]
    assert failure.startswith("<time datetime=")
    assert "refused the pixel&#39;s access token" in failure
    assert f'href="/ui/campaigns/{campaign_id}#pixel-{pixel["id"]}"' in failure
    assert "meta error 190" in failure  # the stored text, for operators
    count = re.fullmatch(r'<a href="([^"]+)">1</a>', health["Failed attempts, 24 h"])
    assert count, health
    listed = await relay.http.get(html.unescape(count.group(1)))
    assert listed.status_code == 200 and failed_id in listed.text

    # The next conversion is delivered (the stand-in refused the first request only).
    network = await relay.network()
    click_id = await relay.click(campaign_id)
    answer = await relay.postback(key=network["postback_key"], click_id=click_id)
    await relay.result(answer.json()["conversion_id"])
    health = _health((await relay.http.get(path)).text, pixel["name"])
    assert health["Last delivered"].startswith("<time datetime=")
    assert "refused the pixel&#39;s access token" in health["Last failure"]
    assert health["Failed attempts, 24 h"].endswith(">1</a>")


async def test_a_new_pixel_has_no_history(relay: Relay) -> None:
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], "tiktok", name="Fresh pixel")
    await sign_in(relay)
    page = await relay.http.get(f"/ui/campaigns/{campaign['id']}")
    assert _health(page.text, pixel["name"]) == {
        "Last delivered": "nothing delivered yet",
        "Last failure": "none",
        "Failed attempts, 24 h": "0",
    }
