"""Platform errors in a media buyer's words (issue 22 item 7): each failure the console shows
says what happened and links to the fix (the pixel's token field for a refused token), with
the stored text kept in smaller print for operators. The texts are made by Relay's own
classifiers, so a change of their wording that the explanations miss fails here."""

import json
import re
from typing import Any

import pytest

from api.ui.explain import explain
from relay.destinations.meta.answers import classify_meta
from relay.destinations.tiktok.answers import classify_tiktok
from relay.domain.delivery_states import NOT_SENDABLE_REASON
from tests.console import sign_in
from tests.harness import Relay, failed_conversions
from tests.platform_server import PlatformServer

LINK = "/ui/campaigns/cmp_1#pixel-px_1"


def _meta(code: int, status: int = 400) -> str:
    body = json.dumps(PlatformServer.meta_error(code)).encode()
    return "meta_permanent: " + classify_meta(status, body, {}).reason


def _tiktok(code: int) -> str:
    body = json.dumps(PlatformServer.tiktok_error(code)).encode()
    return "tiktok_permanent: " + classify_tiktok(200, body, {}).reason


@pytest.mark.parametrize(
    ("stored", "words", "fix"),
    [
        (_meta(190), "refused the pixel's access token", "Paste a new access token"),
        (_tiktok(40105), "refused the pixel's access token", "Paste a new access token"),
        (_tiktok(40001), "may not send to this pixel", "Paste a token that has access"),
        (_meta(100), "refused the event as invalid", "Check the pixel's settings"),
    ],
)
def test_a_refused_token_or_setting_links_to_the_pixel(stored: str, words: str, fix: str) -> None:
    found = explain(stored, "cmp_1", "pixel", "px_1")
    assert found is not None, stored
    assert words in found.text and found.fix.startswith(fix) and found.link == LINK


@pytest.mark.parametrize(
    "stored",
    [
        _meta(4),
        _meta(613),
        _tiktok(40100),
        "meta_retryable: " + classify_meta(429, b"", {}).reason,
    ],
)
def test_throttling_says_relay_slows_down_by_itself(stored: str) -> None:
    found = explain(stored, "cmp_1", "pixel", "px_1")
    assert found is not None, stored
    assert found.text == "The platform asked Relay to slow down; Relay retries by itself."
    assert found.link is None


def test_too_old_and_passing_problems_in_plain_words() -> None:
    old = explain(f"meta_permanent: {NOT_SENDABLE_REASON}: older than the platform's 7-day limit")
    assert old is not None and "Too old to send" in old.text and "up to 7 days old" in old.text
    for stored in (_meta(2, 500), "tiktok_retryable: HTTP 503", "timeout: ReadTimeout"):
        passing = explain(stored)
        assert passing is not None and "passing problem" in passing.text, stored
    refused = explain("postback_permanent: HTTP 404", "cmp_1", "postback", "pb_1")
    assert refused is not None and "refused the postback (HTTP 404)" in refused.text
    assert refused.link == "/ui/campaigns/cmp_1#outbound-postback-pb_1"
    assert explain("something Relay never wrote") is None and explain("") is None


def _explained(page: str) -> list[str]:
    return re.findall(r'<span class="explained">(.*?)</span> <small class="raw error">', page)


async def test_the_pages_explain_a_refused_token_and_link_to_its_field(relay: Relay) -> None:
    pixel, [conversion_id] = await failed_conversions(relay)
    stored: dict[str, Any] = await relay.conversion(conversion_id)
    link = f'<a class="fix" href="/ui/campaigns/{stored["campaign_id"]}#pixel-{pixel["id"]}">'
    await sign_in(relay)
    campaign_id = stored["campaign_id"]
    pages = [
        f"/ui/conversions/{conversion_id}",  # the send's reason and the attempt's error
        f"/ui/overview?campaign_id={campaign_id}",  # Needs attention
        f"/ui/pixel-logs?campaign_id={campaign_id}",
    ]
    for path in pages:
        page = await relay.http.get(path)
        assert page.status_code == 200, page.text
        explained = _explained(page.text)
        assert explained, path
        for shown in explained:
            assert "refused the pixel&#39;s access token" in shown and link in shown, shown
        # The stored text stays, smaller, for operators.
        assert "meta error 190 (OAuthException)" in page.text
    # The link leads to the pixel on its campaign's page, where its token is pasted.
    campaign = await relay.http.get(f"/ui/campaigns/{campaign_id}")
    assert f'id="pixel-{pixel["id"]}"' in campaign.text
    assert f'id="edit-pixel-{pixel["id"]}"' in campaign.text and 'name="access_token"' in (
        campaign.text
    )
