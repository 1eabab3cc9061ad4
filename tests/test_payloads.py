"""Meta and TikTok payload builders: field placement, omissions and no raw PII."""

import json
from dataclasses import replace
from decimal import Decimal

import pytest

from relay.destinations.facts import EventFacts, UserHashes
from relay.destinations.meta.payload import build_meta_body, build_meta_event, meta_events_path
from relay.destinations.normalize import sha256_hex
from relay.destinations.tiktok.payload import build_tiktok_body, tiktok_path
from relay.domain.models import TikTokApi
from tests.support import EMAIL, FBCLID, FULL, USER

MINIMAL = EventFacts(
    pixel_id="42", event_name="Lead", event_id="conv_x", event_time=1764403200, currency="USD"
)


def _part(event: dict[str, object], key: str) -> dict[str, object]:
    part = event[key]
    assert isinstance(part, dict)
    return part


def _no_raw_pii(body: dict[str, object]) -> None:
    text = json.dumps(body).lower()
    for raw in (EMAIL.lower(), "joe.buyer", "6505551212", "650) 555", "user-123", "menlo"):
        assert raw not in text


def test_meta_event_fields() -> None:
    event, dropped = build_meta_event(FULL)
    assert dropped == []
    assert event == {
        "event_name": "Purchase",
        "event_time": 1764403200,
        "event_id": FULL.event_id,
        "action_source": "website",
        "event_source_url": FULL.event_source_url,
        "referrer_url": FULL.referrer_url,
        "user_data": {
            "em": [USER.email],
            "ph": [sha256_hex("16505551212")],
            "external_id": [sha256_hex("User-123")],
            "country": [sha256_hex("us")],
            "ct": [sha256_hex("menlopark")],
            "st": [sha256_hex("ca")],
            "zp": [sha256_hex("98121")],
            "client_ip_address": "203.0.113.9",
            "client_user_agent": FULL.user_agent,
            "fbc": f"fb.1.1764403100123.{FBCLID}",
            "fbp": FULL.fbp,
        },
        "custom_data": {
            "value": 12.5,
            "currency": "USD",
            "content_type": "product",
            "order_id": FULL.order_id,
        },
    }
    _no_raw_pii(event)


def test_meta_body_has_test_code_and_no_token() -> None:
    body, _ = build_meta_body(replace(FULL, test_event_code="TEST123"))
    assert body["test_event_code"] == "TEST123"
    assert isinstance(body["data"], list) and len(body["data"]) == 1
    assert "access_token" not in json.dumps(body)
    assert "test_event_code" not in build_meta_body(FULL)[0]


def test_meta_fbc_cookie_passes_through_byte_for_byte() -> None:
    cookie = "fb.1.1554763741205.AbCdEf-Gh_Ij.AQEAAQMB"  # 5 segments: Parameter Builder
    event, _ = build_meta_event(replace(FULL, fbc=cookie))
    assert _part(event, "user_data")["fbc"] == cookie


def test_meta_fbclid_without_click_time_is_reported() -> None:
    event, dropped = build_meta_event(replace(FULL, click_time_ms=None))
    assert "fbc" not in _part(event, "user_data")
    assert dropped == ["fbc: click time unknown"]


def test_meta_minimal_event_omits_absent_fields() -> None:
    event, dropped = build_meta_event(MINIMAL)
    assert dropped == []
    assert event == {
        "event_name": "Lead",
        "event_time": 1764403200,
        "event_id": "conv_x",
        "action_source": "website",
        "custom_data": {"currency": "USD", "content_type": "product"},
    }
    assert "null" not in json.dumps(event) and '""' not in json.dumps(event)


def test_meta_drops_unusable_location_and_carries_user_drops() -> None:
    user = UserHashes(dropped=("phone: does not parse",))
    facts = replace(MINIMAL, country="United States", city="  ", zip_code="-", user=user)
    event, dropped = build_meta_event(facts)
    assert "user_data" not in event
    assert dropped == [
        "phone: does not parse",
        "country: not an ISO 3166-1 alpha-2 code",
        "zp: empty after normalization",
    ]


@pytest.mark.parametrize(
    ("value", "expected"), [(Decimal("20"), 20), (Decimal("20.00"), 20), (Decimal("0.1"), 0.1)]
)
def test_value_is_a_json_number(value: Decimal, expected: float) -> None:
    event, _ = build_meta_event(replace(MINIMAL, value=value))
    sent = _part(event, "custom_data")["value"]
    assert sent == expected and type(sent) is type(expected)


def test_non_finite_value_is_dropped() -> None:
    event, dropped = build_meta_event(replace(MINIMAL, value=Decimal("NaN")))
    assert "value" not in _part(event, "custom_data")
    assert dropped == ["value: not a finite number"]


def test_meta_events_path() -> None:
    assert meta_events_path("v24.0", "1234567890") == "/v24.0/1234567890/events"
    assert meta_events_path("24.0", "12/../x") == "/v24.0/12%2F..%2Fx/events"


def test_tiktok_events_2_0_body() -> None:
    body, dropped = build_tiktok_body(replace(FULL, test_event_code="TEST12345"))
    assert dropped == []
    assert body == {
        "event_source": "web",
        "event_source_id": "1234567890",
        "test_event_code": "TEST12345",
        "data": [
            {
                "event": "Purchase",
                "event_time": 1764403200,
                "event_id": FULL.event_id,
                "user": {
                    "ttclid": "E.C.P.abcDEF",
                    "ttp": "ttp-cookie-value",
                    "email": USER.email,
                    "phone": sha256_hex("+16505551212"),
                    "external_id": sha256_hex("User-123"),
                    "ip": "203.0.113.9",
                    "user_agent": FULL.user_agent,
                },
                "page": {"url": FULL.event_source_url, "referrer": FULL.referrer_url},
                "properties": {
                    "value": 12.5,
                    "currency": "USD",
                    "content_type": "product",
                    "order_id": FULL.order_id,
                },
            }
        ],
    }
    _no_raw_pii(body)


def test_tiktok_pixel_track_body() -> None:
    facts = replace(FULL, tiktok_api=TikTokApi.PIXEL_TRACK, test_event_code="TEST12345")
    body, _ = build_tiktok_body(facts)
    assert body == {
        "pixel_code": "1234567890",
        "event": "Purchase",
        "event_id": FULL.event_id,
        "timestamp": "2025-11-29T08:00:00Z",
        "context": {
            "ad": {"callback": "E.C.P.abcDEF"},
            "page": {"url": FULL.event_source_url, "referrer": FULL.referrer_url},
            "user": {
                "external_id": sha256_hex("User-123"),
                "phone_number": sha256_hex("+16505551212"),
                "email": USER.email,
                "ttp": "ttp-cookie-value",
            },
            "user_agent": FULL.user_agent,
            "ip": "203.0.113.9",
        },
        "properties": {
            "value": 12.5,
            "currency": "USD",
            "content_type": "product",
            "order_id": FULL.order_id,
        },
        "test_event_code": "TEST12345",
    }
    _no_raw_pii(body)


@pytest.mark.parametrize("api", list(TikTokApi))
def test_tiktok_minimal_bodies_omit_absent_fields(api: TikTokApi) -> None:
    body, _ = build_tiktok_body(replace(MINIMAL, tiktok_api=api))
    text = json.dumps(body)
    assert "null" not in text and '""' not in text and "test_event_code" not in text
    for absent in ("user", "context", "page", "ttclid", "email", "ip", "order_id", "value"):
        assert f'"{absent}"' not in text


def test_tiktok_paths() -> None:
    assert tiktok_path(TikTokApi.EVENTS_2_0) == "/open_api/v1.3/event/track/"
    assert tiktok_path(TikTokApi.PIXEL_TRACK) == "/open_api/v1.3/pixel/track/"
