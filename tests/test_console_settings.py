"""The console's Settings page (issue 11): the workspace timezone, saved through
PUT /api/settings's own code, and every page's times then in it."""

from collections.abc import AsyncIterator

import pytest

from tests.console import csrf_of, sign_in
from tests.harness import Relay

ZONE = "Asia/Kathmandu"


@pytest.fixture
async def restores_utc(relay: Relay) -> AsyncIterator[None]:
    """The workspace timezone is shared: UTC again after the test."""
    try:
        yield
    finally:
        await relay.http.put("/api/settings", json={"timezone": "UTC"}, headers=relay.admin)


async def test_the_timezone_is_saved_and_used_by_the_other_pages(
    relay: Relay, restores_utc: None
) -> None:
    await sign_in(relay)
    page = await relay.http.get("/ui/settings")
    assert page.status_code == 200 and 'id="settings"' in page.text
    assert 'name="timezone"' in page.text and 'value="UTC"' in page.text
    assert f'<option value="{ZONE}">' in page.text

    saved = await relay.http.post("/ui/settings", data={"csrf": csrf_of(page), "timezone": ZONE})
    assert saved.status_code == 303 and saved.headers["location"] == "/ui/settings?saved=1"
    after = await relay.http.get(saved.headers["location"])
    assert f"Saved: times are now shown in {ZONE}." in after.text
    api = await relay.http.get("/api/settings", headers=relay.admin)
    assert api.json() == {"timezone": ZONE}
    conversions = await relay.http.get("/ui/conversions")
    assert f"Times in {ZONE}, the workspace timezone." in conversions.text
    networks = await relay.http.get("/ui/networks")
    assert f"Times in {ZONE}" in networks.text


async def test_an_unknown_zone_shows_the_api_message_next_to_the_field(
    relay: Relay, restores_utc: None
) -> None:
    await sign_in(relay)
    page = await relay.http.get("/ui/settings")
    bad = await relay.http.post(
        "/ui/settings", data={"csrf": csrf_of(page), "timezone": "Mars/Olympus"}
    )
    assert bad.status_code == 422
    assert 'id="timezone-error" role="alert">unknown IANA timezone' in bad.text
    assert 'value="Mars/Olympus"' in bad.text and 'aria-invalid="true"' in bad.text
    blank = await relay.http.post("/ui/settings", data={"csrf": csrf_of(page), "timezone": " "})
    assert blank.status_code == 422 and 'id="timezone-error"' in blank.text
    api = await relay.http.get("/api/settings", headers=relay.admin)
    assert api.json() == {"timezone": "UTC"}


async def test_settings_need_a_session_and_the_csrf_token(relay: Relay) -> None:
    page = await relay.http.get("/ui/settings", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/ui/sign-in?next=")
    await sign_in(relay)
    forged = await relay.http.post("/ui/settings", data={"timezone": ZONE})
    assert forged.status_code == 403
    api = await relay.http.get("/api/settings", headers=relay.admin)
    assert api.json() == {"timezone": "UTC"}
