"""The conversion's decisions as pure functions (activities/prepare.py `decide`, `plan`;
activities/campaign_networks.py `bind_to_campaign` up to its one store read, `with_refusal`):
attribution, duplicate status, currency and the plan, branch by branch, from real models.

`ConversionMemory` is what `TrafficStore.memory_for` finds in ClickHouse (tests/
test_prepare_memory.py checks that it finds it); the holders are what the inbox and, with
several API replicas, Temporal's claims name (product.md section 5)."""

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import cast

import pytest

from activities.campaign_networks import NOT_ALLOWED, bind_to_campaign, with_refusal
from activities.prepare import EARLIER_RUN, decide, plan
from relay.core.ids import conversion_id
from relay.domain.models import (
    Campaign,
    Click,
    Conversion,
    CustomConversion,
    OutboundPostback,
    Pixel,
    Platform,
)
from relay.domain.workflow_io import ConversionInput, PixelTarget, PostbackTarget, Prepared
from relay.store.config_cache import ConfigSnapshot
from relay.store.pool import ClickHouse
from relay.store.traffic import ConversionMemory, TrafficStore

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
CLICK_ID = "clk_decide"
NETWORK = "net_a"
WINDOW_DAYS = 30
DEFAULT_CURRENCY = "USD"
EARLIER = "conv_earlier_original"  # another conversion, counted before
NOTHING = ConversionMemory(recorded=None, original=None, same_txid=None)
REMEMBERS_ORIGINAL = ConversionMemory(recorded=None, original=EARLIER, same_txid=None)
REMEMBERS_TXID = ConversionMemory(recorded=None, original=None, same_txid=EARLIER)

DUPLICATE = "duplicate of an earlier conversion for this click and event"
UNATTRIBUTED = "unattributed: no click with this ID within the attribution window"


def campaign(
    currency: str = "EUR",
    repeatable: tuple[str, ...] = ("deposit",),
    allowed: tuple[str, ...] = (),
    campaign_id: str = "cmp_a",
) -> Campaign:
    return Campaign(
        id=campaign_id,
        name="Decide",
        offer_url="https://offer.example/?cid={click_id}",
        currency=currency,
        repeatable_events=list(repeatable),
        attribution_window_days=WINDOW_DAYS,
        allowed_networks=list(allowed),
        created_at=NOW,
        updated_at=NOW,
    )


def click(age: timedelta = timedelta(days=1), external_id: str = "") -> Click:
    return Click(
        click_id=CLICK_ID, campaign_id="cmp_a", clicked_at=NOW - age, external_id=external_id
    )


def pending(
    event: str = "sale", txid: str = "", currency: str = "", network: str = NETWORK, **more: str
) -> Conversion:
    """A conversion as the postback endpoint accepts it: ID from click, event and txid."""
    return Conversion(
        conversion_id=conversion_id(CLICK_ID, event, txid),
        click_id=CLICK_ID,
        network_id=network,
        event_type=event,
        payout=Decimal("12.50"),
        currency=currency,
        txid=txid,
        received_at=NOW,
        **more,
    )


ME = "me"  # stands for the conversion's own ID in the table below


@dataclass(frozen=True)
class Case:
    event: str = "sale"
    txid: str = ""
    claim_holder: str = ME  # the inbox names the first accepted for (click, event)
    txid_holder: str = ""  # only with shared dedup (several API replicas)
    click_age: timedelta | None = timedelta(days=1)  # None: no such click
    has_campaign: bool = True
    memory: ConversionMemory = NOTHING


def holder(name: str, me: str) -> str:
    return me if name == ME else name


DECISIONS = [
    # (case, attributed, is_duplicate)
    pytest.param(Case(), True, False, id="first-for-click-and-event-is-original"),
    pytest.param(Case(claim_holder=""), True, False, id="no-claim-taken-and-no-memory"),
    pytest.param(Case(txid="T-2", claim_holder=EARLIER), True, True, id="second-by-inbox-claim"),
    pytest.param(
        Case(txid="T-2", memory=REMEMBERS_ORIGINAL),
        True,
        True,
        id="second-past-inbox-memory-by-clickhouse-original",
    ),
    pytest.param(
        Case(txid="T-1", memory=REMEMBERS_TXID),
        True,
        True,
        id="txid-resend-by-clickhouse-same-txid",
    ),
    pytest.param(
        Case(txid="T-1", txid_holder=EARLIER), True, True, id="txid-resend-by-temporal-txid-claim"
    ),
    pytest.param(Case(txid="T-1", txid_holder=ME), True, False, id="own-txid-claim-is-no-resend"),
    pytest.param(
        Case(txid="T-1", click_age=None, claim_holder="", memory=REMEMBERS_TXID),
        False,
        True,
        id="txid-resend-is-duplicate-even-unattributed",
    ),
    pytest.param(
        Case(event="deposit", txid="T-2", claim_holder=EARLIER, memory=REMEMBERS_ORIGINAL),
        True,
        False,
        id="repeatable-event-repeats",
    ),
    pytest.param(
        Case(event="deposit", txid="T-1", memory=REMEMBERS_TXID),
        True,
        True,
        id="repeatable-event-txid-resend-is-still-duplicate",
    ),
    pytest.param(
        Case(event="refund", claim_holder="", memory=REMEMBERS_ORIGINAL),
        True,
        False,
        id="reversal-takes-no-part-in-click-dedup",
    ),
    pytest.param(
        Case(event="refund", txid="T-1", claim_holder="", memory=REMEMBERS_TXID),
        True,
        True,
        id="reversal-txid-resend-is-duplicate",
    ),
    pytest.param(
        Case(click_age=None, claim_holder=EARLIER, memory=REMEMBERS_ORIGINAL),
        False,
        False,
        id="unknown-click-is-unattributed-never-a-click-duplicate",
    ),
    pytest.param(
        Case(click_age=timedelta(days=WINDOW_DAYS, seconds=1), claim_holder=EARLIER),
        False,
        False,
        id="click-outside-attribution-window",
    ),
    pytest.param(
        Case(click_age=timedelta(days=WINDOW_DAYS)), True, False, id="window-end-is-inclusive"
    ),
    pytest.param(
        Case(has_campaign=False, claim_holder=EARLIER, memory=REMEMBERS_ORIGINAL),
        False,
        False,
        id="click-of-unknown-or-deleted-campaign",
    ),
]


@pytest.mark.parametrize(("case", "attributed", "duplicate"), DECISIONS)
def test_decide_attribution_and_duplicate(case: Case, attributed: bool, duplicate: bool) -> None:
    conversion = pending(case.event, case.txid)
    me = conversion.conversion_id
    input = ConversionInput(
        conversion=conversion,
        claim_holder=holder(case.claim_holder, me),
        txid_holder=holder(case.txid_holder, me),
    )
    found = None if case.click_age is None else click(case.click_age)
    decided = decide(
        input, found, campaign() if case.has_campaign else None, case.memory, DEFAULT_CURRENCY
    )
    assert (decided.attributed, decided.is_duplicate) == (attributed, duplicate)
    # Identity and what the postback said are kept; the campaign is the click's.
    assert decided.conversion_id == me and decided.payout == Decimal("12.50")
    assert decided.campaign_id == ("cmp_a" if found else "")
    assert decided.refusal == ""


@pytest.mark.parametrize(
    ("sent", "campaign_currency", "has_campaign", "expected"),
    [
        pytest.param("GBP", "EUR", True, "GBP", id="postback-currency-wins"),
        pytest.param("", "EUR", True, "EUR", id="else-the-campaign-currency"),
        pytest.param("", "", True, DEFAULT_CURRENCY, id="campaign-without-currency-default"),
        pytest.param("", "EUR", False, DEFAULT_CURRENCY, id="no-campaign-default-currency"),
    ],
)
def test_decide_currency(
    sent: str, campaign_currency: str, has_campaign: bool, expected: str
) -> None:
    input = ConversionInput(conversion=pending(currency=sent))
    bound = campaign(currency=campaign_currency) if has_campaign else None
    decided = decide(input, click(), bound, NOTHING, DEFAULT_CURRENCY)
    assert decided.currency == expected


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("sent_hash", "click_external_id", "has_click", "expected"),
    [
        pytest.param(sha256("from-postback"), "ext-7", True, sha256("from-postback"), id="sent"),
        pytest.param("", " ext-7 ", True, sha256("ext-7"), id="else-the-clicks-trimmed-hashed"),
        pytest.param("", "", True, "", id="click-without-one"),
        pytest.param("", "ext-7", False, "", id="no-click"),
    ],
)
def test_decide_external_id(
    sent_hash: str, click_external_id: str, has_click: bool, expected: str
) -> None:
    input = ConversionInput(conversion=pending(external_id_sha256=sent_hash))
    found = click(external_id=click_external_id) if has_click else None
    decided = decide(input, found, campaign(), NOTHING, DEFAULT_CURRENCY)
    assert decided.external_id_sha256 == expected


# plan ---------------------------------------------------------------------------------


def pixel(pixel_id: str, platform: Platform, primary: bool, campaign_id: str = "cmp_a") -> Pixel:
    return Pixel(
        id=pixel_id,
        campaign_id=campaign_id,
        platform=platform,
        platform_pixel_id=f"pp_{pixel_id}",
        name=f"Pixel {pixel_id}",
        primary=primary,
        created_at=NOW,
        updated_at=NOW,
    )


def postback(postback_id: str, events: list[str], campaign_id: str = "cmp_a") -> OutboundPostback:
    return OutboundPostback(
        id=postback_id,
        campaign_id=campaign_id,
        url_template="https://source.example/pb?cid={click_id}",
        method="POST" if postback_id == "pb_post" else "GET",
        events=events,
        created_at=NOW,
        updated_at=NOW,
    )


CONFIG = ConfigSnapshot(
    campaigns={"cmp_a": campaign()},
    pixels={
        p.id: p
        for p in (
            pixel("px_meta", Platform.META, primary=True),
            pixel("px_tiktok", Platform.TIKTOK, primary=True),
            pixel("px_spare", Platform.META, primary=False),
            pixel("px_other_campaign", Platform.META, primary=True, campaign_id="cmp_b"),
        )
    },
    customs={
        "cmp_a": [
            CustomConversion(
                id="cc_cart",
                campaign_id="cmp_a",
                inbound_event="AddToCart",
                pixel_id="px_spare",
                event_name="AddToCart",
                created_at=NOW,
                updated_at=NOW,
            )
        ]
    },
    postbacks={
        p.id: p
        for p in (
            postback("pb_every", []),
            postback("pb_post", ["sale"]),
            postback("pb_lead", ["lead"]),
            postback("pb_refund", ["refund"]),
            postback("pb_other_campaign", [], campaign_id="cmp_b"),
        )
    },
)


def decided(event: str = "sale", attributed: bool = True, duplicate: bool = False) -> Conversion:
    return pending(event, currency="EUR").model_copy(
        update={"campaign_id": "cmp_a", "attributed": attributed, "is_duplicate": duplicate}
    )


def targets(prepared: Prepared) -> tuple[list[tuple[str, str]], list[str]]:
    return (
        sorted((p.pixel_id, p.event_name) for p in prepared.pixels),
        sorted(p.postback_id for p in prepared.postbacks),
    )


@pytest.mark.parametrize(
    ("conversion", "skipped", "pixels", "postbacks"),
    [
        pytest.param(decided(duplicate=True), DUPLICATE, [], [], id="duplicate-fires-nothing"),
        pytest.param(
            decided(attributed=False), UNATTRIBUTED, [], [], id="unattributed-fires-nothing"
        ),
        pytest.param(
            decided(attributed=False, duplicate=True), DUPLICATE, [], [], id="duplicate-first"
        ),
        pytest.param(
            decided("sale"),
            "",
            [("px_meta", "Purchase"), ("px_tiktok", "Purchase")],
            ["pb_every", "pb_post"],
            id="sale-primary-pixels-and-its-postbacks",
        ),
        pytest.param(
            decided("AddToCart"),
            "",
            [("px_spare", "AddToCart")],
            ["pb_every"],
            id="custom-conversion-routes-the-event",
        ),
        pytest.param(
            decided("refund"), "", [], ["pb_refund"], id="reversal-no-pixel-listed-postbacks-only"
        ),
    ],
)
def test_plan(
    conversion: Conversion, skipped: str, pixels: list[tuple[str, str]], postbacks: list[str]
) -> None:
    prepared = plan(conversion, CONFIG, retry_window_s=7200)
    assert prepared.skipped == skipped
    assert targets(prepared) == (pixels, postbacks)
    assert prepared.conversion == conversion and prepared.retry_window_s == 7200
    assert not prepared.recorded_by_earlier_run


def test_plan_names_each_target_for_the_send() -> None:
    prepared = plan(decided("sale"), CONFIG, retry_window_s=60)
    assert (
        PixelTarget(
            pixel_id="px_meta",
            platform=Platform.META,
            pixel_name="Pixel px_meta",
            event_name="Purchase",
        )
        in prepared.pixels
    )
    assert PostbackTarget(postback_id="pb_post", method="POST") in prepared.postbacks


# bind_to_campaign and with_refusal ------------------------------------------------------

# The branches below decide without reading anything: a store that cannot be read proves it
# (the one branch that reads is in tests/test_prepare_memory.py, on a real store).
UNREADABLE = TrafficStore(cast(ClickHouse, None))
OTHER_NETWORK = "net_b"


@pytest.mark.parametrize(
    ("bound", "network", "case", "attributed", "duplicate", "refusal"),
    [
        pytest.param(
            None, OTHER_NETWORK, Case(), False, False, "", id="no-campaign-unattributed-not-refused"
        ),
        pytest.param(
            campaign(), OTHER_NETWORK, Case(), True, False, "", id="any-network-by-default"
        ),
        pytest.param(
            campaign(allowed=(NETWORK,)),
            OTHER_NETWORK,
            Case(),
            False,
            False,
            NOT_ALLOWED,
            id="not-allowed-network-refused",
        ),
        pytest.param(
            campaign(allowed=(NETWORK,)),
            OTHER_NETWORK,
            Case(txid="T-1", memory=REMEMBERS_TXID),
            False,
            False,
            NOT_ALLOWED,
            id="refused-even-when-decided-duplicate",
        ),
        pytest.param(
            campaign(allowed=(NETWORK,)), NETWORK, Case(), True, False, "", id="allowed-original"
        ),
        pytest.param(
            campaign(allowed=(NETWORK,)),
            NETWORK,
            Case(txid="T-2", claim_holder=EARLIER, memory=REMEMBERS_ORIGINAL),
            True,
            True,
            "",
            id="allowed-duplicate-of-a-counted-original",
        ),
        pytest.param(
            campaign(allowed=(NETWORK,)),
            NETWORK,
            Case(txid="T-1", txid_holder=EARLIER),
            True,
            True,
            "",
            id="allowed-txid-resend-stays-duplicate",
        ),
    ],
)
async def test_bind_to_campaign_without_reading(
    bound: Campaign | None,
    network: str,
    case: Case,
    attributed: bool,
    duplicate: bool,
    refusal: str,
) -> None:
    conversion = pending(case.event, case.txid, network=network)
    me = conversion.conversion_id
    input = ConversionInput(
        conversion=conversion,
        claim_holder=holder(case.claim_holder, me),
        txid_holder=holder(case.txid_holder, me),
    )
    found = click()
    decision = decide(input, found, bound, case.memory, DEFAULT_CURRENCY)
    bound_conversion = await bind_to_campaign(UNREADABLE, input, decision, bound, case.memory)
    assert (bound_conversion.attributed, bound_conversion.is_duplicate) == (attributed, duplicate)
    assert bound_conversion.refusal == refusal


@pytest.mark.parametrize(
    ("refusal", "earlier_run", "skipped"),
    [
        pytest.param(NOT_ALLOWED, False, NOT_ALLOWED, id="refused-says-why"),
        pytest.param("", False, UNATTRIBUTED, id="not-refused-keeps-plan-reason"),
        pytest.param(NOT_ALLOWED, True, EARLIER_RUN, id="earlier-run-reason-kept"),
    ],
)
def test_with_refusal(refusal: str, earlier_run: bool, skipped: str) -> None:
    conversion = decided(attributed=False).model_copy(update={"refusal": refusal})
    if earlier_run:
        prepared = Prepared(
            conversion=conversion, recorded_by_earlier_run=True, skipped=EARLIER_RUN
        )
    else:
        prepared = plan(conversion, CONFIG, retry_window_s=60)
    assert with_refusal(prepared).skipped == skipped
