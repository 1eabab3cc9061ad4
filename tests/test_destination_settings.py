"""A platform's own settings come from its description (relay/destinations/ `fields`): the
API stores and checks them, the console's pixel forms show them, with no change outside
the destination's package. Proven with Meta given one more setting, as a new platform's
package would declare it."""

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from relay.destinations import registry
from relay.destinations.base import ClickIdentifier, FieldKind, SettingField
from relay.destinations.facts import SendFacts, event_facts
from relay.destinations.meta import MetaDestination
from relay.domain.models import Conversion, Pixel, Platform
from tests.console import api_json, signed_in, submit
from tests.harness import Relay

TOKEN = "SECRET-settings-token-1234"
OPTIONS = {"ad_account_id": "act_1"}
ACCOUNT = SettingField(
    "ad_account_id", "Ad account ID", required=True, help="Where the events are counted."
)
REGION = SettingField(
    "region", "Region", FieldKind.CHOICE, choices=(("eu", "Europe"), ("us", "United States"))
)


class MetaWithAccount(MetaDestination):
    fields = (*MetaDestination.fields, ACCOUNT, REGION)
    click_ids = (
        *MetaDestination.click_ids,
        ClickIdentifier("zzclid", timedelta(days=30), cookie="_zz"),
    )


@pytest.fixture
def meta_with_account(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    platforms = {**registry.PLATFORMS, Platform.META: MetaWithAccount()}
    monkeypatch.setattr(registry, "PLATFORMS", platforms)
    yield


def _pixel(**extra: object) -> dict[str, object]:
    return {
        "platform": "meta",
        "platform_pixel_id": "1234567890",
        "access_token": TOKEN,
        "name": "Meta main",
        **extra,
    }


@pytest.mark.usefixtures("meta_with_account")
async def test_the_api_checks_and_stores_a_platforms_own_settings(relay: Relay) -> None:
    campaign = await relay.campaign()
    path = f"/api/campaigns/{campaign['id']}/pixels"

    async def post(**extra: object) -> tuple[int, dict[str, Any]]:
        answer = await relay.http.post(path, json=_pixel(**extra), headers=relay.admin)
        return answer.status_code, answer.json()

    status, body = await post()
    assert status == 422 and body["error"]["param"] == "options.ad_account_id"
    assert "Ad account ID is required for Meta pixels" in str(body["error"]["message"])
    status, body = await post(options={"ad_account_id": "act_1", "colour": "red"})
    assert status == 422 and body["error"]["param"] == "options.colour"
    status, body = await post(options={"ad_account_id": "act_1", "region": "mars"})
    assert status == 422 and body["error"]["param"] == "options.region"
    status, body = await post(options={"ad_account_id": " act_1 ", "region": "eu"})
    assert status == 201, body
    assert body["options"] == {"ad_account_id": "act_1", "region": "eu"}
    stored = await api_json(relay, f"{path}/{body['id']}")
    assert stored["options"] == {"ad_account_id": "act_1", "region": "eu"}
    patched = await relay.http.patch(
        f"{path}/{body['id']}", json={"options": {"region": "us"}}, headers=relay.admin
    )
    assert patched.status_code == 422  # the required account would be gone
    assert patched.json()["error"]["param"] == "options.ad_account_id"


@pytest.mark.usefixtures("meta_with_account")
async def test_the_console_forms_show_each_platforms_settings(relay: Relay) -> None:
    campaign = await relay.campaign()
    page_path = f"/ui/campaigns/{campaign['id']}"
    csrf = await signed_in(relay, page_path)
    page = (await relay.http.get(page_path)).text
    new_form = page.split('id="new-pixel"')[1].split("</form>")[0]
    assert "Ad account ID (Meta pixels only)" in new_form
    assert 'name="ad_account_id"' in new_form and 'name="region"' in new_form
    assert "TikTok API (TikTok pixels only)" in new_form  # TikTok's own, from its package
    assert 'name="test_event_code"' in new_form and "Test event code (" not in new_form

    fields = {"platform": "meta", "platform_pixel_id": "1234567890", "name": "Meta main"}
    refused = await submit(
        relay, f"{page_path}/pixels", csrf=csrf, access_token=TOKEN, region="eu", **fields
    )
    assert refused.status_code == 422
    assert "Ad account ID is required for Meta pixels" in refused.text
    added = await submit(
        relay,
        f"{page_path}/pixels",
        csrf=csrf,
        access_token=TOKEN,
        ad_account_id="act_9",
        region="us",
        tiktok_api="pixel_track",  # TikTok's setting: not sent for a Meta pixel
        **fields,
    )
    assert added.status_code == 303, added.text
    [pixel] = await api_json(relay, f"/api/campaigns/{campaign['id']}/pixels")
    assert pixel["options"] == {"ad_account_id": "act_9", "region": "us"}
    assert pixel["tiktok_api"] == "events_2_0"

    card = (await relay.http.get(page_path)).text.split(f'id="pixel-{pixel["id"]}"')[1]
    card = card.split("</article>")[0]
    assert re.search(r"<dt>Ad account ID</dt><dd>act_9</dd>", card)
    assert re.search(r"<dt>Region</dt><dd>United States</dd>", card)
    assert "TikTok API" not in card  # the edit form shows Meta's settings only
    edited = await submit(
        relay,
        f"{page_path}/pixels/{pixel['id']}",
        csrf=csrf,
        name="Meta main",
        ad_account_id="act_10",
        region="eu",
    )
    assert edited.status_code == 303, edited.text
    changed = await api_json(relay, f"/api/campaigns/{campaign['id']}/pixels/{pixel['id']}")
    assert changed["options"] == {"ad_account_id": "act_10", "region": "eu"}


@pytest.mark.usefixtures("meta_with_account")
async def test_a_platforms_new_click_id_is_captured_sent_and_erased(relay: Relay) -> None:
    """A click ID without a `Click` field of its own: the landing click keeps it (from the
    query, else the platform's cookie), a send's facts carry it, erasure blanks it."""
    campaign = await relay.campaign()
    traffic = relay.runtime.traffic
    click_id = await relay.click(campaign["id"], zzclid="ZZ.abc", fbclid="IwAR1")
    click = await relay.runtime.run(traffic.get_click, click_id)
    assert click is not None
    assert (click.click_ids, click.fbclid) == ({"zzclid": "ZZ.abc"}, "IwAR1")
    from_cookie = await relay.click(campaign["id"], headers={"Cookie": "_zz=ZZ.cookie"})
    cookie_click = await relay.runtime.run(traffic.get_click, from_cookie)
    assert cookie_click is not None and cookie_click.click_ids == {"zzclid": "ZZ.cookie"}
    refused = await relay.http.get(f"/c/{campaign['id']}", params={"zzclid": "bad\nvalue"})
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "zzclid"

    lander = {
        "campaign_id": campaign["id"],
        "ip": "203.0.113.9",
        "user_agent": "Mozilla/5.0",
        "landing_url": "https://lander.example/p",
    }
    posted = await relay.http.post(
        "/api/clicks", json={**lander, "click_ids": {"zzclid": "ZZ.server"}}, headers=relay.admin
    )
    assert posted.status_code == 201, posted.text
    server = await relay.runtime.run(traffic.get_click, posted.json()["click_id"])
    assert server is not None and server.click_ids == {"zzclid": "ZZ.server"}
    unknown = await relay.http.post(
        "/api/clicks", json={**lander, "click_ids": {"gclid": "G"}}, headers=relay.admin
    )
    assert unknown.status_code == 422 and unknown.json()["error"]["param"] == "click_ids.gclid"

    pixel = Pixel.model_validate(await relay.pixel(campaign["id"], "meta", options=OPTIONS))
    conversion = Conversion(
        conversion_id="conv_x",
        click_id=click_id,
        network_id="net_x",
        event_type="sale",
        currency="USD",
        received_at=click.clicked_at,
    )
    facts = event_facts(SendFacts(conversion, click, "Purchase", 0), pixel)
    assert facts.click_ids == {"zzclid": "ZZ.abc"}

    erased = await relay.http.delete(f"/api/clicks/{click_id}/personal-data", headers=relay.admin)
    assert erased.status_code == 200, erased.text
    assert "click_ids" in erased.json()["erased"]["click"]
    after = await relay.runtime.run(traffic.get_click, click_id)
    assert after is not None and (after.click_ids, after.fbclid) == ({}, "")
