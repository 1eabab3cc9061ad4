"""The bulk Redeliver of the overview's Needs attention (issue 22 item 7): one button, its
count in words, that redelivers every conversion the list covers as one bulk redelivery,
which the overview then follows until it ends; refused without the CSRF token, and a
notice with nothing to redeliver."""

import asyncio
import re
from urllib.parse import parse_qs, urlsplit

import httpx
from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from relay.domain.redelivery import BULK_PREFIX, BulkProgress
from relay.store.pool import ClickHouse
from tests.console import csrf_of, sign_in
from tests.harness import Relay, failed_conversions, meta_event_ids, running_relay
from tests.platform_server import PlatformServer

REFRESH = '<meta http-equiv="refresh" content="2">'


async def _overview(relay: Relay, campaign_id: str) -> httpx.Response:
    page = await relay.http.get("/ui/overview", params={"range": "24h", "campaign_id": campaign_id})
    assert page.status_code == 200, page.text
    return page


def _button(page: httpx.Response) -> str:
    """The bulk Redeliver button's label."""
    found = re.search(
        r'<form class="bulk-redeliver" method="post" action="/ui/overview/redeliver">'
        r".*?<button type=\"submit\">([^<]*)</button>",
        page.text,
        re.S,
    )
    assert found, page.text
    return found.group(1)


async def _bulk_ended(relay: Relay, workflow_id: str) -> BulkProgress:
    handle = relay.runtime.temporal.get_workflow_handle(workflow_id, result_type=BulkProgress)
    return await asyncio.wait_for(handle.result(), 60)


async def test_the_button_counts_the_failed_conversions_in_words(relay: Relay) -> None:
    one, _ = await failed_conversions(relay, 1)
    three, _ = await failed_conversions(relay, 3)
    await sign_in(relay)
    assert _button(await _overview(relay, one["campaign_id"])) == (
        "Redeliver the 1 failed conversion"
    )
    page = await _overview(relay, three["campaign_id"])
    assert _button(page) == "Redeliver all 3 failed conversions"
    # The form carries the session's CSRF token and the range and campaign shown.
    form = page.text.split('class="bulk-redeliver"')[1].split("</form>")[0]
    assert f'name="csrf" value="{csrf_of(page)}"' in form
    assert 'name="range" value="24h"' in form
    assert f'name="campaign_id" value="{three["campaign_id"]}"' in form

    # Nothing failed for good: no button.
    empty = await relay.campaign()
    assert 'class="bulk-redeliver"' not in (await _overview(relay, empty["id"])).text


async def test_the_button_redelivers_every_failed_conversion_and_the_overview_follows_it(
    dev_env: WorkflowEnvironment, clickhouse: ClickHouse, platforms: PlatformServer, keys: KeyRing
) -> None:
    # Two redeliveries a second: the bulk redelivery still runs when the page is first shown.
    async with running_relay(
        dev_env, clickhouse, platforms, keys, redelivery_rate_per_s=2
    ) as relay:
        pixel, ids = await failed_conversions(relay, 3)
        campaign_id = pixel["campaign_id"]
        await sign_in(relay)
        page = await _overview(relay, campaign_id)
        assert len(meta_event_ids(relay, pixel)) == 3

        answer = await relay.http.post(
            "/ui/overview/redeliver",
            data={"csrf": csrf_of(page), "range": "24h", "campaign_id": campaign_id},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        location = answer.headers["location"]
        query = parse_qs(urlsplit(location).query)
        assert urlsplit(location).path == "/ui/overview"
        assert query["campaign_id"] == [campaign_id] and query["range"] == ["24h"]
        assert query["count"] == ["3"]
        (workflow_id,) = query["redelivery"]
        assert workflow_id.startswith(BULK_PREFIX)

        # While it runs, the overview says how many and reloads itself.
        running = await relay.http.get(location)
        assert running.status_code == 200, running.text
        assert "3 failed conversions are being redelivered" in running.text
        assert f"<code>{workflow_id}</code>): <strong>RUNNING</strong>" in running.text
        assert REFRESH in running.text and "This page follows it" in running.text
        assert 'class="bulk-redeliver"' not in running.text  # no second click meanwhile

        progress = await _bulk_ended(relay, workflow_id)
        assert progress.total == progress.done == progress.delivered == 3
        states = await asyncio.gather(*(relay.conversion(i) for i in ids))
        assert {s["delivery_state"] for s in states} == {"delivered"}
        accepted = [e for e, status in meta_event_ids(relay, pixel) if status == 200]
        assert sorted(accepted) == sorted(ids)  # each sent again once, with its event_id

        ended = await relay.http.get(location)
        assert ended.status_code == 200, ended.text
        assert f"<code>{workflow_id}</code>): <strong>COMPLETED</strong>" in ended.text
        assert "3 of 3 conversions done: 3 delivered, 0 failed again" in ended.text
        assert REFRESH not in ended.text


async def test_the_bulk_redeliver_needs_the_csrf_token(relay: Relay) -> None:
    pixel, ids = await failed_conversions(relay, 2)
    campaign_id = pixel["campaign_id"]
    await sign_in(relay)
    form = {"range": "24h", "campaign_id": campaign_id}
    for csrf in ({}, {"csrf": "not-the-token"}):
        refused = await relay.http.post(
            "/ui/overview/redeliver", data={**form, **csrf}, follow_redirects=False
        )
        assert refused.status_code == 403, refused.text
        assert "CSRF token is missing or wrong" in refused.text
    await asyncio.sleep(1)  # a redelivery, had one started, would have sent by now
    assert len(meta_event_ids(relay, pixel)) == 2
    states = await asyncio.gather(*(relay.conversion(i) for i in ids))
    assert {s["delivery_state"] for s in states} == {"failed"}
    assert _button(await _overview(relay, campaign_id)) == "Redeliver all 2 failed conversions"


async def test_nothing_to_redeliver_is_a_notice_and_starts_nothing(relay: Relay) -> None:
    campaign = await relay.campaign()
    await sign_in(relay)
    page = await _overview(relay, campaign["id"])
    answer = await relay.http.post(
        "/ui/overview/redeliver",
        data={"csrf": csrf_of(page), "range": "7d", "campaign_id": campaign["id"]},
        follow_redirects=False,
    )
    assert answer.status_code == 200, answer.text
    assert "Nothing failed for good in this range: no redelivery started." in answer.text
    assert "being redelivered" not in answer.text and REFRESH not in answer.text
    assert 'name="range"' in answer.text and '<option value="7d" selected>' in answer.text


async def test_a_bad_range_starts_nothing(relay: Relay) -> None:
    await sign_in(relay)
    page = await relay.http.get("/ui/overview")
    answer = await relay.http.post(
        "/ui/overview/redeliver",
        data={"csrf": csrf_of(page), "range": "1y"},
        follow_redirects=False,
    )
    assert answer.status_code == 422, answer.text
    assert "range" in answer.text
