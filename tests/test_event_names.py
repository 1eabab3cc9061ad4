"""Event-type aliases, reversals and the default name table of product.md section 7."""

import pytest

from relay.destinations.meta.events import META_STANDARD_EVENTS, meta_event_name
from relay.destinations.tiktok.events import (
    TIKTOK_LEGACY_EVENTS,
    TIKTOK_STANDARD_EVENTS_2_0,
    tiktok_event_name,
)
from relay.domain.events import is_reversal, normalize_event_type
from relay.domain.models import TikTokApi

NEW, LEGACY = TikTokApi.EVENTS_2_0, TikTokApi.PIXEL_TRACK


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("sale", "sale"),
        (" SALE ", "sale"),
        ("Conversion", "sale"),
        ("purchase", "sale"),
        ("APPROVED", "sale"),
        ("confirmed", "sale"),
        ("Lead", "lead"),
        ("registration", "registration"),
        ("REG", "registration"),
        ("SignUp", "registration"),
        ("install", "install"),
        ("Deposit", "deposit"),
        ("dep", "deposit"),
        ("Canceled", "cancelled"),
        (" REJECTED ", "rejected"),
        ("Chargeback", "chargeback"),
        (" AddToCart ", "AddToCart"),
        ("addtocart", "addtocart"),  # custom names keep their case
        ("FTD", "FTD"),
    ],
)
def test_normalize_event_type(raw: str, expected: str) -> None:
    assert normalize_event_type(raw) == expected


@pytest.mark.parametrize(
    "raw", ["rejected", "Declined", "TRASH", "cancelled", "canceled", " refund ", "Chargeback"]
)
def test_reversals(raw: str) -> None:
    assert is_reversal(raw)


@pytest.mark.parametrize("raw", ["sale", "lead", "reject", "refunded", ""])
def test_not_reversals(raw: str) -> None:
    assert not is_reversal(raw)


# event_type, Meta, TikTok /pixel/track/, TikTok Events API 2.0 (product.md section 7)
TABLE = [
    ("sale", "Purchase", "CompletePayment", "Purchase"),
    ("lead", "Lead", "SubmitForm", "Lead"),
    ("registration", "CompleteRegistration", "CompleteRegistration", "CompleteRegistration"),
    ("install", "Install", "Download", "Download"),
    ("deposit", "Purchase", "CompletePayment", "Purchase"),
    ("approved", "Purchase", "CompletePayment", "Purchase"),
    ("AddToCart", "AddToCart", "AddToCart", "AddToCart"),
    ("ViewContent", "ViewContent", "ViewContent", "ViewContent"),
    ("Subscribe", "Subscribe", "Subscribe", "Subscribe"),
    ("PlaceAnOrder", "Custom", "PlaceAnOrder", "CustomEvent"),
    ("SubmitForm", "Custom", "SubmitForm", "CustomEvent"),
    ("StartTrial", "StartTrial", "CustomEvent", "StartTrial"),
    ("Donate", "Donate", "CustomEvent", "CustomEvent"),
    ("addtocart", "Custom", "CustomEvent", "CustomEvent"),  # names are case-sensitive
    ("FTD", "Custom", "CustomEvent", "CustomEvent"),
]


@pytest.mark.parametrize(("event_type", "meta", "legacy", "new"), TABLE)
def test_default_names(event_type: str, meta: str, legacy: str, new: str) -> None:
    assert meta_event_name(event_type) == meta
    assert tiktok_event_name(event_type, LEGACY) == legacy
    assert tiktok_event_name(event_type, NEW) == new


def test_standard_lists() -> None:
    assert {"Purchase", "Lead", "CompleteRegistration", "InitiateCheckout"} <= META_STANDARD_EVENTS
    assert {"CompletePayment", "SubmitForm", "PlaceAnOrder"}.isdisjoint(TIKTOK_STANDARD_EVENTS_2_0)
    assert {"Purchase", "Lead"}.isdisjoint(TIKTOK_LEGACY_EVENTS)
    assert len(TIKTOK_STANDARD_EVENTS_2_0) == 18
    assert len(TIKTOK_LEGACY_EVENTS) == 14
