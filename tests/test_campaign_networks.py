"""A campaign's allowed networks (issue 18 #8): a network that learns another's click cannot
claim its conversion. Refused with 403 at accept time when the click can be read; recorded
refused (nothing sent, the click left to the allowed network) when it is decided later."""

from typing import Any

import pytest

import relay.ingest.accept as ingest
from relay.domain.models import Campaign
from relay.store.config_cache import ConfigSnapshot
from relay.store.config_cache import _welcome_everywhere as welcome_everywhere
from relay.store.rows import utc_now
from tests.harness import Relay, network_conversions

NOT_ALLOWED = "network not allowed for campaign"


async def _bound_campaign(relay: Relay, *network_ids: str) -> tuple[dict[str, Any], str, str]:
    """A campaign allowing `network_ids`, its Meta pixel's ID, and a click of it."""
    campaign = await relay.campaign(allowed_networks=list(network_ids))
    pixel = await relay.pixel(campaign["id"], "meta")
    click_id = await relay.click(campaign["id"])
    return campaign, pixel["platform_pixel_id"], click_id


async def test_an_allowed_network_is_accepted_and_delivered(relay: Relay) -> None:
    allowed, other = await relay.network(), await relay.network()
    campaign, pixel_id, click_id = await _bound_campaign(relay, allowed["id"], other["id"])
    assert campaign["allowed_networks"] == [allowed["id"], other["id"]]
    answer = await relay.postback(key=allowed["postback_key"], click_id=click_id, txid="A-1")
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "accepted"
    result = await relay.result(answer.json()["conversion_id"])
    assert [f.delivered for f in result.fires] == [True]
    assert len(relay.platforms.requests_for("meta", pixel_id)) == 1


async def test_another_network_is_refused_naming_key_and_the_click_stays_the_allowed_ones(
    relay: Relay,
) -> None:
    allowed, intruder = await relay.network(), await relay.network()
    _, pixel_id, click_id = await _bound_campaign(relay, allowed["id"])
    # Without a txid the conversion ID is the one the allowed network's postback makes.
    refused = await relay.postback(key=intruder["postback_key"], click_id=click_id)
    assert refused.status_code == 403, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["param"]) == ("forbidden", "key")
    assert "not allowed" in error["message"]
    assert network_conversions(relay.runtime.clickhouse, intruder["id"]) == 0

    answer = await relay.postback(key=allowed["postback_key"], click_id=click_id)
    assert answer.status_code == 200, answer.text
    assert (answer.json()["status"], answer.json()["is_duplicate"]) == ("accepted", False)
    result = await relay.result(answer.json()["conversion_id"])
    assert result.skipped == "" and [f.delivered for f in result.fires] == [True]
    conversion = await relay.conversion(answer.json()["conversion_id"])
    assert conversion["network_id"] == allowed["id"] and not conversion["is_duplicate"]
    assert len(relay.platforms.requests_for("meta", pixel_id)) == 1


async def test_any_network_by_default_the_first_postback_counts(relay: Relay) -> None:
    first, second = await relay.network(), await relay.network()
    campaign, pixel_id, click_id = await _bound_campaign(relay)
    assert campaign["allowed_networks"] == []
    answers = []
    for network, txid in ((first, "F-1"), (second, "S-1")):
        answer = await relay.postback(key=network["postback_key"], click_id=click_id, txid=txid)
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
    counted = await relay.result(answers[0]["conversion_id"])
    duplicate = await relay.result(answers[1]["conversion_id"])
    assert [f.delivered for f in counted.fires] == [True]
    assert duplicate.skipped.startswith("duplicate") and duplicate.fires == []
    assert len(relay.platforms.requests_for("meta", pixel_id)) == 1


async def test_decided_late_the_refused_conversion_is_recorded_and_nothing_is_sent(
    relay: Relay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The click cannot be read within the accept deadline (ClickHouse slow or down): the
    postback is accepted and the workflow's first step refuses it."""
    allowed, intruder = await relay.network(), await relay.network()
    campaign, pixel_id, click_id = await _bound_campaign(relay, allowed["id"])
    monkeypatch.setattr(ingest, "CLICK_READ_S", 0.0)
    relay.runtime.clicks.forget(click_id)  # not in this process's memory either

    late = await relay.postback(key=intruder["postback_key"], click_id=click_id, txid="I-1")
    assert late.status_code == 200, late.text
    assert late.json()["attributed"] is None
    refused_id = late.json()["conversion_id"]
    result = await relay.result(refused_id)
    assert (result.skipped, result.fires, result.postbacks) == (NOT_ALLOWED, [], [])
    refused = await relay.conversion(refused_id)
    assert refused["refusal"] == NOT_ALLOWED
    assert refused["campaign_id"] == campaign["id"]
    assert (refused["attributed"], refused["delivery_state"]) == (False, "unattributed")
    assert relay.platforms.requests_for("meta", pixel_id) == []

    # The refused conversion took the click's claim first; the allowed network's counts.
    answer = await relay.postback(key=allowed["postback_key"], click_id=click_id, txid="A-1")
    assert answer.status_code == 200, answer.text
    assert answer.json()["is_duplicate"] is None  # decided by the workflow
    counted = await relay.result(answer.json()["conversion_id"])
    assert counted.skipped == "" and [f.delivered for f in counted.fires] == [True]
    conversion = await relay.conversion(answer.json()["conversion_id"])
    assert (conversion["is_duplicate"], conversion["refusal"]) == (False, "")
    assert len(relay.platforms.requests_for("meta", pixel_id)) == 1

    # And a second sale of the allowed network on that click is its duplicate, as before.
    again = await relay.postback(key=allowed["postback_key"], click_id=click_id, txid="A-2")
    assert (await relay.result(again.json()["conversion_id"])).skipped.startswith("duplicate")


async def test_allowed_networks_are_set_checked_and_cleared_through_the_api(
    relay: Relay,
) -> None:
    network = await relay.network()
    unknown = await relay.http.post(
        "/api/campaigns",
        json={"name": "c", "offer_url": "https://a.example/{click_id}", "allowed_networks": ["x"]},
        headers=relay.admin,
    )
    assert unknown.status_code == 422, unknown.text
    assert unknown.json()["error"]["param"] == "allowed_networks"

    campaign = await relay.campaign()
    path = f"/api/campaigns/{campaign['id']}"
    both = {"allowed_networks": [network["id"], network["id"]]}
    patched = await relay.http.patch(path, json=both, headers=relay.admin)
    assert patched.status_code == 200, patched.text
    assert patched.json()["allowed_networks"] == [network["id"]]
    untouched = await relay.http.patch(path, json={"name": "renamed"}, headers=relay.admin)
    assert untouched.json()["allowed_networks"] == [network["id"]]
    cleared = await relay.http.patch(path, json={"allowed_networks": []}, headers=relay.admin)
    assert cleared.json()["allowed_networks"] == []


def _campaign(campaign_id: str, *network_ids: str) -> Campaign:
    now = utc_now()
    return Campaign(
        id=campaign_id,
        name=campaign_id,
        offer_url="https://a.example/{click_id}",
        currency="USD",
        allowed_networks=list(network_ids),
        created_at=now,
        updated_at=now,
    )


def test_only_a_network_some_campaign_leaves_out_needs_the_clicks_campaign() -> None:
    """The accept path reads the click only for such a network (relay/ingest/accept.py)."""
    assert not ConfigSnapshot().restricts("net_a")
    campaigns = [_campaign("c0"), _campaign("c1", "net_a", "net_b"), _campaign("c2", "net_a")]
    snapshot = ConfigSnapshot(welcome_everywhere=welcome_everywhere(campaigns))
    assert not snapshot.restricts("net_a") and snapshot.restricts("net_b")
    assert welcome_everywhere(campaigns[:1]) is None
    assert _campaign("c1").allows("net_b")
    assert not _campaign("c2", "net_a").allows("net_b")
