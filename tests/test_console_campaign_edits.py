"""The campaign page's edit forms for custom conversions and outbound postbacks, and the
"Yes, delete" box of every delete (issue 11 item 3): each change goes through the JSON
API's own function, a refused one shows the API's message next to its field, and an
outbound postback's secret is never rendered."""

import re
from typing import Any

import httpx

from tests.console import api_json, error_of, signed_in, submit
from tests.harness import Relay

SECRET_URL = "https://t.example/cb?c={click_id}&p={payout}&api_key=SECRET-pb-key-1"


def _opened(page: httpx.Response, form_id: str) -> bool:
    """Whether the form `form_id` is in an opened <details>."""
    return (
        re.search(rf'<details open>\s*<summary>Edit</summary>\s*<form id="{form_id}"', page.text)
        is not None
    )


async def _setup(relay: Relay) -> tuple[str, str, str, dict[str, Any], dict[str, Any]]:
    """A campaign with two pixels; its API path, page path and CSRF token, the pixels."""
    campaign = await relay.campaign()
    meta = await relay.pixel(campaign["id"], "meta", primary=False)
    tiktok = await relay.pixel(campaign["id"], "tiktok", name="TikTok other")
    path = f"/ui/campaigns/{campaign['id']}"
    return f"/api/campaigns/{campaign['id']}", path, await signed_in(relay, path), meta, tiktok


async def _funnel(relay: Relay, api: str, pixel_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A custom conversion to the pixel and an outbound postback with a secret."""
    body = {"inbound_event": "AddToCart", "pixel": pixel_id, "event_name": "AddToCart"}
    custom = await relay.post(f"{api}/custom-conversions", body)
    return custom, await relay.post(f"{api}/postbacks", {"url_template": SECRET_URL})


async def test_a_custom_conversion_is_edited_through_its_form(relay: Relay) -> None:
    api, path, csrf, meta, tiktok = await _setup(relay)
    body = {"inbound_event": "AddToCart", "pixel": meta["id"], "event_name": "AddToCart"}
    custom = await relay.post(f"{api}/custom-conversions", body)
    form_id = f"edit-custom-conversion-{custom['id']}"
    page = await relay.http.get(path)
    assert f'id="{form_id}"' in page.text and not _opened(page, form_id)

    edit = f"{path}/custom-conversions/{custom['id']}"
    refused = await submit(
        relay, edit, csrf=csrf, inbound_event="Kept event", pixel=tiktok["id"], event_name=""
    )
    assert refused.status_code == 422
    assert "at least 1 character" in error_of(refused, "event_name")
    assert _opened(refused, form_id) and 'value="Kept event"' in refused.text
    unknown = await submit(
        relay, edit, csrf=csrf, inbound_event="Lead", pixel="px_nope", event_name="Lead"
    )
    assert unknown.status_code == 422 and _opened(unknown, form_id)
    assert "is not a pixel of this campaign" in error_of(unknown, "pixel")
    assert await api_json(relay, f"{api}/custom-conversions/{custom['id']}") == custom

    saved = await submit(
        relay,
        edit,
        csrf=csrf,
        inbound_event="CompleteRegistration",
        pixel=tiktok["id"],
        event_name="CompleteRegistration",
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"{path}?done=custom-conversion-saved"
    stored = await api_json(relay, f"{api}/custom-conversions/{custom['id']}")
    assert stored["pixel_id"] == tiktok["id"]
    assert stored["inbound_event"] == "CompleteRegistration"
    assert stored["event_name"] == "CompleteRegistration"
    page = await relay.http.get(saved.headers["location"])
    assert "Custom conversion saved." in page.text
    assert f'<option value="{tiktok["id"]}" selected>TikTok other (tiktok)</option>' in page.text


async def test_an_outbound_postback_is_edited_and_its_secret_never_shown(relay: Relay) -> None:
    api, path, csrf, _, _ = await _setup(relay)
    body = {"url_template": SECRET_URL, "method": "GET", "events": ["sale"]}
    postback = await relay.post(f"{api}/postbacks", body)
    form_id = f"edit-outbound-postback-{postback['id']}"
    edit = f"{path}/postbacks/{postback['id']}"
    pages = [await relay.http.get(path)]
    assert f'id="{form_id}"' in pages[0].text and "api_key=[REDACTED]" in pages[0].text

    # An empty URL field keeps the URL; the other fields change.
    saved = await submit(
        relay, edit, csrf=csrf, url_template="", method="POST", events="sale, lead"
    )
    assert saved.status_code == 303, saved.text
    assert saved.headers["location"] == f"{path}?done=postback-saved"
    stored = await api_json(relay, f"{api}/postbacks/{postback['id']}")
    assert stored["url_template"] == SECRET_URL
    assert stored["method"] == "POST" and stored["events"] == ["sale", "lead"]
    pages.append(await relay.http.get(saved.headers["location"]))
    assert "Outbound postback saved." in pages[-1].text

    long_event = "e" * 65
    refused = await submit(relay, edit, csrf=csrf, url_template="", method="GET", events=long_event)
    assert refused.status_code == 422 and _opened(refused, form_id)
    assert "at most 64 characters" in error_of(refused, "events")
    assert f'value="{long_event}"' in refused.text
    bad_macro = await submit(
        relay, edit, csrf=csrf, url_template="https://t.example/cb?c={clickid}", method="GET"
    )
    assert bad_macro.status_code == 422 and _opened(bad_macro, form_id)
    assert "unknown macro {clickid}" in error_of(bad_macro, "url_template")
    assert 'value="https://t.example/cb?c={clickid}"' in bad_macro.text
    # The redacted URL pasted back would store `[REDACTED]` in place of the key: refused.
    pasted = "https://t.example/cb?c={click_id}&p={payout}&api_key=[REDACTED]"
    redacted = await submit(relay, edit, csrf=csrf, url_template=pasted, method="GET")
    assert redacted.status_code == 422
    assert "leave the field empty to keep" in error_of(redacted, "url_template")
    pages += [refused, bad_macro, redacted]
    assert await api_json(relay, f"{api}/postbacks/{postback['id']}") == stored

    # A whole new URL replaces it; its secret is not shown either.
    new_url = "https://t2.example/cb?c={click_id}&token=SECRET-pb-key-2"
    replaced = await submit(relay, edit, csrf=csrf, url_template=new_url, method="GET", events="")
    assert replaced.status_code == 303, replaced.text
    stored = await api_json(relay, f"{api}/postbacks/{postback['id']}")
    assert stored["url_template"] == new_url and stored["events"] == []
    events_refused = await submit(relay, edit, csrf=csrf, url_template="", events=long_event)
    assert events_refused.status_code == 422
    pages += [await relay.http.get(path), events_refused]
    for page in pages:
        assert "SECRET-" not in page.text


async def test_deletes_need_the_box_ticked(relay: Relay) -> None:
    api, path, csrf, meta, _ = await _setup(relay)
    custom, postback = await _funnel(relay, api, meta["id"])
    page = await relay.http.get(path)
    for kind, record, done in (
        ("custom-conversions", custom, "custom-conversion-deleted"),
        ("postbacks", postback, "postback-deleted"),
        ("pixels", meta, "pixel-deleted"),
    ):
        action = f"{path}/{kind}/{record['id']}/delete"
        form = page.text[page.text.index(f'action="{action}"') :].split("</form>")[0]
        assert 'name="confirm" value="yes" required' in form and "Yes, delete" in form
        refused = await submit(relay, action, csrf=csrf)
        assert refused.status_code == 422
        assert "tick the box" in error_of(refused, "confirm")
        shown = refused.text[refused.text.index(f'action="{action}"') :].split("</form>")[0]
        assert 'id="confirm-error"' in shown  # next to this item's box, not another's
        assert "SECRET-" not in refused.text
        await api_json(relay, f"{api}/{kind}/{record['id']}")  # still there
        deleted = await submit(relay, action, csrf=csrf, confirm="yes")
        assert deleted.status_code == 303, deleted.text
        assert deleted.headers["location"] == f"{path}?done={done}"
        gone = await relay.http.get(f"{api}/{kind}/{record['id']}", headers=relay.admin)
        assert gone.status_code == 404


async def test_edits_and_deletes_need_the_csrf_token_and_a_session(relay: Relay) -> None:
    api, path, csrf, meta, _ = await _setup(relay)
    custom, postback = await _funnel(relay, api, meta["id"])
    edits = {
        f"{path}/custom-conversions/{custom['id']}": {"inbound_event": "Lead", "pixel": meta["id"]},
        f"{path}/postbacks/{postback['id']}": {"method": "POST"},
    }
    deletes = [
        f"{path}/custom-conversions/{custom['id']}/delete",
        f"{path}/postbacks/{postback['id']}/delete",
        f"{path}/pixels/{meta['id']}/delete",
    ]
    for target, form in [*edits.items(), *((d, {"confirm": "yes"}) for d in deletes)]:
        refused = await submit(relay, target, **form, csrf="wrong" if "custom" in target else "")
        assert refused.status_code == 403, target
        relay.http.cookies.clear()
        signed_out = await submit(relay, target, **form, csrf=csrf)
        assert signed_out.status_code == 303, target
        assert signed_out.headers["location"].startswith("/ui/sign-in")
        csrf = await signed_in(relay, path)
    assert await api_json(relay, f"{api}/custom-conversions/{custom['id']}") == custom
    assert await api_json(relay, f"{api}/postbacks/{postback['id']}") == postback
    await api_json(relay, f"{api}/pixels/{meta['id']}")
