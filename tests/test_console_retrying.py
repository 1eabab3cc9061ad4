"""The overview's Retrying now (issue 11): sends whose latest attempt failed and that are
being retried, so an outage shows before its sends fail for good."""

import asyncio
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from api.services.conversions import ConversionOut
from api.ui.conversions import retried_until
from relay.domain.delivery_states import DeliveryState
from relay.store.pool import ClickHouse
from relay.store.retrying import Retrying, retrying_sends
from tests.console import sign_in
from tests.harness import Relay
from tests.platform_server import Scripted
from tests.traffic_source import TrafficSource

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
QUIET = timedelta(minutes=75)


def _insert(store: ClickHouse, table: str, **row: Any) -> None:
    store.insert(table, [list(row.values())], column_names=list(row))


def _conversion(store: ClickHouse, cid: str, hours_ago: float, **columns: Any) -> None:
    received = NOW - timedelta(hours=hours_ago)
    _insert(store, "conversions", conversion_id=cid, received_at=received, **columns)


def _fire(store: ClickHouse, cid: str, pixel: str, minutes_ago: int, verdict: str) -> None:
    at = NOW - timedelta(minutes=minutes_ago)
    error = "" if verdict == "delivered" else f"HTTP 503 at {minutes_ago}"
    columns = {"pixel_id": pixel, "platform": pixel.split("_")[0], "fired_at": at}
    _insert(store, "pixel_fires", conversion_id=cid, verdict=verdict, error=error, **columns)


def _postback(store: ClickHouse, cid: str, postback: str, verdict: str) -> None:
    columns = {"postback_id": postback, "sent_at": NOW - timedelta(minutes=5)}
    _insert(store, "postback_attempts", conversion_id=cid, verdict=verdict, error="x", **columns)


def test_only_sends_whose_latest_attempt_is_to_be_retried_are_listed(store: ClickHouse) -> None:
    _conversion(store, "c_new", 1, campaign_id="cmp_a")
    _fire(store, "c_new", "meta_1", 30, "retryable")
    _fire(store, "c_new", "meta_1", 10, "retryable")  # tried twice, still failing
    _fire(store, "c_new", "tiktok_1", 30, "retryable")
    _fire(store, "c_new", "tiktok_1", 10, "delivered")  # retried, then delivered
    _postback(store, "c_new", "pb_1", "permanent")  # failed for good: not retried
    _conversion(store, "c_old", 5, campaign_id="cmp_b")
    _fire(store, "c_old", "meta_2", 20, "retryable")
    _postback(store, "c_old", "pb_2", "retryable")
    # Finished (its run wrote how it ended), a duplicate, older than the lookback.
    for cid, hours_ago, columns in (
        ("c_done", 2, {}),
        ("c_dupe", 2, {"is_duplicate": 1}),
        ("c_stale", 49, {}),
    ):
        _conversion(store, cid, hours_ago, campaign_id="cmp_a", **columns)
        _fire(store, cid, "meta_1", 10, "retryable")
    _insert(store, "delivery_states", conversion_id="c_done", state="failed", finished_at=NOW)
    # Unfinished, but silent for longer than any wait between two attempts: not retried.
    _conversion(store, "c_silent", 4, campaign_id="cmp_a")
    _fire(store, "c_silent", "meta_1", 150, "retryable")

    def found_for(lookback: timedelta, limit: int = 10, campaign: str | None = None) -> Retrying:
        return retrying_sends(store, NOW, (lookback, QUIET), limit, campaign)

    found = found_for(2 * DAY)
    listed = [(s.conversion_id, s.target_id, s.series, s.attempts) for s in found.sends]
    assert listed == [
        ("c_new", "meta_1", "meta", 2),
        ("c_old", "meta_2", "meta", 1),
        ("c_old", "pb_2", "postback", 1),
    ]
    assert found.sends[0].last_error == "HTTP 503 at 10"
    assert found.sends[0].last_at == NOW - timedelta(minutes=10)
    assert (found.by_series, found.conversions) == ({"meta": 2, "postback": 1}, 2)

    newest = found_for(2 * DAY, limit=1)  # counted in full, listed up to the limit
    assert [s.conversion_id for s in newest.sends] == ["c_new"]
    assert (newest.count, newest.conversions) == (3, 2)
    of_b = found_for(2 * DAY, campaign="cmp_b")
    assert [s.target_id for s in of_b.sends] == ["meta_2", "pb_2"] and of_b.conversions == 1
    assert found_for(timedelta(hours=3)).conversions == 1  # c_new only
    assert retrying_sends(store, NOW, (2 * DAY, DAY), 10, None).conversions == 3  # c_silent too
    assert found_for(2 * DAY, campaign="cmp_none") == Retrying([], {}, 0)


def _retrying_rows(page: str) -> list[str]:
    found = re.search(r'<table class="list retrying">(.*?)</table>', page, re.S)
    return re.findall(r"<tr>(.*?)</tr>", found.group(1), re.S)[1:] if found else []


def _failed_sends(relay: Relay, conversion_id: str) -> int:
    """How many of the conversion's sends have logged an attempt (Meta's, the postback's)."""
    result = relay.runtime.clickhouse.query(
        "SELECT (SELECT count() > 0 FROM pixel_fires WHERE conversion_id = {id:String}) + "
        "(SELECT count() > 0 FROM postback_attempts WHERE conversion_id = {id:String})",
        parameters={"id": conversion_id},
    )
    return int(result.result_rows[0][0])


async def test_the_overview_shows_sends_while_they_are_retried_then_not(
    skipping_relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On the time-skipping server, time runs as usual until the test waits for the run's
    result: meanwhile the fire waits 2, 4, 8 s between its three failed attempts, and the
    outbound postback at least 5 s after each of its own."""
    relay = skipping_relay
    network, campaign = await relay.network(), await relay.campaign()
    pixel = await relay.pixel(campaign["id"], "meta", name="Outage pixel")
    relay.platforms.script("meta", pixel["platform_pixel_id"], *[Scripted(status=503)] * 3)
    with TrafficSource() as source:
        source.script(503, 503, 503)
        template = source.url + "/cb?clickid={click_id}&token=SOURCE-SECRET"
        await relay.post(f"/api/campaigns/{campaign['id']}/postbacks", {"url_template": template})
        click_id = await relay.click(campaign["id"])
        answer = await relay.postback(key=network["postback_key"], click_id=click_id)
        conversion_id = answer.json()["conversion_id"]
        for _ in range(200):  # until both sends' first failed attempts are logged
            if _failed_sends(relay, conversion_id) == 2:
                break
            await asyncio.sleep(0.05)
        await sign_in(relay)
        overview = {"campaign_id": campaign["id"]}

        page = await relay.http.get("/ui/overview", params=overview)
        assert page.status_code == 200, page.text
        meta, postback = _retrying_rows(page.text)
        assert conversion_id in meta and "Outage pixel (Meta)" in meta and "meta error 2" in meta
        assert "Postback GET 127.0.0.1" in postback and "503" in postback
        assert "SOURCE-SECRET" not in page.text
        summary = "2 sends of 1 conversion of this campaign failed their last attempt"
        assert summary in page.text and "Meta 1, Outbound postbacks 1." in page.text
        assert "Relay keeps retrying each for up to 24 hours" in page.text
        # The conversion's page says so for each send, and until when at the latest.
        shown = await relay.http.get(f"/ui/conversions/{conversion_id}")
        fires = (await relay.conversion(conversion_id))["fires"]
        until = datetime.fromisoformat(fires[0]["fired_at"]) + timedelta(hours=24)
        assert shown.text.count("Being retried, until about") == 2
        assert f'until about <time datetime="{until.isoformat()}">' in shown.text
        monkeypatch.setattr("api.ui.overview.ATTENTION_LIMIT", 1)
        page = await relay.http.get("/ui/overview", params=overview)
        assert len(_retrying_rows(page.text)) == 1 and "; the newest 1 here." in page.text

        await relay.result(conversion_id)  # the fourth attempts deliver
    page = await relay.http.get("/ui/overview", params=overview)
    assert _retrying_rows(page.text) == []
    shown = await relay.http.get(f"/ui/conversions/{conversion_id}")
    assert "Being retried" not in shown.text
    assert "No send is being retried for this campaign." in page.text


def test_a_conversion_page_says_until_when_in_elapsed_hours() -> None:
    """The retry window is elapsed time: from 12:00 the day before summer time starts in
    New York, 24 hours end at 13:00 the next day. A run silent for longer than `quiet`
    (stopped without ending), a window already over or a permanent refusal: not said."""
    zone = ZoneInfo("America/New_York")
    first = datetime(2024, 3, 9, 12, 0, tzinfo=zone)

    def until(last_minutes_ago: int, verdict: str = "retryable", now: datetime = first) -> Any:
        now = now + timedelta(hours=2)
        fires = [
            SimpleNamespace(pixel_id="px", fired_at=first, verdict="retryable"),
            SimpleNamespace(
                pixel_id="px", fired_at=now - timedelta(minutes=last_minutes_ago), verdict=verdict
            ),
        ]
        sends = [SimpleNamespace(target_id="px", state=DeliveryState.PENDING)]
        parts: dict[str, Any] = {"fires": fires, "postbacks": [], "sends": sends}
        conversion = ConversionOut.model_construct(**parts)  # only what is read
        return retried_until(conversion, timedelta(hours=24), QUIET, now).get("px")

    found = until(10)
    assert found == datetime(2024, 3, 10, 13, 0, tzinfo=zone) and found.utcoffset() == timedelta(
        hours=-4
    )
    assert until(80) is None  # silent for longer than QUIET
    assert until(10, verdict="permanent") is None
    assert until(10, now=first + timedelta(hours=23)) is None  # the window is over
