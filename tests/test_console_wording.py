"""Tidy words on the console (issue 22 item 7): a count agrees with its noun ("Redeliver 1
failed send", not "1 failed"), and platforms are named as their registry labels them
("TikTok", never "Tiktok")."""

from api.ui.pages import counted, platform_label
from relay.destinations.registry import PLATFORMS
from relay.domain.models import Platform
from tests.console import sign_in
from tests.harness import Relay, failed_conversions


def test_a_count_agrees_with_its_noun() -> None:
    assert counted(1, "failed send") == "1 failed send"
    assert counted(2, "failed send") == "2 failed sends"
    assert counted(0, "conversion") == "0 conversions"
    assert counted(1, "day") == "1 day" and counted(30, "day") == "30 days"
    assert counted(3, "box", "boxes") == "3 boxes"


def test_platforms_are_named_by_their_registry_labels() -> None:
    assert platform_label(Platform.TIKTOK) == "TikTok" == PLATFORMS[Platform.TIKTOK].label
    assert platform_label("meta") == "Meta"
    assert platform_label("unknown") == "unknown"


async def test_one_failed_send_is_singular_everywhere(relay: Relay) -> None:
    _, [conversion_id] = await failed_conversions(relay)
    campaign_id = (await relay.conversion(conversion_id))["campaign_id"]
    await sign_in(relay)
    overview = await relay.http.get(f"/ui/overview?campaign_id={campaign_id}")
    assert overview.status_code == 200, overview.text
    assert "<p>1 conversion in this range" in overview.text
    assert ">Redeliver 1 failed send</button>" in overview.text
    assert "1 failed<" not in overview.text and "1 failed sends" not in overview.text
    page = await relay.http.get(f"/ui/conversions/{conversion_id}")
    assert ">Redeliver the 1 failed send</button>" in page.text
    assert "Redeliver all 1" not in page.text

    short = await relay.campaign(attribution_window_days=1)
    campaign = await relay.http.get(f"/ui/campaigns/{short['id']}")
    assert "<dd>1 day</dd>" in campaign.text and "1 days" not in campaign.text


async def test_the_pixel_logs_say_tiktok(relay: Relay) -> None:
    await sign_in(relay)
    campaign = await relay.campaign()
    await relay.pixel(campaign["id"], "tiktok", name="TT main")
    network = await relay.network()
    click_id = await relay.click(campaign["id"])
    answer = await relay.postback(key=network["postback_key"], click_id=click_id)
    await relay.result(answer.json()["conversion_id"])
    page = await relay.http.get(f"/ui/pixel-logs?campaign_id={campaign['id']}")
    assert page.status_code == 200, page.text
    assert '<option value="tiktok">TikTok</option>' in page.text
    assert "<td>TT main (TikTok)</td>" in page.text
    assert "Tiktok" not in page.text and "(tiktok)" not in page.text
    conversion = await relay.http.get(f"/ui/conversions/{answer.json()['conversion_id']}")
    assert "<h3>TT main (TikTok) · " in conversion.text
