"""What a logged request keeps once the visitor's data is erased, for every body Relay sends."""

import json
from dataclasses import replace

import pytest

from relay.destinations.facts import EventFacts
from relay.destinations.meta.payload import build_meta_body
from relay.destinations.normalize import meta_hash
from relay.destinations.postback.template import expand, macro_values, redact_url
from relay.destinations.tiktok.payload import build_tiktok_body
from relay.domain.models import Click, Conversion, TikTokApi
from relay.domain.personal_data import ERASED, erase_macros, erase_request_body
from relay.store.rows import utc_now
from tests.support import FULL, USER

# Everything in FULL that is about the visitor, raw or hashed as the builders send it.
PERSONAL = [
    FULL.client_ip,
    FULL.user_agent,
    FULL.fbclid,
    FULL.fbp,
    FULL.ttclid,
    FULL.ttp,
    FULL.event_source_url,
    FULL.referrer_url,
    USER.email,
    USER.phone_meta,
    USER.phone_tiktok,
    USER.external_id,
    meta_hash("ct", "Menlo Park", default_region="US"),
    meta_hash("zp", "98121-4892", default_region="US"),
]


@pytest.mark.parametrize(
    ("build", "facts"),
    [
        (build_meta_body, replace(FULL, test_event_code="TEST1")),
        (build_tiktok_body, replace(FULL, test_event_code="TEST1")),
        (build_tiktok_body, replace(FULL, tiktok_api=TikTokApi.PIXEL_TRACK)),
    ],
    ids=["meta", "tiktok-events-2.0", "tiktok-pixel-track"],
)
def test_the_erased_request_keeps_the_event_and_drops_the_visitor(
    build: object, facts: EventFacts
) -> None:
    body, _ = build(facts)  # type: ignore[operator]
    sent = json.dumps(body, separators=(",", ":"), sort_keys=True)
    assert f'"{FULL.client_ip}"' in sent and f'"{FULL.user_agent}"' in sent
    erased = erase_request_body(sent)
    for value in PERSONAL:
        assert value and value not in erased, value
    kept = json.loads(erased)
    event = kept["data"][0] if "data" in kept else kept
    assert event["event_id"] == FULL.event_id and ERASED in erased
    assert "TEST1" in erased or facts.test_event_code is None
    assert "12.5" in erased and "usd" in erased.lower()  # value and currency stay


def test_blank_and_unreadable_bodies() -> None:
    assert erase_request_body("") == ""
    assert erase_request_body("not json {") == ""  # cannot be told apart: erased whole
    # A value that was not sent stays empty: nothing is reported as erased.
    assert json.loads(erase_request_body('{"user":{"ip":"","email":null}}')) == {
        "user": {"ip": "", "email": None}
    }


def test_an_outbound_postback_keeps_its_url_without_the_external_id() -> None:
    click = Click(
        click_id="clk_1",
        campaign_id="c",
        clicked_at=utc_now(),
        external_id="user-42@example.com",
        sub1="placement-7",
    )
    conversion = Conversion(
        conversion_id="conv_1",
        click_id="clk_1",
        network_id="n",
        event_type="sale",
        currency="USD",
        received_at=utc_now(),
    )
    values = macro_values(conversion, click)
    template = "https://ts.example/cb?cid={click_id}&uid={external_id}&s1={sub1}&key=S"
    logged = redact_url(expand(template, erase_macros(values)))
    assert logged == (
        "https://ts.example/cb?cid=clk_1&uid=%5Berased%5D&s1=placement-7&key=[REDACTED]"
    )
    body = erase_request_body(json.dumps(values))
    assert "user-42" not in body and json.loads(body)["sub1"] == "placement-7"
    # No external ID sent: nothing to erase, the URL reads as sent.
    values["external_id"] = ""
    assert expand(template, erase_macros(values)) == expand(template, values)
