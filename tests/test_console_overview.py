"""The console's Overview page (issue 11): conversions and how their sends ended, per
platform, bucketed in the workspace's timezone, and the failures that need attention."""

import asyncio
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from temporalio.testing import WorkflowEnvironment

from api.ui.overview_chart import bucket_name
from relay.core.crypto import KeyRing
from relay.store.overview import Overview, bucket_starts
from relay.store.pool import ClickHouse
from tests.console import csrf_of, sign_in
from tests.harness import BAD_TOKEN, Relay, redelivery_ended, running_relay
from tests.platform_server import PlatformServer, Scripted
from tests.traffic_source import TrafficSource


@pytest.fixture
def source() -> Iterator[TrafficSource]:
    with TrafficSource() as running:
        yield running


def _numbers(page: str) -> list[int]:
    """The numbers table's total row: conversions, then Meta, TikTok and outbound postbacks'
    delivered, failed, not sendable."""
    found = re.search(r"<tfoot>(.*?)</tfoot>", page, re.S)
    assert found, page
    return [int(n) for n in re.findall(r"<td>(\d+)</td>", found.group(1))]


async def _convert(relay: Relay, campaign: dict[str, Any], network: dict[str, Any]) -> str:
    click_id = await relay.click(campaign["id"])
    answer = await relay.postback(key=network["postback_key"], click_id=click_id)
    conversion_id: str = answer.json()["conversion_id"]
    await relay.result(conversion_id)
    return conversion_id


async def test_the_overview_counts_each_send_once_per_platform_and_lists_failures(
    relay: Relay, source: TrafficSource
) -> None:
    network = await relay.network()
    campaign = await relay.campaign()
    meta = await relay.pixel(campaign["id"], "meta")
    await relay.pixel(campaign["id"], "tiktok")
    await relay.post(
        f"/api/campaigns/{campaign['id']}/postbacks",
        {"url_template": source.url + "/cb?c={click_id}"},
    )
    # The first conversion's Meta fire is retried once then delivered; the second's is
    # refused for good. TikTok and the outbound postback deliver both.
    relay.platforms.script("meta", meta["platform_pixel_id"], Scripted(status=500))
    retried = await _convert(relay, campaign, network)
    relay.platforms.script("meta", meta["platform_pixel_id"], BAD_TOKEN)
    failed = await _convert(relay, campaign, network)
    assert len(relay.platforms.requests_for("meta", meta["platform_pixel_id"])) == 3

    await sign_in(relay)
    page = await relay.http.get(
        "/ui/overview", params={"range": "24h", "campaign_id": campaign["id"]}
    )
    assert page.status_code == 200, page.text
    # 3 Meta attempts, 2 Meta sends: one delivered (after a retry), one failed.
    assert _numbers(page.text) == [2, 1, 1, 0, 2, 0, 0, 2, 0, 0]
    assert "<dt>Delivered</dt><dd>5</dd>" in page.text and "<dt>Failed</dt><dd>1</dd>" in page.text
    assert page.text.count('<g class="bar">') == 4 * 24  # 4 charts of 24 hours
    assert re.search(
        r"<title>Meta, [^<]*: 1 delivered, 1 failed, 0 not sendable</title>", page.text
    )
    assert "SECRET-" not in page.text and 'style="' not in page.text

    attention = page.text.split('id="attention"')[1]
    assert f'href="/ui/conversions/{failed}"' in attention and retried not in attention
    assert "meta main (Meta)" in attention and "190" in attention  # the pixel and its error

    # Redelivered from the overview's button, the failed send is delivered: still one send.
    answer = await relay.http.post(
        f"/ui/conversions/{failed}/redeliver", data={"csrf": csrf_of(page)}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    workflow_id = answer.headers["location"].split("redelivery=")[1]
    await redelivery_ended(relay, workflow_id)
    for _ in range(50):  # the new record is written with the redelivery's end
        again = await relay.http.get(
            "/ui/overview", params={"range": "24h", "campaign_id": campaign["id"]}
        )
        if _numbers(again.text)[1:3] == [2, 0]:
            break
        await asyncio.sleep(0.1)
    assert _numbers(again.text) == [2, 2, 0, 0, 2, 0, 0, 2, 0, 0]
    assert "Nothing failed for good in this range." in again.text


async def test_an_empty_range_says_so(relay: Relay) -> None:
    campaign = await relay.campaign()
    await sign_in(relay)
    page = await relay.http.get("/ui/overview", params={"campaign_id": campaign["id"]})
    assert page.status_code == 200, page.text
    assert "No conversion was received in this range" in page.text
    assert "<svg" not in page.text and "Nothing failed for good" in page.text
    assert 'value="7d" selected' in page.text  # the default range


async def test_an_empty_workspace_is_led_through_its_first_steps(
    dev_env: WorkflowEnvironment, store: ClickHouse, platforms: PlatformServer, keys: KeyRing
) -> None:
    async with running_relay(dev_env, store, platforms, keys) as relay:
        await sign_in(relay)

        async def steps() -> list[str]:
            """The Getting started list's items, each up to its link; none once set up."""
            page = await relay.http.get("/ui/overview")
            assert page.status_code == 200, page.text
            found = re.search(r'id="getting-started".*?<ol>(.*?)</ol>', page.text, re.S)
            items = re.findall(r"<li>(.*?)</li>", found.group(1), re.S) if found else []
            return [item.split("<a")[0] for item in items]

        assert await steps() == ["", "", "Conversions then show here and under "]
        await relay.campaign()
        assert await steps() == ["✓ ", "", "Conversions then show here and under "]
        await relay.network()
        assert await steps() == []  # set up: the block is gone


async def test_a_bad_range_is_shown_next_to_its_field(relay: Relay) -> None:
    await sign_in(relay)
    page = await relay.http.get("/ui/overview", params={"range": "1y"})
    assert page.status_code == 422
    assert 'id="range-error"' in page.text and 'aria-invalid="true"' in page.text


async def test_the_overview_needs_a_session(relay: Relay) -> None:
    page = await relay.http.get("/ui/overview?range=30d", follow_redirects=False)
    assert page.status_code == 303
    assert page.headers["location"] == "/ui/sign-in?next=%2Fui%2Foverview%3Frange%3D30d"


# The store's query, on rows inserted at known times.


def _insert(store: ClickHouse, conversion_id: str, at: datetime, **columns: Any) -> None:
    row = {"conversion_id": conversion_id, "received_at": at, "attributed": 1, **columns}
    store.insert("conversions", [list(row.values())], column_names=list(row))


def _record(store: ClickHouse, conversion_id: str, sends: list[tuple[str, str, str]]) -> None:
    """A delivery state row: (kind, target, state) per send, finished now."""
    kinds, targets, states = (list(column) for column in zip(*sends, strict=True))
    store.insert(
        "delivery_states",
        [[conversion_id, "x", kinds, targets, states, [""] * len(sends), datetime.now(UTC)]],
        column_names=[
            "conversion_id",
            "state",
            "send_kinds",
            "send_targets",
            "send_states",
            "send_reasons",
            "finished_at",
        ],
    )


def test_days_and_hours_begin_in_the_workspace_timezone(store: ClickHouse) -> None:
    zone = ZoneInfo("Asia/Kathmandu")  # +05:45: midnight there is 18:15 UTC
    store.command("INSERT INTO pixels (id, platform, version) VALUES ('px_m', 'meta', 1)")
    store.command("INSERT INTO pixels (id, platform, version) VALUES ('px_t', 'tiktok', 1)")
    _insert(store, "late", datetime(2026, 3, 1, 18, 14, tzinfo=UTC))  # 23:59 on March 1 there
    _insert(store, "early", datetime(2026, 3, 1, 18, 16, tzinfo=UTC))  # 00:01 on March 2 there
    _insert(store, "dup", datetime(2026, 3, 1, 18, 16, tzinfo=UTC), is_duplicate=1)
    _insert(store, "outside", datetime(2026, 2, 27, 18, 14, tzinfo=UTC))
    _record(store, "late", [("pixel", "px_m", "failed"), ("postback", "pb", "delivered")])
    _record(store, "early", [("pixel", "px_m", "delivered"), ("pixel", "px_t", "not sendable")])
    _record(store, "outside", [("pixel", "px_m", "delivered")])
    overview = Overview(store)

    since = datetime(2026, 3, 1, tzinfo=zone)
    days = overview.buckets(since, datetime(2026, 3, 4, tzinfo=zone), zone)
    assert [b.start for b in days] == [datetime(2026, 3, d, tzinfo=zone) for d in (1, 2, 3)]
    assert [b.conversions for b in days] == [1, 1, 0]
    assert days[0].sends == {("meta", "failed"): 1, ("postback", "delivered"): 1}
    assert days[1].sends == {("meta", "delivered"): 1, ("tiktok", "not sendable"): 1}

    # A redelivery's record replaces the run's: the failed send is now one delivered send.
    _record(store, "late", [("pixel", "px_m", "delivered"), ("postback", "pb", "delivered")])
    hours = overview.buckets(
        datetime(2026, 3, 1, 12, tzinfo=zone), datetime(2026, 3, 2, 2, tzinfo=zone), zone
    )
    assert len(hours) == 14 and hours[0].start == datetime(2026, 3, 1, 12, tzinfo=zone)
    at_23, at_00 = hours[11], hours[12]
    assert at_23.start.hour == 23 and at_23.conversions == 1
    assert at_23.sends == {("meta", "delivered"): 1, ("postback", "delivered"): 1}
    assert at_00.start == datetime(2026, 3, 2, tzinfo=zone) and at_00.conversions == 1

    found, total = overview.needing_attention(since, datetime(2026, 3, 4, tzinfo=zone), 10)
    assert total == 0 and found == []


def test_a_day_with_a_clock_change_is_one_bucket() -> None:
    zone = ZoneInfo("America/New_York")  # March 8, 2026 has 23 hours there
    starts = bucket_starts(
        datetime(2026, 3, 7, tzinfo=zone), datetime(2026, 3, 10, tzinfo=zone), "day", zone
    )
    assert [s.astimezone(UTC).hour for s in starts] == [5, 5, 4]


def test_the_hour_a_clock_change_repeats_is_two_buckets(store: ClickHouse) -> None:
    zone = ZoneInfo("America/New_York")  # November 1, 2026: 01:00-02:00 happens twice
    _insert(store, "first", datetime(2026, 11, 1, 5, 30, tzinfo=UTC))  # 01:30 EDT
    _insert(store, "second", datetime(2026, 11, 1, 6, 30, tzinfo=UTC))  # 01:30 EST
    _insert(store, "third", datetime(2026, 11, 1, 6, 40, tzinfo=UTC))  # 01:40 EST
    since = datetime(2026, 11, 1, 4, tzinfo=UTC)  # 00:00 EDT
    hours = Overview(store).buckets(since, since + timedelta(hours=4), zone)
    assert [b.conversions for b in hours] == [0, 1, 2, 0]
    assert [b.start.hour for b in hours] == [0, 1, 1, 2]
    names = [bucket_name(b, "hour") for b in hours[1:3]]
    assert names == ["2026-11-01 01:00 EDT to 01:00 EST", "2026-11-01 01:00 EST to 02:00 EST"]


def test_needing_attention_names_each_failed_send(store: ClickHouse) -> None:
    now = datetime.now(UTC)
    _insert(store, "older", now - timedelta(hours=2), campaign_id="cmp_1")
    _insert(store, "newer", now - timedelta(hours=1), campaign_id="cmp_2")
    _record(store, "older", [("pixel", "px_m", "failed"), ("postback", "pb", "delivered")])
    _record(store, "newer", [("pixel", "px_m", "delivered"), ("postback", "pb", "failed")])
    overview = Overview(store)
    found, total = overview.needing_attention(now - timedelta(days=1), now, 1)
    assert total == 2 and [a.conversion_id for a in found] == ["newer"]
    assert [(f.kind, f.target_id) for f in found[0].failed] == [("postback", "pb")]
    only, _ = overview.needing_attention(now - timedelta(days=1), now, 5, campaign_id="cmp_1")
    assert [a.conversion_id for a in only] == ["older"]
