"""Every attempt writes its log row however it ends (issue 10 item 2): a pixel or postback
deleted after the plan, a token the key ring cannot open or that cannot go on the wire, any
unexpected error; and tokens no platform accepts are refused when a pixel is saved."""

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from activities.attempts import failure_verdict
from relay.domain.models import Verdict
from tests.harness import Relay
from tests.platform_server import Scripted
from tests.traffic_source import TrafficSource

# Long enough that the test deletes the pixel or postback before the retry; skipped time.
RETRY_AFTER_S = "120"


@pytest.fixture
def source() -> Iterator[TrafficSource]:
    with TrafficSource() as running:
        yield running


async def _sale(relay: Relay, campaign_id: str) -> str:
    network = await relay.network()
    click_id = await relay.click(campaign_id)
    answer = await relay.postback(key=network["postback_key"], click_id=click_id)
    conversion_id: str = answer.json()["conversion_id"]
    return conversion_id


async def _rows(relay: Relay, conversion_id: str, kind: str, count: int) -> list[dict[str, Any]]:
    """The conversion's logged attempts of one kind, once there are at least `count`."""
    async with asyncio.timeout(30):
        while True:
            found = await relay.http.get(f"/api/conversions/{conversion_id}", headers=relay.admin)
            rows: list[dict[str, Any]] = found.json()[kind] if found.status_code == 200 else []
            if len(rows) >= count:
                return rows
            await asyncio.sleep(0.05)


async def _store_token(relay: Relay, pixel_id: str, sealed: str) -> None:
    """Put a ciphertext in the pixel's row, as a rotation or an older release could have."""
    config = relay.runtime.config
    pixel = await relay.runtime.run(config.get_pixel, pixel_id)
    assert pixel is not None
    await relay.runtime.run(config.save_pixel, pixel, sealed)


@pytest.mark.parametrize(
    "token",
    [
        "EAAB token-with-a-space",
        "EAAB\ttoken-with-a-tab",
        "EAAB-t\u00f6ken-non-ascii",
        "EAAB-token\u200b-zero-width",
        "EAAB-token\x00-nul",
        "EAAB-token\x7f-del",
    ],
    ids=["space", "tab", "non-ascii", "zero-width", "nul", "del"],
)
async def test_tokens_no_platform_accepts_are_refused_on_save(relay: Relay, token: str) -> None:
    campaign = await relay.campaign()
    base = f"/api/campaigns/{campaign['id']}/pixels"
    body = {"platform": "meta", "platform_pixel_id": "123", "name": "M", "access_token": token}
    created = await relay.http.post(base, json=body, headers=relay.admin)
    pixel = await relay.pixel(campaign["id"], "meta")
    patched = await relay.http.patch(
        f"{base}/{pixel['id']}", json={"access_token": token}, headers=relay.admin
    )
    for answer in (created, patched):
        assert answer.status_code == 422, answer.text
        error = answer.json()["error"]
        assert error["param"] == "access_token"
        assert "printable ASCII" in error["message"]
        assert token not in answer.text


async def test_surrounding_whitespace_of_a_token_is_trimmed(relay: Relay) -> None:
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], "meta", access_token="  EAAB-pasted-token\n")
    path = f"/api/campaigns/{campaign['id']}/pixels/{pixel['id']}"

    async def sent_token(token: str) -> str:
        """A sale's Meta request, accepted by the stand-in bound to `token` only (as Meta
        refuses a token with a space): the token it carried."""
        relay.platforms.expect_token("meta", pixel["platform_pixel_id"], token)
        [fire] = (await relay.result(await _sale(relay, campaign["id"]))).fires
        assert fire.delivered, fire.error
        sent = relay.platforms.requests_for("meta", pixel["platform_pixel_id"])[-1]
        assert (sent.status, sent.problems) == (200, [])
        return str(sent.body["access_token"])

    assert await sent_token("EAAB-pasted-token") == "EAAB-pasted-token"
    rotated = await relay.http.patch(
        path, json={"access_token": "\tEAAB-rotated-token \n"}, headers=relay.admin
    )
    assert rotated.status_code == 200, rotated.text
    assert await sent_token("EAAB-rotated-token") == "EAAB-rotated-token"


async def test_undecryptable_token_logs_a_permanent_row(relay: Relay) -> None:
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], "meta")
    # Made with a key that has since left the ring.
    await _store_token(relay, pixel["id"], "v1.retired.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    conversion_id = await _sale(relay, campaign["id"])
    [fire] = (await relay.result(conversion_id)).fires
    assert not fire.delivered and "cannot be decrypted" in fire.error
    [row] = await _rows(relay, conversion_id, "fires", 1)
    assert (row["attempt"], row["verdict"], row["success"]) == (1, "permanent", False)
    assert row["error"] == (
        "access token cannot be decrypted: ciphertext was made with key 'retired', not in the ring"
    )
    assert (row["pixel_id"], row["pixel_name"]) == (pixel["id"], pixel["name"])
    assert row["campaign_id"] == campaign["id"] and row["http_status"] is None
    assert relay.platforms.requests_for("meta", pixel["platform_pixel_id"]) == []


async def test_token_that_cannot_go_in_a_header_logs_a_permanent_row(relay: Relay) -> None:
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], "tiktok")
    token = "tt-t\u00f6ken-saved-before-the-check"  # TikTok sends it in the Access-Token header
    await _store_token(relay, pixel["id"], relay.runtime.keys.encrypt(token, pixel["id"]))
    conversion_id = await _sale(relay, campaign["id"])
    [fire] = (await relay.result(conversion_id)).fires
    assert not fire.delivered
    [row] = await _rows(relay, conversion_id, "fires", 1)
    assert (row["verdict"], row["http_status"]) == ("permanent", None)
    assert "UnicodeEncodeError" in row["error"] and "non-ASCII" in row["error"]
    assert row["request_url"].endswith("/open_api/v1.3/event/track/")
    # Neither the token nor a piece of it (the error's message quotes the character).
    assert "\u00f6" not in str(row) and "\u00f6" not in fire.error
    assert relay.platforms.requests_for("tiktok", pixel["platform_pixel_id"]) == []


async def test_pixel_deleted_before_a_retry_logs_a_permanent_row(skipping_relay: Relay) -> None:
    relay = skipping_relay
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], "meta")
    throttled = Scripted(status=429, headers={"Retry-After": RETRY_AFTER_S})
    relay.platforms.script("meta", pixel["platform_pixel_id"], throttled)
    conversion_id = await _sale(relay, campaign["id"])
    await _rows(relay, conversion_id, "fires", 1)
    deleted = await relay.http.delete(
        f"/api/campaigns/{campaign['id']}/pixels/{pixel['id']}", headers=relay.admin
    )
    assert deleted.status_code == 204
    [fire] = (await relay.result(conversion_id)).fires  # the retry runs as an activity
    assert not fire.delivered and "was deleted" in fire.error
    rows = await _rows(relay, conversion_id, "fires", 2)
    assert [(r["attempt"], r["verdict"]) for r in rows] == [(1, "retryable"), (2, "permanent")]
    assert rows[1]["error"] == f"pixel {pixel['id']} was deleted"
    assert (rows[1]["pixel_name"], rows[1]["campaign_id"]) == (pixel["name"], campaign["id"])
    assert len(relay.platforms.requests_for("meta", pixel["platform_pixel_id"])) == 1


async def test_postback_deleted_before_a_retry_logs_a_permanent_row(
    skipping_relay: Relay, source: TrafficSource
) -> None:
    relay = skipping_relay
    campaign = await relay.campaign()
    postback = await relay.post(
        f"/api/campaigns/{campaign['id']}/postbacks",
        {"url_template": source.url + "/pb?c={click_id}"},
    )
    source.script((503, {"Retry-After": RETRY_AFTER_S}))
    conversion_id = await _sale(relay, campaign["id"])
    await _rows(relay, conversion_id, "postbacks", 1)
    deleted = await relay.http.delete(
        f"/api/campaigns/{campaign['id']}/postbacks/{postback['id']}", headers=relay.admin
    )
    assert deleted.status_code == 204
    [outcome] = (await relay.result(conversion_id)).postbacks
    assert not outcome.delivered and "was deleted" in outcome.error
    rows = await _rows(relay, conversion_id, "postbacks", 2)
    assert [(r["attempt"], r["verdict"]) for r in rows] == [(1, "retryable"), (2, "permanent")]
    assert rows[1]["error"] == f"postback {postback['id']} was deleted"
    assert (rows[1]["postback_id"], rows[1]["campaign_id"]) == (postback["id"], campaign["id"])
    assert rows[1]["event_type"] == "sale" and rows[1]["http_status"] is None
    assert len(source.calls) == 1


def test_an_unexpected_error_is_retryable_and_its_message_never_logged() -> None:
    verdict = failure_verdict(RuntimeError("token EAAB-secret leaked in a message"))
    assert verdict.verdict == Verdict.RETRYABLE
    assert verdict.reason == "unexpected error: RuntimeError"
    assert failure_verdict(OSError("store down")).verdict == Verdict.RETRYABLE
