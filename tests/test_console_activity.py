"""The console's Campaigns and Networks lists show each one's last 24 hours: clicks,
conversions (a link to them) and the newest conversion, so a buyer sees at a glance
whether a tracking link is clicked and a network's postbacks arrive."""

import re
from datetime import datetime

from tests.console import sign_in
from tests.harness import Relay


def _row(page: str, key: str) -> list[str]:
    """The cells of the list's row that links to `key`."""
    for row in re.findall(r"<tr>(.*?)</tr>", page, re.S):
        if f'/{key}"' in row:
            return [c.strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
    raise AssertionError(f"no row for {key}")


async def test_lists_show_each_campaign_and_network_last_24_hours(relay: Relay) -> None:
    network, campaign = await relay.network(), await relay.campaign()
    await sign_in(relay)
    campaigns = (await relay.http.get("/ui/campaigns")).text
    assert _row(campaigns, campaign["id"])[3:6] == ["0", "0", "none yet"]
    networks = (await relay.http.get("/ui/networks")).text
    assert _row(networks, network["id"])[1:3] == ["0", "none yet"]

    clicks = [await relay.click(campaign["id"]) for _ in range(3)]
    answer = await relay.postback(key=network["postback_key"], click_id=clicks[0], txid="A-1")
    conversion_id = answer.json()["conversion_id"]
    resent = await relay.postback(key=network["postback_key"], click_id=clicks[0], txid="A-1")
    assert resent.json()["status"] == "existing"  # the same conversion: counted once
    await relay.result(conversion_id)
    received = datetime.fromisoformat((await relay.conversion(conversion_id))["received_at"])

    campaigns = (await relay.http.get("/ui/campaigns")).text
    pixels, clicked, converted, last = _row(campaigns, campaign["id"])[2:6]
    assert (pixels, clicked) == ("0", "3") and f'datetime="{received.isoformat()}"' in last
    link = re.search(r'href="([^"]+)">1</a>', converted)
    assert link, converted
    listed = await relay.http.get(link.group(1).replace("&amp;", "&"))
    assert conversion_id in listed.text and "1\u20131 of 1" in listed.text

    networks = (await relay.http.get("/ui/networks")).text
    converted, last = _row(networks, network["id"])[1:3]
    assert f"network_id={network['id']}" in converted and ">1</a>" in converted
    assert "none yet" not in last
