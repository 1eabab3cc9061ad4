"""Retry semantics on the time-skipping server: transient errors retry, permanent ones don't."""

import itertools
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
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


# A pixel send's retries back off from 2 s, doubling, to the 10-minute cap: 2 s, 4 s, 8 s,
# ... (the retry schedule in docs/postback-contract.md). Since shape 2 every try is a
# regular activity, the first one too (shape 1's local first try and 2 s timer made it
# 2 s, 2 s, 4 s; the recorded histories keep that).
FIRST_BACKOFF_S = 2
CAP_S = 600
# A gap is never shorter than its backoff, and longer only by the attempt itself and its
# dispatch: well under 2 s, so a 2 s gap cannot pass for a 4 s one or the other way round.
GAP_SLACK_S = 1.5


def backoffs(gaps: int) -> list[int]:
    """The policy's waits between consecutive attempts, in seconds."""
    return [min(FIRST_BACKOFF_S * 2**n, CAP_S) for n in range(gaps)]


def within_slack(gaps: list[float], wanted: list[int]) -> bool:
    """Whether each gap is its wanted wait, within the slack (seconds)."""
    return all(
        want - 0.1 <= gap < want + GAP_SLACK_S for want, gap in zip(wanted, gaps, strict=True)
    )


async def test_the_quick_attempts_are_2_then_4_seconds_apart(relay: Relay) -> None:
    # On the real dev server: the stand-in's arrival times are wall-clock.
    conv_id, pixel = await _fire_once(relay, "meta", *[Scripted(status=503)] * 2)
    [fire] = (await relay.result(conv_id)).fires
    assert fire.delivered
    sent = relay.platforms.requests_for("meta", pixel["platform_pixel_id"])
    assert [r.status for r in sent] == [503, 503, 200]
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(sent)]
    assert within_slack(gaps, [2, 4]), gaps
    logged = (await relay.conversion(conv_id))["fires"]
    assert [(f["attempt"], f["verdict"]) for f in logged] == [
        (1, "retryable"),
        (2, "retryable"),
        (3, "delivered"),
    ]


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
    # The policy's own first backoff is 2 s; Retry-After asked for 5, and got no more.
    assert within_slack([gap.total_seconds()], [5]), gap


async def test_a_platform_down_for_an_hour_is_delivered_when_it_recovers(
    skipping_relay: Relay,
) -> None:
    # 15 answers of 503, 2, 4, ..., 512 s apart, then 600 s (the cap): over an hour.
    relay = skipping_relay
    conv_id, pixel = await _fire_once(relay, "meta", *[Scripted(status=503)] * 15)
    [fire] = (await relay.result(conv_id)).fires
    assert fire.delivered
    logged = (await relay.conversion(conv_id))["fires"]
    assert [f["attempt"] for f in logged] == list(range(1, 17))  # every attempt logged
    assert [f["verdict"] for f in logged] == ["retryable"] * 15 + ["delivered"]
    # In the server's time, which the test server skips. It stamps a retry's scheduled time
    # when the attempt before failed: the first gap is the first attempt's run, each later
    # one the backoff before the attempt in between plus that attempt's (unskipped) run.
    scheduled = [datetime.fromisoformat(f["scheduled_at"]) for f in logged]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(scheduled)]
    wanted = backoffs(len(gaps) - 1)
    assert wanted[:3] == [2, 4, 8] and wanted[-5:] == [CAP_S] * 5
    assert gaps[0] < GAP_SLACK_S and within_slack(gaps[1:], wanted), gaps
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
        first, last = (datetime.fromisoformat(logged[i]["scheduled_at"]) for i in (0, -1))
        assert timedelta(minutes=15) < last - first <= timedelta(minutes=30)
        assert all(f["verdict"] == "retryable" for f in logged)
        # The last attempt still says "retryable": it is marked final, and its fire failed.
        assert [f["final"] for f in logged] == [False] * (len(logged) - 1) + [True]
        shown = await relay.conversion(conv_id)
        [send] = shown["sends"]
        assert (send["kind"], send["state"], send["attempts"]) == ("pixel", "failed", len(logged))
        assert shown["delivery_state"] == "failed"
        listed = await relay.http.get(
            "/api/conversions",
            params={"campaign_id": shown["campaign_id"], "delivery_state": "failed"},
            headers=relay.admin,
        )
        assert [c["conversion_id"] for c in listed.json()["items"]] == [conv_id]
