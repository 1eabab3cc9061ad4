"""Retry semantics on the time-skipping server: transient errors retry, permanent ones don't."""

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from relay.crypto import KeyRing
from relay.store.pool import ClickHouse
from tests.harness import Relay, running_relay
from tests.platform_server import PlatformServer, Scripted


async def _fire_once(
    relay: Relay, platform: str, *answers: Scripted, **pixel_fields: Any
) -> tuple[str, dict[str, Any]]:
    network = await relay.network()
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], platform, **pixel_fields)
    relay.platforms.script(platform, pixel["platform_pixel_id"], *answers)
    click_id = await relay.click(campaign["id"])
    answer = (await relay.postback(key=network["postback_key"], click_id=click_id)).json()
    return answer["conversion_id"], pixel


async def test_500_twice_then_200_is_delivered_on_attempt_3(skipping_relay: Relay) -> None:
    relay = skipping_relay
    conv_id, pixel = await _fire_once(relay, "meta", Scripted(status=500), Scripted(status=500))
    result = await relay.result(conv_id)
    assert [f.delivered for f in result.fires] == [True]
    fires = (await relay.conversion(conv_id))["fires"]
    assert [(f["attempt"], f["http_status"], f["verdict"]) for f in fires] == [
        (1, 500, "retryable"),
        (2, 500, "retryable"),
        (3, 200, "delivered"),
    ]
    assert len(relay.platforms.requests_for("meta", pixel["platform_pixel_id"])) == 3


async def test_meta_invalid_token_is_not_retried(skipping_relay: Relay) -> None:
    relay = skipping_relay
    error = PlatformServer.meta_error(190)
    conv_id, _ = await _fire_once(relay, "meta", Scripted(status=400, body=error))
    result = await relay.result(conv_id)
    [fire] = result.fires
    assert not fire.delivered and "190" in fire.error
    [logged] = (await relay.conversion(conv_id))["fires"]
    assert (logged["attempt"], logged["http_status"], logged["verdict"]) == (1, 400, "permanent")
    assert "Invalid OAuth access token" in logged["response_body"]


@pytest.mark.parametrize(
    ("platform", "status", "code"),
    [
        ("meta", 400, 190),  # HTTP 400, OAuthException
        ("tiktok", 200, 40105),  # HTTP 200 with a non-zero code
    ],
)
async def test_a_wrong_token_ends_as_a_permanent_failure_with_the_platforms_error(
    skipping_relay: Relay, platform: str, status: int, code: int
) -> None:
    """No scripted answer: the stand-in refuses a token not bound to the pixel, as the
    platform does when an operator pastes the wrong one."""
    relay = skipping_relay
    network = await relay.network()
    campaign = await relay.campaign()
    pixel = await relay.pixel(campaign["id"], platform)
    pasted = await relay.http.patch(
        f"/api/campaigns/{campaign['id']}/pixels/{pixel['id']}",
        json={"access_token": "wrong-token"},
        headers=relay.admin,
    )
    assert pasted.status_code == 200, pasted.text
    click_id = await relay.click(campaign["id"])
    answer = await relay.postback(key=network["postback_key"], click_id=click_id)
    [fire] = (await relay.result(answer.json()["conversion_id"])).fires
    assert not fire.delivered
    [logged] = (await relay.conversion(answer.json()["conversion_id"]))["fires"]
    assert (logged["attempt"], logged["http_status"], logged["verdict"], logged["success"]) == (
        1,
        status,
        "permanent",
        False,
    )
    answered = json.loads(logged["response_body"])
    assert (answered["error"]["code"] if platform == "meta" else answered["code"]) == code
    assert str(code) in logged["error"]
    [sent] = relay.platforms.requests_for(platform, pixel["platform_pixel_id"])
    assert sent.status == status and "token" in sent.problems[0].lower()


async def test_tiktok_code_40001_inside_http_200_is_not_retried(skipping_relay: Relay) -> None:
    relay = skipping_relay
    error = PlatformServer.tiktok_error(40001)
    conv_id, _ = await _fire_once(relay, "tiktok", Scripted(status=200, body=error))
    [fire] = (await relay.result(conv_id)).fires
    assert not fire.delivered
    [logged] = (await relay.conversion(conv_id))["fires"]
    assert (logged["http_status"], logged["verdict"], logged["success"]) == (
        200,
        "permanent",
        False,
    )


async def test_throttling_retries_then_delivers(skipping_relay: Relay) -> None:
    relay = skipping_relay
    throttled = Scripted(status=429, headers={"Retry-After": "30"})
    conv_id, _ = await _fire_once(relay, "tiktok", throttled, tiktok_api="pixel_track")
    [fire] = (await relay.result(conv_id)).fires
    assert fire.delivered
    logged = (await relay.conversion(conv_id))["fires"]
    assert [f["verdict"] for f in logged] == ["retryable", "delivered"]


async def test_failed_fire_does_not_hold_back_the_other_platform(skipping_relay: Relay) -> None:
    relay = skipping_relay
    network = await relay.network()
    campaign = await relay.campaign()
    meta = await relay.pixel(campaign["id"], "meta")
    tiktok = await relay.pixel(campaign["id"], "tiktok")
    invalid = Scripted(
        status=400, body=PlatformServer.meta_error(100, error_type="GraphMethodException")
    )
    relay.platforms.script("meta", meta["platform_pixel_id"], invalid)
    click_id = await relay.click(campaign["id"])
    answer = (await relay.postback(key=network["postback_key"], click_id=click_id)).json()
    result = await relay.result(answer["conversion_id"])
    outcome = {f.target.pixel_id: f.delivered for f in result.fires}
    assert outcome == {meta["id"]: False, tiktok["id"]: True}
    assert len(relay.platforms.requests_for("tiktok", tiktok["platform_pixel_id"])) == 1


async def test_retry_after_sets_the_next_attempt_delay(relay: Relay) -> None:
    # On the real dev server: log times are wall-clock, which time skipping does not move.
    throttled = Scripted(status=429, headers={"Retry-After": "5"})
    conv_id, _ = await _fire_once(relay, "meta", throttled)
    [fire] = (await relay.result(conv_id)).fires
    assert fire.delivered
    first, second = (await relay.conversion(conv_id))["fires"]
    assert (first["verdict"], second["verdict"]) == ("retryable", "delivered")
    gap = datetime.fromisoformat(second["fired_at"]) - datetime.fromisoformat(first["fired_at"])
    # The policy's own first backoff is 2 s; Retry-After asked for 5.
    assert gap.total_seconds() >= 4.9


async def test_a_platform_down_for_an_hour_is_delivered_when_it_recovers(
    skipping_relay: Relay,
) -> None:
    # 15 answers of 503 span 2+4+...+512 s, then 600 s apart (the cap): about 67 minutes.
    relay = skipping_relay
    conv_id, pixel = await _fire_once(relay, "meta", *[Scripted(status=503)] * 15)
    [fire] = (await relay.result(conv_id)).fires
    assert fire.delivered
    logged = (await relay.conversion(conv_id))["fires"]
    assert [f["attempt"] for f in logged] == list(range(1, 17))  # every attempt logged
    assert [f["verdict"] for f in logged] == ["retryable"] * 15 + ["delivered"]
    # The first try is a local activity, scheduled in the worker's (unskipped) time; the
    # retries are scheduled by the server, whose time the test server skips.
    retries = logged[1:]
    first, last = (datetime.fromisoformat(retries[i]["scheduled_at"]) for i in (0, -1))
    assert last - first > timedelta(minutes=55)
    gaps = [
        datetime.fromisoformat(b["scheduled_at"]) - datetime.fromisoformat(a["scheduled_at"])
        for a, b in itertools.pairwise(retries)
    ]
    assert max(gaps) <= timedelta(minutes=10, seconds=5)  # the backoff is capped
    assert len(relay.platforms.requests_for("meta", pixel["platform_pixel_id"])) == 16


async def test_transient_failures_stop_when_the_retry_window_closes(
    skipping_env: WorkflowEnvironment,
    clickhouse: ClickHouse,
    platforms: PlatformServer,
    keys: KeyRing,
) -> None:
    async with running_relay(
        skipping_env, clickhouse, platforms, keys, delivery_retry_window_h=0.5
    ) as relay:
        conv_id, _ = await _fire_once(relay, "tiktok", *[Scripted(status=503)] * 100)
        [fire] = (await relay.result(conv_id)).fires
        assert not fire.delivered
        logged = (await relay.conversion(conv_id))["fires"]
        retries = logged[1:]  # after the local first try (see above)
        first, last = (datetime.fromisoformat(retries[i]["scheduled_at"]) for i in (0, -1))
        assert timedelta(minutes=15) < last - first <= timedelta(minutes=30)
        assert all(f["verdict"] == "retryable" for f in logged)
