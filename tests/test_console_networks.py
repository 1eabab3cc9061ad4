"""The console's Networks pages (issue 11): a network's key shown once with the exact
postback URL to give it (generic and with each platform's macros), a URL that really works,
key rotation with and without grace, rename and delete, through the API's own code."""

import html
import re
from typing import Any

import httpx

from api.ui.postback_macros import PLATFORMS
from tests.console import csrf_of, error_of, sign_in
from tests.harness import Relay

_KEY = re.compile(r'<code id="postback-key">([^<]+)</code>')


def _url(page: httpx.Response, element_id: str = "postback-url") -> str:
    found = re.search(rf'<code class="postback-url" id="{element_id}">([^<]+)</code>', page.text)
    assert found, page.text
    return html.unescape(found.group(1))


def _key(page: httpx.Response) -> str:
    found = _KEY.search(page.text)
    assert found, page.text
    return found.group(1)


def _assert_key_only_in_body(page: httpx.Response, key: str) -> None:
    """The key is in the answer's body (the notice and each URL), in no header."""
    assert page.status_code == 200, page.text
    assert "location" not in page.headers
    assert all(key not in value for value in page.headers.values())
    assert page.text.count(key) == 2 + len(PLATFORMS)  # the notice, the URL, each variant
    assert "shown only now" in page.text


async def _create(relay: Relay, name: str) -> tuple[httpx.Response, str]:
    await sign_in(relay)
    page = await relay.http.get("/ui/networks")
    answer = await relay.http.post("/ui/networks", data={"csrf": csrf_of(page), "name": name})
    return answer, _key(answer)


async def _send(relay: Relay, url: str) -> httpx.Response:
    return await relay.http.get(url)


async def test_a_new_network_shows_its_key_once_and_urls_that_work(relay: Relay) -> None:
    answer, key = await _create(relay, "  Acme Affiliates  ")
    _assert_key_only_in_body(answer, key)
    [network] = [
        n
        for n in (await relay.http.get("/api/networks", headers=relay.admin)).json()
        if n["name"] == "Acme Affiliates"
    ]
    generic = _url(answer)
    assert generic == (
        f"http://relay.test/postback?key={key}&click_id=CLICK_ID&payout=PAYOUT"
        "&currency=CURRENCY&txid=TXID&event=EVENT"
    )

    # The URL from the page, with real values in place of the placeholders, is accepted.
    campaign = await relay.campaign()
    click_id = await relay.click(campaign["id"])
    filled = generic.replace("CLICK_ID", click_id).replace("PAYOUT", "12.50")
    filled = filled.replace("CURRENCY", "EUR").replace("TXID", "ORDER-1").replace("EVENT", "lead")
    sent = await _send(relay, filled)
    assert sent.status_code == 200 and sent.json()["status"] == "accepted", sent.text
    ids = [sent.json()["conversion_id"]]

    # So is each platform's, its macros filled as the platform would.
    for platform in PLATFORMS:
        variant = _url(answer, f"postback-url-{platform.slug}")
        assert variant.startswith(f"http://relay.test/postback?key={key}&click_id=")
        platform_click = await relay.click(campaign["id"])
        values: dict[str | None, str] = {
            platform.click_id: platform_click,
            platform.payout: "3.10",
            platform.currency: "GBP",
            platform.txid: f"T-{platform.slug}",
            platform.event: "sale",
        }
        for macro, value in values.items():
            if macro:
                assert macro in variant
                variant = variant.replace(macro, value)
        sent = await _send(relay, variant)
        assert sent.status_code == 200 and sent.json()["status"] == "accepted", sent.text
        ids.append(sent.json()["conversion_id"])
    for conversion_id in ids:
        await relay.result(conversion_id)
    for platform, conversion_id in zip(PLATFORMS, ids[1:], strict=True):
        recorded = await relay.conversion(conversion_id)
        assert recorded["txid"] == (f"T-{platform.slug}" if platform.txid else ""), platform
        assert recorded["currency"] == ("GBP" if platform.currency else "USD"), platform
    first: dict[str, Any] = await relay.conversion(ids[0])
    assert first["network_id"] == network["id"] and first["click_id"] == click_id
    assert first["txid"] == "ORDER-1" and first["currency"] == "EUR"

    # Later pages never show the key: a placeholder, and the advice to rotate.
    for path in ("/ui/networks", f"/ui/networks/{network['id']}"):
        later = await relay.http.get(path)
        assert later.status_code == 200 and key not in later.text
    page = await relay.http.get(f"/ui/networks/{network['id']}")
    assert _url(page) == generic.replace(key, "YOUR_POSTBACK_KEY")
    assert "Rotate the key" in page.text and 'data-copy="#postback-url"' in page.text
    assert '<script src="/ui/static/copy.js" defer></script>' in page.text
    script = await relay.http.get("/ui/static/copy.js")
    assert script.status_code == 200 and "navigator.clipboard.writeText" in script.text


async def test_rotation_with_grace_keeps_the_old_key_without_refuses_it(relay: Relay) -> None:
    network = await relay.network()
    old = network["postback_key"]
    campaign = await relay.campaign()
    await sign_in(relay)
    page = await relay.http.get(f"/ui/networks/{network['id']}")
    path = f"/ui/networks/{network['id']}/rotate-key"

    bad = await relay.http.post(path, data={"csrf": csrf_of(page), "grace_hours": "200"})
    assert bad.status_code == 422 and 'id="grace_hours-error"' in bad.text
    assert 'value="200"' in bad.text and "shown only now" not in bad.text

    rotated = await relay.http.post(path, data={"csrf": csrf_of(page), "grace_hours": "24"})
    new = _key(rotated)
    _assert_key_only_in_body(rotated, new)
    assert "The previous key is still accepted until" in rotated.text
    listed = await relay.http.get("/ui/networks")
    assert "still accepted until" in listed.text
    for key in (old, new):
        click_id = await relay.click(campaign["id"])
        sent = await relay.postback(key=key, click_id=click_id)
        assert sent.status_code == 200, sent.text
        await relay.result(sent.json()["conversion_id"])

    at_once = await relay.http.post(path, data={"csrf": csrf_of(page), "grace_hours": "0"})
    newest = _key(at_once)
    _assert_key_only_in_body(at_once, newest)
    assert "The previous key is refused from now on." in at_once.text
    click_id = await relay.click(campaign["id"])
    for key in (old, new):
        assert (await relay.postback(key=key, click_id=click_id)).status_code == 401
    sent = await relay.postback(key=newest, click_id=click_id)
    assert sent.status_code == 200, sent.text
    await relay.result(sent.json()["conversion_id"])


async def test_rename_and_delete_from_the_page(relay: Relay) -> None:
    network = await relay.network()
    await sign_in(relay)
    page = await relay.http.get(f"/ui/networks/{network['id']}")
    base = f"/ui/networks/{network['id']}"

    blank = await relay.http.post(f"{base}/rename", data={"csrf": csrf_of(page), "name": "  "})
    assert blank.status_code == 422 and 'id="name-error" role="alert"' in blank.text

    renamed = await relay.http.post(f"{base}/rename", data={"csrf": csrf_of(page), "name": "Beta"})
    assert renamed.status_code == 303 and renamed.headers["location"] == f"{base}?done=renamed"
    api = await relay.http.get(f"/api/networks/{network['id']}", headers=relay.admin)
    assert api.json()["name"] == "Beta"
    after = await relay.http.get(renamed.headers["location"])
    assert "Network renamed." in after.text and "<h1>Beta</h1>" in after.text

    # Without its "Yes, delete" box ticked, nothing is deleted: the page says why.
    assert 'name="confirm" value="yes" required' in page.text
    unconfirmed = await relay.http.post(f"{base}/delete", data={"csrf": csrf_of(page)})
    assert unconfirmed.status_code == 422
    assert "tick the box" in error_of(unconfirmed, "confirm")
    kept = await relay.http.get(f"/api/networks/{network['id']}", headers=relay.admin)
    assert kept.status_code == 200

    deleted = await relay.http.post(
        f"{base}/delete", data={"csrf": csrf_of(page), "confirm": "yes"}
    )
    assert deleted.status_code == 303
    assert deleted.headers["location"] == "/ui/networks?done=deleted"
    gone = await relay.http.get(f"/api/networks/{network['id']}", headers=relay.admin)
    assert gone.status_code == 404
    campaign = await relay.campaign()
    click_id = await relay.click(campaign["id"])
    refused = await relay.postback(key=network["postback_key"], click_id=click_id)
    assert refused.status_code == 401
    assert (await relay.http.get(base)).status_code == 404


async def test_a_bad_name_is_shown_next_to_its_field_and_nothing_is_created(relay: Relay) -> None:
    await sign_in(relay)
    page = await relay.http.get("/ui/networks")
    before = len((await relay.http.get("/api/networks", headers=relay.admin)).json())
    long = "x" * 201
    answer = await relay.http.post("/ui/networks", data={"csrf": csrf_of(page), "name": long})
    assert answer.status_code == 422 and 'id="name-error"' in answer.text
    assert f'value="{long}"' in answer.text and 'aria-invalid="true"' in answer.text
    after = len((await relay.http.get("/api/networks", headers=relay.admin)).json())
    assert after == before


async def test_networks_need_a_session_and_the_csrf_token(relay: Relay) -> None:
    for path in ("/ui/networks", "/ui/networks/net_x"):
        page = await relay.http.get(path, follow_redirects=False)
        assert page.status_code == 303
        assert page.headers["location"].startswith("/ui/sign-in?next=")
    posted = await relay.http.post("/ui/networks", data={"name": "X"}, follow_redirects=False)
    assert posted.status_code == 303

    await sign_in(relay)
    before = (await relay.http.get("/api/networks", headers=relay.admin)).json()
    forged = await relay.http.post("/ui/networks", data={"name": "No CSRF"})
    assert forged.status_code == 403
    network = await relay.network()
    for action in ("rename", "rotate-key", "delete"):
        refused = await relay.http.post(f"/ui/networks/{network['id']}/{action}", data={})
        assert refused.status_code == 403
    after = (await relay.http.get("/api/networks", headers=relay.admin)).json()
    assert len(after) == len(before) + 1  # only the one made through the API


async def test_a_form_sent_again_creates_or_rotates_nothing_more(relay: Relay) -> None:
    """A reload of the page that showed the key sends its form again: nothing is done
    twice, and the key that page showed keeps working."""
    campaign = await relay.campaign()
    await sign_in(relay)
    page = await relay.http.get("/ui/networks")
    form_id = re.search(r'name="form_id" value="([0-9a-f]{16})"', page.text)
    assert form_id, page.text
    sent = {"csrf": csrf_of(page), "name": "Resent", "form_id": form_id.group(1)}
    first = await relay.http.post("/ui/networks", data=sent)
    key = _key(first)
    again = await relay.http.post("/ui/networks", data=sent)
    assert again.status_code == 409 and "Nothing was created again" in again.text
    assert key not in again.text
    networks = (await relay.http.get("/api/networks", headers=relay.admin)).json()
    [network] = [n for n in networks if n["name"] == "Resent"]
    assert network["id"] == f"net_{form_id.group(1)}"

    shown = await relay.http.get(f"/ui/networks/{network['id']}")
    seen = re.search(r'name="seen" value="([^"]+)"', shown.text)
    assert seen and 'name="grace_hours" type="number"' in shown.text
    rotate = {"csrf": csrf_of(shown), "grace_hours": "0", "seen": html.unescape(seen.group(1))}
    path = f"/ui/networks/{network['id']}/rotate-key"
    rotated = _key(await relay.http.post(path, data=rotate))
    resent = await relay.http.post(path, data=rotate)
    assert resent.status_code == 409 and "Nothing was rotated again" in resent.text
    click_id = await relay.click(campaign["id"])
    answer = await relay.postback(key=rotated, click_id=click_id)
    assert answer.status_code == 200, answer.text
    await relay.result(answer.json()["conversion_id"])
    assert (await relay.postback(key=key, click_id=click_id)).status_code == 401
