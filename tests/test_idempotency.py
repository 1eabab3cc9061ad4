"""Resends, concurrent postbacks and dedup rules: one conversion, one delivery per pixel."""

import asyncio
from typing import Any

from tests.harness import Relay, physical_rows


async def _funnel(relay: Relay, **campaign: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    network = await relay.network()
    created = await relay.campaign(**campaign)
    pixel = await relay.pixel(created["id"], "meta")
    click_id = await relay.click(created["id"])
    return network["postback_key"], pixel, {"campaign": created, "click_id": click_id}


async def _settle(relay: Relay, conversion_ids: set[str]) -> None:
    for conversion_id in conversion_ids:
        await relay.result(conversion_id)


async def test_one_postback_sent_20_times_in_a_row(relay: Relay) -> None:
    key, pixel, ctx = await _funnel(relay)
    params = {"key": key, "click_id": ctx["click_id"], "payout": "5", "txid": "T-SEQ"}
    answers = [(await relay.postback(**params)).json() for _ in range(20)]
    assert {a["conversion_id"] for a in answers} == {answers[0]["conversion_id"]}
    assert [a["status"] for a in answers] == ["accepted"] + ["existing"] * 19
    conv_id = answers[0]["conversion_id"]
    await _settle(relay, {conv_id})
    assert physical_rows(relay.runtime.clickhouse, conv_id) == 1
    assert len(relay.platforms.requests_for("meta", pixel["platform_pixel_id"])) == 1


async def test_one_postback_sent_20_times_at_once(relay: Relay) -> None:
    key, pixel, ctx = await _funnel(relay)
    params = {"key": key, "click_id": ctx["click_id"], "payout": "5", "txid": "T-PAR"}
    responses = await asyncio.gather(*(relay.postback(**params) for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    answers = [r.json() for r in responses]
    conv_ids = {a["conversion_id"] for a in answers}
    assert len(conv_ids) == 1
    assert sorted(a["status"] for a in answers).count("accepted") == 1
    assert not any(a["is_duplicate"] for a in answers)
    await _settle(relay, conv_ids)
    assert physical_rows(relay.runtime.clickhouse, conv_ids.pop()) == 1
    assert len(relay.platforms.requests_for("meta", pixel["platform_pixel_id"])) == 1


async def test_50_concurrent_txids_for_one_click_and_event_give_one_original(
    relay: Relay,
) -> None:
    key, pixel, ctx = await _funnel(relay)
    responses = await asyncio.gather(
        *(
            relay.postback(key=key, click_id=ctx["click_id"], event="lead", txid=f"L-{i}")
            for i in range(50)
        )
    )
    answers = [r.json() for r in responses]
    assert len({a["conversion_id"] for a in answers}) == 50
    # The first to arrive is known at once; the others depend on the click's campaign.
    originals = [a for a in answers if a["is_duplicate"] is False]
    assert len(originals) == 1
    assert sum(a["is_duplicate"] is None for a in answers) == 49
    await _settle(relay, {a["conversion_id"] for a in answers})
    [request] = relay.platforms.requests_for("meta", pixel["platform_pixel_id"])
    assert request.body["data"][0]["event_id"] == originals[0]["conversion_id"]
    assert request.body["data"][0]["event_name"] == "Lead"
    records = [await relay.conversion(a["conversion_id"]) for a in answers]
    assert [r["conversion_id"] for r in records if not r["is_duplicate"]] == [
        originals[0]["conversion_id"]
    ]
    assert all(r["fires"] == [] for r in records if r["is_duplicate"])


async def test_txid_resend_with_another_click_returns_the_existing_conversion(
    relay: Relay,
) -> None:
    key, _, ctx = await _funnel(relay)
    other_click = await relay.click(ctx["campaign"]["id"])
    first = (await relay.postback(key=key, click_id=ctx["click_id"], txid="SAME")).json()
    again = (await relay.postback(key=key, click_id=other_click, txid="SAME")).json()
    assert again["conversion_id"] == first["conversion_id"]
    assert again["status"] == "existing"
    await _settle(relay, {first["conversion_id"]})


async def test_different_events_on_one_click_are_separate_and_repeatables_repeat(
    relay: Relay,
) -> None:
    key, pixel, ctx = await _funnel(relay, repeatable_events=["deposit"])
    click_id = ctx["click_id"]
    answers = [
        (await relay.postback(key=key, click_id=click_id, event=event, txid=txid)).json()
        for event, txid in [("registration", "R1"), ("dep", "D1"), ("deposit", "D2"), ("REG", "R2")]
    ]
    # A second deposit and a second registration depend on the campaign: decided after.
    assert [a["is_duplicate"] for a in answers] == [False, False, None, None]
    await _settle(relay, {a["conversion_id"] for a in answers})
    records = [await relay.conversion(a["conversion_id"]) for a in answers]
    assert [r["is_duplicate"] for r in records] == [False, False, False, True]
    sent = relay.platforms.requests_for("meta", pixel["platform_pixel_id"])
    names = sorted(r.body["data"][0]["event_name"] for r in sent)
    assert names == ["CompleteRegistration", "Purchase", "Purchase"]


async def test_reversal_marks_the_conversion_and_fires_nothing(relay: Relay) -> None:
    key, pixel, ctx = await _funnel(relay)
    click_id = ctx["click_id"]
    early = (
        await relay.postback(key=key, click_id=click_id, status="Chargeback", txid="S2")
    ).json()
    sale = (await relay.postback(key=key, click_id=click_id, txid="S1", payout="10")).json()
    rejected = (
        await relay.postback(key=key, click_id=click_id, status="REJECTED", txid="S1")
    ).json()
    again = (await relay.postback(key=key, click_id=click_id, status="rejected", txid="S1")).json()
    assert again == {**rejected, "status": "existing"}
    assert rejected["is_duplicate"] is False  # a reversal is never a duplicate
    await _settle(relay, {early["conversion_id"], sale["conversion_id"], rejected["conversion_id"]})
    recorded = await relay.conversion(rejected["conversion_id"])
    assert recorded["attributed"] is True and recorded["is_duplicate"] is False
    assert (await relay.result(rejected["conversion_id"])).skipped.startswith("reversal")
    [request] = relay.platforms.requests_for("meta", pixel["platform_pixel_id"])
    assert request.body["data"][0]["event_id"] == sale["conversion_id"]
    stored_sale = await relay.conversion(sale["conversion_id"])
    assert stored_sale["reversed"] is True
    assert stored_sale["reversed_by"] == [rejected["conversion_id"]]
    stored_reversal = await relay.conversion(rejected["conversion_id"])
    assert stored_reversal["event_type"] == "rejected"
    assert stored_reversal["reverses"] == [sale["conversion_id"]]
    # A reversal whose conversion was never seen is kept, reversing nothing yet.
    kept = await relay.conversion(early["conversion_id"])
    assert kept["event_type"] == "chargeback" and kept["reverses"] == []
