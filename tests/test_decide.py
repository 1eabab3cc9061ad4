"""The first step's pure functions around the rules (activities/prepare.py `decide`, `plan`;
activities/campaign_networks.py `bind_to_campaign` up to its one store read): that `decide`
records what relay/conversions/dedup.py judges, currency, external ID and the plan, branch
by branch, from real models. The rules themselves, every branch: tests/test_dedup.py.

`ConversionMemory` is what `TrafficStore.memory_for` finds in ClickHouse (tests/
test_prepare_memory.py checks that it finds it); the holders are what the inbox and, with
several API replicas, Temporal's claims name (product.md section 5)."""

import hashlib
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import cast

import pytest

from activities.campaign_networks import bind_to_campaign
from activities.prepare import decide, plan
from relay.conversions import dedup
from relay.conversions.dedup import DUPLICATE, NOT_ALLOWED, UNATTRIBUTED, Kind
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
from relay.store.traffic import TrafficStore
from tests.test_dedup import (
    EARLIER,
    JUDGEMENTS,
    NETWORK,
    NOTHING,
    REMEMBERS_ORIGINAL,
    REMEMBERS_TXID,
    Case,
)

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
CLICK_ID = "clk_decide"
WINDOW_DAYS = 30
DEFAULT_CURRENCY = "USD"


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


@pytest.mark.parametrize(("case", "kind", "attributed", "of"), JUDGEMENTS)
def test_decide_records_the_judgement(case: Case, kind: Kind, attributed: bool, of: str) -> None:
    """Every case of tests/test_dedup.py's table, through `decide`: the conversion as
    recorded carries the decision; identity and what the postback said are kept, and the
    campaign is the click's."""
    input = case.input()
    found, bound = case.click(), case.campaign()
    decided = decide(input, found, bound, case.memory, DEFAULT_CURRENCY)
    decision = dedup.judge(input, found, bound, case.memory)
    assert decision.kind is kind
    assert (decided.attributed, decided.is_duplicate) == (attributed, decision.is_duplicate)
    assert decided.refusal == (NOT_ALLOWED if kind is Kind.REFUSED else "")
    pending = input.conversion
    assert decided.conversion_id == pending.conversion_id and decided.payout == Decimal("12.50")
    assert decided.network_id == pending.network_id and decided.txid == pending.txid
    assert decided.campaign_id == ("cmp_a" if found else "")


def test_decide_keeps_a_refusal_it_did_not_make() -> None:
    """Only a refusal decided now is written over what the input carried."""
    input = ConversionInput(conversion=pending(refusal="carried"))
    decided = decide(input, click(), campaign(), NOTHING, DEFAULT_CURRENCY)
    assert decided.refusal == "carried"
    refused = decide(input, click(), campaign(allowed=("net_z",)), NOTHING, DEFAULT_CURRENCY)
    assert refused.refusal == NOT_ALLOWED


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
            decided(attributed=False).model_copy(update={"refusal": NOT_ALLOWED}),
            NOT_ALLOWED,
            [],
            [],
            id="refused-says-why",
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


# bind_to_campaign -------------------------------------------------------------------------

# The branches below decide without reading anything: a store that cannot be read proves it
# (the one branch that reads is in tests/test_prepare_memory.py, on a real store).
UNREADABLE = TrafficStore(cast(ClickHouse, None))
OTHER_NETWORK = "net_b"


@pytest.mark.parametrize(
    ("case", "attributed", "duplicate", "refusal"),
    [
        pytest.param(
            Case(has_campaign=False, network=OTHER_NETWORK),
            False,
            False,
            "",
            id="no-campaign-unattributed-not-refused",
        ),
        pytest.param(Case(network=OTHER_NETWORK), True, False, "", id="any-network-by-default"),
        pytest.param(
            Case(network=OTHER_NETWORK, allowed=(NETWORK,)),
            False,
            False,
            NOT_ALLOWED,
            id="not-allowed-network-refused",
        ),
        pytest.param(
            Case(network=OTHER_NETWORK, allowed=(NETWORK,), txid="T-1", memory=REMEMBERS_TXID),
            False,
            False,
            NOT_ALLOWED,
            id="refused-even-when-decided-duplicate",
        ),
        pytest.param(Case(allowed=(NETWORK,)), True, False, "", id="allowed-original"),
        pytest.param(
            Case(allowed=(NETWORK,), txid="T-2", claim_holder=EARLIER, memory=REMEMBERS_ORIGINAL),
            True,
            True,
            "",
            id="allowed-duplicate-of-a-counted-original",
        ),
        pytest.param(
            Case(allowed=(NETWORK,), txid="T-1", txid_holder=EARLIER),
            True,
            True,
            "",
            id="allowed-txid-resend-stays-duplicate",
        ),
    ],
)
async def test_bind_to_campaign_without_reading(
    case: Case, attributed: bool, duplicate: bool, refusal: str
) -> None:
    input, bound = case.input(), case.campaign()
    decision = decide(input, case.click(), bound, case.memory, DEFAULT_CURRENCY)
    bound_conversion = await bind_to_campaign(UNREADABLE, input, decision, bound, case.memory)
    assert (bound_conversion.attributed, bound_conversion.is_duplicate) == (attributed, duplicate)
    assert bound_conversion.refusal == refusal
