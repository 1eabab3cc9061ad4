"""A pixel's token fixed through the API is what the very next send uses (issue 22 #3): fix
the Meta token, then the TikTok token, then redeliver in the same second, several times in
a row, as a media buyer does after an expired token. One process owns the configuration,
as in `relay up`; across processes the bound is RELAY_CONFIG_REFRESH_S (docs/configuration.md)."""

import uuid
from typing import Any

from tests.harness import Relay, redelivery_ended

ROUNDS = 5


async def _token(relay: Relay, pixel: dict[str, Any], token: str) -> None:
    path = f"/api/campaigns/{pixel['campaign_id']}/pixels/{pixel['id']}"
    answer = await relay.http.patch(path, json={"access_token": token}, headers=relay.admin)
    assert answer.status_code == 200, answer.text


async def test_a_fixed_token_is_used_by_the_redelivery_started_at_once(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    pixels = [await relay.pixel(campaign["id"], p) for p in ("meta", "tiktok")]
    for round_ in range(ROUNDS):
        # Both tokens go wrong (the stand-in refuses any but the pixel's bound token: Meta
        # 190, TikTok 40105): the conversion fails for good on both.
        good = [f"SECRET-good-{round_}-{uuid.uuid4().hex}" for _ in pixels]
        for pixel in pixels:
            await _token(relay, pixel, f"SECRET-wrong-{uuid.uuid4().hex}")
        click_id = await relay.click(campaign["id"])
        answer = await relay.postback(key=network["postback_key"], click_id=click_id)
        conversion_id = answer.json()["conversion_id"]
        await relay.result(conversion_id)
        failed = await relay.conversion(conversion_id)
        assert failed["delivery_state"] == "failed", failed["sends"]

        # Fix Meta, then TikTok, then redeliver: no pause anywhere.
        for pixel, token in zip(pixels, good, strict=True):
            relay.platforms.expect_token(pixel["platform"], pixel["platform_pixel_id"], token)
            await _token(relay, pixel, token)
        started = await relay.http.post(
            f"/api/conversions/{conversion_id}/redeliver", headers=relay.admin
        )
        assert started.status_code == 202, started.text
        result = await redelivery_ended(relay, started.json()["workflow_id"])
        assert result.outcome == "delivered", (round_, result)
        for pixel in pixels:
            last = relay.platforms.requests_for(pixel["platform"], pixel["platform_pixel_id"])[-1]
            assert last.status == 200, (round_, pixel["platform"], last.status, last.body)
    delivered = await relay.conversion(conversion_id)  # the last round's, read back
    assert delivered["delivery_state"] == "delivered", delivered["sends"]
