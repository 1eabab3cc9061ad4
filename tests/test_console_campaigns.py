"""The console's Campaigns pages (issue 11 item 3): campaigns, their pixels (Meta and both
TikTok flavours), custom conversions and outbound postbacks, created through the forms and
seen through the JSON API, with the API's messages next to the fields it refuses."""

import re

from api.ui.campaign_page import MACRO_MEANINGS
from relay.destinations.postback.template import MACROS
from tests.console import api_json, error_of, signed_in, submit
from tests.harness import Relay

TOKEN = "SECRET-console-token-1234"


async def test_a_campaign_created_through_the_form_is_in_the_api(relay: Relay) -> None:
    csrf = await signed_in(relay)
    created = await submit(
        relay,
        "/ui/campaigns",
        csrf=csrf,
        name="Console summer",
        offer_url="https://shop.example/lp?cid={click_id}",
        currency="eur",
        attribution_window_days="7",
        repeatable_events="deposit, rebill",
    )
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    assert location.startswith("/ui/campaigns/cmp_") and location.endswith("?done=created")
    campaign_id = location.removeprefix("/ui/campaigns/").split("?")[0]
    stored = await api_json(relay, f"/api/campaigns/{campaign_id}")
    assert stored["name"] == "Console summer" and stored["currency"] == "EUR"
    assert stored["attribution_window_days"] == 7
    assert stored["repeatable_events"] == ["deposit", "rebill"]

    page = await relay.http.get(location)
    assert page.status_code == 200
    assert "Campaign created." in page.text
    link = f'id="tracking-link-url">http://relay.test/c/{campaign_id}</code>'
    assert link in page.text and 'data-copy="#tracking-link-url"' in page.text
    listing = await relay.http.get("/ui/campaigns")
    assert f'href="/ui/campaigns/{campaign_id}">Console summer</a>' in listing.text

    # Edited through its form, as PATCH does.
    edited = await submit(
        relay,
        f"/ui/campaigns/{campaign_id}",
        csrf=csrf,
        name="Console autumn",
        offer_url="https://shop.example/lp?cid={click_id}",
        currency="USD",
        attribution_window_days="30",
        repeatable_events="",
    )
    assert edited.status_code == 303, edited.text
    stored = await api_json(relay, f"/api/campaigns/{campaign_id}")
    assert stored["name"] == "Console autumn" and stored["repeatable_events"] == []


async def test_a_bad_campaign_shows_the_api_message_next_to_its_field(relay: Relay) -> None:
    csrf = await signed_in(relay)
    before = len(await api_json(relay, "/api/campaigns"))
    refused = await submit(
        relay,
        "/ui/campaigns",
        csrf=csrf,
        name="Kept name",
        offer_url="ftp://shop.example/{click_id}",
        currency="USD",
    )
    assert refused.status_code == 422
    assert "URL scheme should be" in error_of(refused, "offer_url")
    assert 'value="Kept name"' in refused.text and 'value="ftp://shop.example/{click_id}"' in (
        refused.text
    )
    assert len(await api_json(relay, "/api/campaigns")) == before


async def test_the_campaign_forms_set_the_networks_allowed_to_post(relay: Relay) -> None:
    first, second = await relay.network(), await relay.network()
    csrf = await signed_in(relay)
    listing = await relay.http.get("/ui/campaigns")
    assert f'name="network-{first["id"]}"' in listing.text
    fields = {"csrf": csrf, "name": "Bound", "offer_url": "https://shop.example/{click_id}"}
    created = await submit(relay, "/ui/campaigns", **fields, **{f"network-{first['id']}": "on"})
    assert created.status_code == 303, created.text
    campaign_id = created.headers["location"].removeprefix("/ui/campaigns/").split("?")[0]
    path = f"/ui/campaigns/{campaign_id}"
    assert (await api_json(relay, f"/api/campaigns/{campaign_id}"))["allowed_networks"] == [
        first["id"]
    ]
    page = await relay.http.get(path)
    assert f'name="network-{first["id"]}" checked' in page.text
    assert f'name="network-{second["id"]}">' in page.text  # not ticked

    edited = await submit(relay, path, **fields, **{f"network-{second['id']}": "on"})
    assert edited.status_code == 303, edited.text
    stored = await api_json(relay, f"/api/campaigns/{campaign_id}")
    assert stored["allowed_networks"] == [second["id"]]
    refused = await submit(relay, path, **fields, **{"network-net_gone": "on"})
    assert refused.status_code == 422
    assert re.search(r'id="allowed_networks-error" role="alert">[^<]*net_gone', refused.text)
    assert f'name="network-{second["id"]}">' in refused.text  # the form as sent: unticked
    cleared = await submit(relay, path, **fields)  # none ticked: any network
    assert cleared.status_code == 303, cleared.text
    assert (await api_json(relay, f"/api/campaigns/{campaign_id}"))["allowed_networks"] == []
    assert "<dd>any network</dd>" in (await relay.http.get(path)).text


async def test_pixels_of_both_platforms_and_both_tiktok_flavours(relay: Relay) -> None:
    campaign = await relay.campaign()
    path = f"/ui/campaigns/{campaign['id']}"
    csrf = await signed_in(relay, path)
    pixels = {
        "Meta main": {"platform": "meta", "platform_pixel_id": "1234567890", "primary": "on"},
        "TikTok new": {
            "platform": "tiktok",
            "platform_pixel_id": "CNEW1",
            "tiktok_api": "events_2_0",
        },
        "TikTok old": {
            "platform": "tiktok",
            "platform_pixel_id": "COLD1",
            "tiktok_api": "pixel_track",
            "event_name": "CompletePayment",
            "test_event_code": "TEST42",
        },
    }
    for name, fields in pixels.items():
        added = await submit(
            relay, f"{path}/pixels", csrf=csrf, name=name, access_token=f" {TOKEN} ", **fields
        )
        assert added.status_code == 303, added.text
        assert added.headers["location"] == f"{path}?done=pixel-added"
    stored = {
        p["name"]: p for p in await api_json(relay, f"/api/campaigns/{campaign['id']}/pixels")
    }
    assert stored["Meta main"]["platform"] == "meta" and stored["Meta main"]["primary"] is True
    assert stored["TikTok new"]["tiktok_api"] == "events_2_0"
    assert stored["TikTok new"]["primary"] is False  # its box was not ticked
    assert stored["TikTok old"]["tiktok_api"] == "pixel_track"
    assert stored["TikTok old"]["event_name"] == "CompletePayment"
    assert stored["TikTok old"]["test_event_code"] == "TEST42"
    sealed = relay.runtime.config.pixel_token_ciphertext(stored["Meta main"]["id"])
    assert sealed is not None
    assert relay.runtime.keys.decrypt(sealed, stored["Meta main"]["id"]) == TOKEN

    page = await relay.http.get(path)
    for shown in (
        "1234567890",
        "CNEW1",
        "COLD1",
        "TEST42",
        "Events API 2.0",
        "Pixel track, legacy",
    ):
        assert shown in page.text
    assert "SECRET-" not in page.text
    assert 'id="new-pixel"' in page.text and 'name="platform_pixel_id"' in page.text

    # Rotating the token: an empty field keeps it, a new one replaces it.
    old = stored["TikTok old"]
    kept = await submit(
        relay,
        f"{path}/pixels/{old['id']}",
        csrf=csrf,
        name="TikTok legacy",
        access_token="",
        tiktok_api="events_2_0",
        event_name="",
        test_event_code="",
    )
    assert kept.status_code == 303, kept.text
    changed = await api_json(relay, f"/api/campaigns/{campaign['id']}/pixels/{old['id']}")
    assert changed["name"] == "TikTok legacy" and changed["tiktok_api"] == "events_2_0"
    assert changed["event_name"] is None and changed["test_event_code"] is None
    assert (
        relay.runtime.keys.decrypt(
            relay.runtime.config.pixel_token_ciphertext(old["id"]) or "", old["id"]
        )
        == TOKEN
    )
    rotated = await submit(
        relay,
        f"{path}/pixels/{old['id']}",
        csrf=csrf,
        name="TikTok legacy",
        access_token="SECRET-new-token-5678",
    )
    assert rotated.status_code == 303
    assert (
        relay.runtime.keys.decrypt(
            relay.runtime.config.pixel_token_ciphertext(old["id"]) or "", old["id"]
        )
        == "SECRET-new-token-5678"
    )

    deleted = await submit(relay, f"{path}/pixels/{old['id']}/delete", csrf=csrf, confirm="yes")
    assert deleted.status_code == 303
    left = await api_json(relay, f"/api/campaigns/{campaign['id']}/pixels")
    assert old["id"] not in {p["id"] for p in left} and len(left) == 2
    for page_path in (path, f"{path}?done=pixel-deleted", "/ui/campaigns"):
        assert "SECRET-" not in (await relay.http.get(page_path)).text


async def test_a_bad_pixel_id_is_shown_next_to_it_and_the_token_is_not_kept(
    relay: Relay,
) -> None:
    campaign = await relay.campaign()
    path = f"/ui/campaigns/{campaign['id']}"
    csrf = await signed_in(relay, path)
    refused = await submit(
        relay,
        f"{path}/pixels",
        csrf=csrf,
        platform="meta",
        platform_pixel_id="123 456",
        access_token=TOKEN,
        name="Kept pixel name",
        primary="on",
    )
    assert refused.status_code == 422
    assert "should match pattern" in error_of(refused, "platform_pixel_id")
    assert 'value="123 456"' in refused.text and 'value="Kept pixel name"' in refused.text
    assert TOKEN not in refused.text and "Type it again" in refused.text
    assert await api_json(relay, f"/api/campaigns/{campaign['id']}/pixels") == []

    bad_token = await submit(
        relay,
        f"{path}/pixels",
        csrf=csrf,
        platform="tiktok",
        platform_pixel_id="C1",
        access_token="has a space inside",
        name="T",
    )
    assert bad_token.status_code == 422
    assert "printable ASCII" in error_of(bad_token, "access_token")
    assert "has a space inside" not in bad_token.text


async def test_custom_conversions_and_outbound_postbacks_are_added_and_deleted(
    relay: Relay,
) -> None:
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], "meta", primary=False)
    api = f"/api/campaigns/{campaign['id']}"
    path = f"/ui/campaigns/{campaign['id']}"
    csrf = await signed_in(relay, path)

    unknown = await submit(
        relay,
        f"{path}/custom-conversions",
        csrf=csrf,
        inbound_event="AddToCart",
        pixel="px_nope",
        event_name="AddToCart",
    )
    assert unknown.status_code == 422
    assert "is not a pixel of this campaign" in error_of(unknown, "pixel")
    assert 'value="AddToCart"' in unknown.text
    added = await submit(
        relay,
        f"{path}/custom-conversions",
        csrf=csrf,
        inbound_event="AddToCart",
        pixel=pixel["id"],
        event_name="AddToCart",
    )
    assert added.status_code == 303, added.text
    [custom] = await api_json(relay, f"{api}/custom-conversions")
    assert custom["pixel_id"] == pixel["id"] and custom["inbound_event"] == "AddToCart"
    page = await relay.http.get(added.headers["location"])
    assert "Custom conversion added." in page.text and 'id="new-custom-conversion"' in page.text
    assert f"{pixel['name']} (meta)" in page.text

    private = await submit(
        relay,
        f"{path}/postbacks",
        csrf=csrf,
        url_template="http://169.254.169.254/cb?c={click_id}",
        method="GET",
        events="sale",
    )
    assert private.status_code == 422
    assert "169.254.169.254" in error_of(private, "url_template")
    unknown_macro = await submit(
        relay,
        f"{path}/postbacks",
        csrf=csrf,
        url_template="https://t.example/cb?c={clickid}",
        method="GET",
        events="",
    )
    assert unknown_macro.status_code == 422
    assert "unknown macro {clickid}" in error_of(unknown_macro, "url_template")
    template = "https://t.example/cb?c={click_id}&p={payout}&api_key=SECRET-in-url"
    added = await submit(
        relay,
        f"{path}/postbacks",
        csrf=csrf,
        url_template=template,
        method="POST",
        events="sale, lead",
    )
    assert added.status_code == 303, added.text
    [postback] = await api_json(relay, f"{api}/postbacks")
    assert postback["url_template"] == template and postback["method"] == "POST"
    assert postback["events"] == ["sale", "lead"]
    page = await relay.http.get(path)
    assert "https://t.example/cb?c={click_id}&amp;p={payout}&amp;api_key=[REDACTED]" in page.text
    assert "SECRET-" not in page.text and "{sub5}" in page.text

    for kind, record in (("custom-conversions", custom), ("postbacks", postback)):
        gone = await submit(relay, f"{path}/{kind}/{record['id']}/delete", csrf=csrf, confirm="yes")
        assert gone.status_code == 303, gone.text
        assert await api_json(relay, f"{api}/{kind}") == []


async def test_deleting_a_campaign_needs_the_confirmation(relay: Relay) -> None:
    campaign = await relay.campaign(name="Doomed")
    path = f"/ui/campaigns/{campaign['id']}"
    csrf = await signed_in(relay, path)
    unconfirmed = await submit(relay, f"{path}/delete", csrf=csrf)
    assert unconfirmed.status_code == 422
    assert "tick the box" in error_of(unconfirmed, "confirm")
    await api_json(relay, f"/api/campaigns/{campaign['id']}")  # still there
    confirmed = await submit(relay, f"{path}/delete", csrf=csrf, confirm="yes")
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == "/ui/campaigns?done=deleted"
    gone = await relay.http.get(f"/api/campaigns/{campaign['id']}", headers=relay.admin)
    assert gone.status_code == 404
    assert (await relay.http.get(path)).status_code == 404
    listing = await relay.http.get(confirmed.headers["location"])
    assert "recorded conversions and logs are kept" in listing.text


async def test_changes_need_the_csrf_token_and_pages_a_session(relay: Relay) -> None:
    campaign = await relay.campaign()
    path = f"/ui/campaigns/{campaign['id']}"
    for page_path in ("/ui/campaigns", path):
        answer = await relay.http.get(page_path, follow_redirects=False)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/ui/sign-in?next=")
    form = {"name": "X", "offer_url": "https://shop.example/"}
    assert (await submit(relay, "/ui/campaigns", **form)).status_code == 303  # to sign in
    await signed_in(relay)
    before = len(await api_json(relay, "/api/campaigns"))
    for target in ("/ui/campaigns", f"{path}/pixels", f"{path}/postbacks", f"{path}/delete"):
        refused = await submit(relay, target, **form, confirm="yes")
        assert refused.status_code == 403, target
    assert len(await api_json(relay, "/api/campaigns")) == before


def test_every_outbound_macro_is_explained() -> None:
    assert set(MACRO_MEANINGS) == MACROS
