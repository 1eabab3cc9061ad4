"""The console's Conversions pages (issue 11 item 3): the filtered list in the workspace
timezone, one conversion with every attempt and no token, and Redeliver from the page."""

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from tests.console import csrf_of, sign_in
from tests.harness import Relay, failed_conversions, meta_event_ids, redelivery_ended
from tests.platform_server import Scripted

ZONE = "Asia/Kathmandu"  # +05:45: no other zone's times look like it


@pytest.fixture
async def in_kathmandu(relay: Relay) -> AsyncIterator[None]:
    """The workspace's timezone set to `ZONE` for the test (it is shared: UTC after)."""
    put = await relay.http.put("/api/settings", json={"timezone": ZONE}, headers=relay.admin)
    assert put.status_code == 200
    try:
        yield
    finally:
        await relay.http.put("/api/settings", json={"timezone": "UTC"}, headers=relay.admin)


async def _delivered(relay: Relay) -> tuple[dict[str, Any], dict[str, Any], str]:
    """A conversion whose Meta pixel delivered it: the campaign, network and its ID."""
    network = await relay.network()
    campaign = await relay.campaign()
    await relay.pixel(campaign["id"], "meta")
    click_id = await relay.click(campaign["id"])
    answer = await relay.postback(key=network["postback_key"], click_id=click_id, payout="12.5")
    conversion_id: str = answer.json()["conversion_id"]
    await relay.result(conversion_id)
    return campaign, network, conversion_id


async def test_the_list_shows_conversions_filtered_in_the_workspace_timezone(
    relay: Relay, in_kathmandu: None
) -> None:
    campaign, network, conversion_id = await _delivered(relay)
    await sign_in(relay)
    page = await relay.http.get("/ui/conversions", params={"campaign_id": campaign["id"]})
    assert page.status_code == 200, page.text
    assert conversion_id in page.text
    assert f'<a href="/ui/networks/{network["id"]}">{network["name"]}</a>' in page.text
    assert f'<a href="/ui/campaigns/{campaign["id"]}">{campaign["name"]}</a>' in page.text
    assert "12.50 USD" in page.text and f"Times in {ZONE}" in page.text
    received = datetime.fromisoformat((await relay.conversion(conversion_id))["received_at"])
    assert received.isoformat().endswith("+05:45")
    assert f'<time datetime="{received.isoformat()}">{received:%Y-%m-%d %H:%M:%S}</time>' in (
        page.text
    )
    assert "1\u20131 of 1" in page.text

    async def listed(**filters: str) -> bool:
        answer = await relay.http.get(
            "/ui/conversions", params={"campaign_id": campaign["id"], **filters}
        )
        assert answer.status_code == 200, answer.text
        return conversion_id in answer.text

    # A naive time is the workspace's: the minute it was received, there, takes it.
    minute = received.replace(second=0, microsecond=0, tzinfo=None)
    assert await listed(since=minute.isoformat(), state="delivered", event="Purchase ")
    assert await listed(network_id=network["id"], event="sale")
    assert not await listed(state="failed")
    assert not await listed(event="lead")
    assert not await listed(until=minute.isoformat())


async def test_a_bad_filter_is_shown_next_to_its_field(relay: Relay) -> None:
    await sign_in(relay)
    bad = await relay.http.get("/ui/conversions", params={"since": "yesterday", "state": "lost"})
    assert bad.status_code == 422
    assert 'id="since-error"' in bad.text and 'id="state-error"' in bad.text
    assert 'value="yesterday"' in bad.text  # what was typed stays, to be corrected
    backwards = await relay.http.get(
        "/ui/conversions", params={"since": "2026-01-02T00:00", "until": "2026-01-01T00:00"}
    )
    assert backwards.status_code == 422 and "must be later than since" in backwards.text


async def test_paging_keeps_the_filters(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()  # no pixel: nothing is sent, the list is what counts
    ids = []
    for n in range(3):
        click_id = await relay.click(campaign["id"])
        answer = await relay.postback(key=network["postback_key"], click_id=click_id, txid=f"t{n}")
        ids.append(answer.json()["conversion_id"])
    await asyncio.gather(*(relay.result(i) for i in ids))
    await sign_in(relay)
    first = await relay.http.get(
        "/ui/conversions", params={"campaign_id": campaign["id"], "size": "2"}
    )
    assert "1\u20132 of 3" in first.text, first.text
    older = f'href="?campaign_id={campaign["id"]}&amp;size=2&amp;page=2"'
    assert older in first.text and 'rel="prev"' not in first.text
    second = await relay.http.get(
        "/ui/conversions", params={"campaign_id": campaign["id"], "page": "2", "size": "2"}
    )
    assert "3\u20133 of 3" in second.text and 'rel="next"' not in second.text
    assert f'href="?campaign_id={campaign["id"]}&amp;size=2&amp;page=1"' in second.text
    # Newest first, each once across the pages.
    assert {i for i in ids if i in first.text} == set(ids[1:])
    assert [i for i in ids if i in second.text] == ids[:1]


async def test_a_conversion_shows_every_attempt_and_never_a_token(
    relay: Relay, in_kathmandu: None
) -> None:
    _, _, conversion_id = await _delivered(relay)
    stored = await relay.conversion(conversion_id)
    await sign_in(relay)
    page = await relay.http.get(f"/ui/conversions/{conversion_id}")
    assert page.status_code == 200, page.text
    [fire] = stored["fires"]
    for shown in (fire["pixel_name"], fire["event_name"], fire["request_url"], "delivered"):
        assert shown in page.text
    assert f'<time datetime="{fire["fired_at"]}">' in page.text
    assert fire["fired_at"].endswith("+05:45")
    assert f"{fire['duration_ms']} ms" in page.text and conversion_id in page.text
    # The request as logged (token redacted), and the platform's answer.
    assert f"&#34;event_id&#34;: &#34;{conversion_id}&#34;" in page.text  # indented JSON
    assert "events_received" in page.text
    assert "SECRET-" not in page.text  # every harness token starts so
    assert "Redeliver" not in page.text  # nothing failed
    link = f"/namespaces/default/workflows?query=WorkflowId%20%3D%20%22{conversion_id}%22"
    assert f'href="/ui/temporal{link}"' in page.text  # relay up's UI, under the console

    # A pixel deleted since keeps the name it was logged with.
    path = f"/api/campaigns/{stored['campaign_id']}/pixels/{fire['pixel_id']}"
    assert (await relay.http.delete(path, headers=relay.admin)).status_code == 204
    later = await relay.http.get(f"/ui/conversions/{conversion_id}")
    assert f"pixel: {fire['pixel_name']} ({fire['platform']}, deleted)" in later.text


async def test_a_failed_fire_is_redelivered_from_the_page(relay: Relay) -> None:
    pixel, [conversion_id] = await failed_conversions(relay)
    await sign_in(relay)
    page = await relay.http.get(f"/ui/conversions/{conversion_id}")
    assert "Redeliver the 1 failed send<" in page.text and "Redeliver all" not in page.text
    assert f'name="pixel_id" value="{pixel["id"]}"' in page.text
    assert 'http-equiv="refresh"' not in page.text  # no redelivery to follow
    # The redelivery's request is answered 1 s late (Meta's timeout: 1.5 s): the page is
    # seen while the redelivery runs.
    relay.platforms.script("meta", pixel["platform_pixel_id"], Scripted(delay_s=1.0))
    answer = await relay.http.post(
        f"/ui/conversions/{conversion_id}/redeliver",
        data={"csrf": csrf_of(page), "pixel_id": pixel["id"]},
    )
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    workflow_id = location.partition("?redelivery=")[2]
    assert location.startswith(f"/ui/conversions/{conversion_id}?redelivery=redeliver_")
    running = await relay.http.get(location)
    assert "<strong>RUNNING</strong>" in running.text
    assert '<meta http-equiv="refresh" content="2">' in running.text
    assert "This page follows it: it reloads itself every 2 seconds" in running.text
    result = await redelivery_ended(relay, workflow_id)
    assert result.outcome == "delivered"
    assert meta_event_ids(relay, pixel) == [(conversion_id, 400), (conversion_id, 200)]

    after = await relay.http.get(location)
    assert f"Redelivery <code>{workflow_id}</code> started: <strong>COMPLETED</strong>" in (
        after.text
    )
    assert "Outcome: <strong>delivered</strong>" in after.text
    assert "Redeliver the" not in after.text and "Redeliver all" not in after.text
    assert 'http-equiv="refresh"' not in after.text  # ended: the page stops reloading

    # Again: nothing is left to send, and the page says so; no workflow is started.
    again = await relay.http.post(
        f"/ui/conversions/{conversion_id}/redeliver", data={"csrf": csrf_of(after)}
    )
    assert again.status_code == 200 and "Nothing to send again" in again.text
    assert "already delivered" in again.text
    assert len(meta_event_ids(relay, pixel)) == 2


async def test_an_unknown_conversion_is_a_404_page(relay: Relay) -> None:
    await sign_in(relay)
    page = await relay.http.get("/ui/conversions/conv_nothing")
    assert page.status_code == 404 and "is not recorded" in page.text
    posted = await relay.http.post(
        "/ui/conversions/conv_nothing/redeliver", data={"csrf": csrf_of(page)}
    )
    assert posted.status_code == 404


async def test_find_takes_a_conversion_click_or_transaction_id(relay: Relay) -> None:
    network = await relay.network()
    campaign = await relay.campaign()  # no pixel: nothing is sent, the list is what counts
    order = f"ORDER-{uuid.uuid4().hex[:8]}"
    clicks, ids = [], []
    for txid in (order, order + "-2"):
        clicks.append(await relay.click(campaign["id"]))
        answer = await relay.postback(key=network["postback_key"], click_id=clicks[-1], txid=txid)
        ids.append(answer.json()["conversion_id"])
    await asyncio.gather(*(relay.result(i) for i in ids))
    await sign_in(relay)

    async def found(value: str, **filters: str) -> list[str]:
        page = await relay.http.get("/ui/conversions", params={"find": value, **filters})
        assert page.status_code == 200, page.text
        return [i for i in ids if i in page.text]

    assert await found(f" {order} ") == ids[:1]  # the transaction ID, trimmed
    assert await found(clicks[1]) == ids[1:]
    assert await found(ids[1]) == ids[1:]
    assert await found(order, campaign_id="cmp_other") == []  # with the other filters
    assert await found(order.lower()) == []  # IDs are exact
    api = await relay.http.get("/api/conversions", params={"txid": order}, headers=relay.admin)
    assert [c["conversion_id"] for c in api.json()["items"]] == ids[:1]
