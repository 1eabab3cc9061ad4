"""The destination interface (relay/destinations/base.py), checked for every registered
destination, and the one send path (activities/sending.py) every send goes through."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from activities.sending import ANSWER_LIMIT, exchange, too_old
from relay.core.settings import Settings
from relay.destinations import registry
from relay.destinations.base import REDACTED, Destination, FieldKind
from relay.destinations.facts import SendFacts
from relay.domain.delivery_states import NOT_SENDABLE_REASON
from relay.domain.models import (
    Click,
    Conversion,
    OutboundPostback,
    Pixel,
    Platform,
    TikTokApi,
    Verdict,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
SECRET = "EAAB-secret-token-0123456789"


def _pixel(platform: Platform, **fields: object) -> Pixel:
    return Pixel.model_validate(
        {
            "id": "px_1",
            "campaign_id": "cmp_1",
            "platform": platform,
            "platform_pixel_id": "123456",
            "name": "main",
            "created_at": NOW,
            "updated_at": NOW,
            **fields,
        }
    )


def _facts(age: timedelta = timedelta(0)) -> SendFacts:
    conversion = Conversion(
        conversion_id="conv_abc",
        click_id="clk_1",
        campaign_id="cmp_1",
        network_id="net_1",
        event_type="sale",
        payout=Decimal("12.50"),
        currency="USD",
        txid="tx-1",
        email_sha256="a" * 64,
        received_at=NOW - age,
    )
    click = Click(
        click_id="clk_1",
        campaign_id="cmp_1",
        clicked_at=NOW - age - timedelta(minutes=5),
        ip="203.0.113.9",
        user_agent="Mozilla/5.0",
        fbclid="IwAR-abc",
        ttclid="E.C.P.abc",
        sub1="ad-7",
    )
    return SendFacts(conversion, click, "Purchase", int((NOW - age).timestamp()))


PLATFORMS = sorted(registry.PLATFORMS.items())


@pytest.mark.parametrize(("platform", "destination"), PLATFORMS)
def test_each_platform_describes_itself_for_the_console_and_the_api(
    platform: Platform, destination: Destination[Pixel]
) -> None:
    assert destination.kind == platform.value
    assert destination.label
    assert destination.credential is not None
    assert destination.credential.kind is FieldKind.SECRET
    names = [f.name for f in destination.fields]
    assert len(names) == len(set(names))
    common = {"name", "primary", "event_name", "platform", "platform_pixel_id", "options"}
    assert not common & set(names), "a destination's field hides a common one"
    for field in destination.fields:
        assert field.label
        assert (field.kind is FieldKind.CHOICE) == bool(field.choices)
    assert destination.max_event_age is not None
    assert destination.max_event_age <= timedelta(days=7)
    assert destination.base_url_setting in Settings.model_fields
    assert destination.timeout_setting in Settings.model_fields


def test_click_identifiers_are_each_one_platforms() -> None:
    params = [c.param for d in registry.PLATFORMS.values() for c in d.click_ids]
    assert len(params) == len(set(params))
    assert set(params) >= {"fbclid", "ttclid"}


@pytest.mark.parametrize(("platform", "destination"), PLATFORMS)
def test_the_secret_is_added_only_to_what_is_sent(
    platform: Platform, destination: Destination[Pixel]
) -> None:
    pixel = _pixel(platform)
    outgoing = destination.build(_facts(), pixel, Settings())
    assert SECRET not in repr(outgoing)
    sent = destination.authorize(outgoing, SECRET)
    assert SECRET in repr(sent.json) or SECRET in sent.headers.values()
    assert SECRET not in sent.logged_body
    assert "conv_abc" in sent.logged_body  # the event ID is the conversion ID


def test_meta_logs_a_marker_where_the_token_goes() -> None:
    outgoing = registry.platform(Platform.META).build(
        _facts(), _pixel(Platform.META), Settings(meta_api_version="v24.0")
    )
    assert outgoing.url == "/v24.0/123456/events"
    assert f'"access_token":"{REDACTED}"' in outgoing.logged_body


@pytest.mark.parametrize(
    ("platform", "fields", "event_type", "expected"),
    [
        (Platform.META, {}, "sale", "Purchase"),
        (Platform.META, {}, "AddToCart", "AddToCart"),
        (Platform.META, {}, "my_custom", "Custom"),
        (Platform.TIKTOK, {}, "sale", "Purchase"),
        (Platform.TIKTOK, {"tiktok_api": TikTokApi.PIXEL_TRACK}, "sale", "CompletePayment"),
        (Platform.META, {"event_name": "Subscribe"}, "sale", "Subscribe"),
    ],
)
def test_event_names_default_per_destination_and_the_pixel_overrides(
    platform: Platform, fields: dict[str, object], event_type: str, expected: str
) -> None:
    assert registry.default_event_name(_pixel(platform, **fields), event_type) == expected


@pytest.mark.parametrize(
    ("age", "setting_days", "refused"),
    [
        (timedelta(days=6, hours=23), 7, False),
        (timedelta(days=7, seconds=1), 7, True),
        (timedelta(days=2), 1, True),  # the setting is shorter: it applies
        (timedelta(days=8), 30, True),  # a longer setting cannot stretch the platform's
    ],
)
def test_an_event_older_than_the_destination_takes_is_not_sendable(
    age: timedelta, setting_days: int, refused: bool
) -> None:
    meta = registry.platform(Platform.META)
    facts = _facts(age)
    verdict = too_old(meta, facts, Settings(max_event_age_days=setting_days), int(NOW.timestamp()))
    assert (verdict is not None) == refused
    if verdict is not None:
        assert verdict.verdict is Verdict.PERMANENT
        assert verdict.reason.startswith(NOT_SENDABLE_REASON)


def test_postbacks_have_no_age_limit() -> None:
    facts = _facts(timedelta(days=365))
    assert too_old(registry.POSTBACKS, facts, Settings(), int(NOW.timestamp())) is None


def _client(handler: httpx.MockTransport) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url="https://platform.test", transport=handler)


async def test_a_token_the_platform_echoes_is_redacted_before_anything_reads_it() -> None:
    meta = registry.platform(Platform.META)
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        error = {"error": {"code": 190, "message": f"Invalid token {SECRET}"}}
        return httpx.Response(400, json=error)

    outgoing = meta.build(_facts(), _pixel(Platform.META), Settings())
    async with _client(httpx.MockTransport(answer)) as client:
        outcome = await exchange(meta, client, outgoing, SECRET, ["dropped x"])
    assert SECRET.encode() in seen[0].content  # sent with the token
    assert SECRET not in outcome.response_text and REDACTED in outcome.response_text
    assert SECRET not in outcome.verdict.reason
    assert outcome.verdict.verdict is Verdict.PERMANENT
    assert (outcome.status, outcome.notes) == (400, ["dropped x"])


async def test_no_answer_is_classified_by_the_destination() -> None:
    tiktok = registry.platform(Platform.TIKTOK)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    outgoing = tiktok.build(_facts(), _pixel(Platform.TIKTOK), Settings())
    async with _client(httpx.MockTransport(refuse)) as client:
        outcome = await exchange(tiktok, client, outgoing, SECRET, [])
    assert outcome.verdict.verdict is Verdict.RETRYABLE
    assert outcome.status is None and "ConnectError" in outcome.verdict.reason


async def test_only_the_start_of_a_huge_answer_is_read() -> None:
    def huge(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"x" * (ANSWER_LIMIT * 4))

    postback = OutboundPostback(
        id="pb_1",
        campaign_id="cmp_1",
        url_template="https://source.example/pb?cid={click_id}&key=s3cret",
        created_at=NOW,
        updated_at=NOW,
    )
    outgoing = registry.POSTBACKS.build(_facts(), postback, Settings())
    assert "s3cret" not in outgoing.logged_url and "clk_1" in outgoing.logged_url
    async with _client(httpx.MockTransport(huge)) as client:
        outcome = await exchange(registry.POSTBACKS, client, outgoing, "", [])
    assert outcome.verdict.verdict is Verdict.DELIVERED
    assert outcome.truncated and len(outcome.response_text) == ANSWER_LIMIT


def test_a_postback_answer_asking_to_wait_keeps_the_delay() -> None:
    verdict = registry.POSTBACKS.classify(503, b"", {"retry-after": "120"})
    assert verdict.verdict is Verdict.RETRYABLE and verdict.retry_after_s == 120
    assert registry.POSTBACKS.classify(404, b"", {"retry-after": "120"}).retry_after_s is None


@pytest.mark.parametrize(("platform", "destination"), PLATFORMS)
def test_identifiers_the_postback_could_not_use_are_listed_as_dropped(
    platform: Platform, destination: Destination[Pixel]
) -> None:
    facts = _facts()
    unusable = facts.conversion.model_copy(update={"pii_dropped": ["email: not an email"]})
    send = SendFacts(unusable, facts.click, facts.event_name, facts.event_time)
    outgoing = destination.build(send, _pixel(platform), Settings())
    assert outgoing.dropped[0] == "email: not an email"
