"""Request bodies of the admin and click APIs, bounded and validated by pydantic."""

from ipaddress import ip_address
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    StringConstraints,
    TypeAdapter,
)

from relay.destinations.postback.template import template_problems
from relay.domain.models import Platform, TikTokApi
from relay.domain.postback_params import identifier_problem, iso_currency, text_problem

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=512)]


def _token(value: str) -> str:
    # Meta and TikTok tokens are printable ASCII; anything else (an inner space, a control
    # or non-ASCII character from a bad paste) fails every send, so refuse it here. The
    # message never quotes the value.
    if not all("!" <= char <= "~" for char in value):
        raise ValueError(
            "must be printable ASCII without spaces or control characters, "
            "as Meta and TikTok tokens are"
        )
    return value


Token = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=8, max_length=4096),
    AfterValidator(_token),
]


_HTTP_URL = TypeAdapter(HttpUrl)


def _offer_url(value: str) -> str:
    # Validated as an http(s) URL, but kept as written so `{click_id}` stays unescaped.
    _HTTP_URL.validate_python(value.replace("{click_id}", "click_id"))
    return value


OfferUrl = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2048), AfterValidator(_offer_url)
]


def _currency(value: str) -> str:
    code = iso_currency(value)
    if code is None:
        raise ValueError(f"not an ISO 4217 currency code: {value!r}")
    return code


def _url(value: str) -> str:
    if value:
        _HTTP_URL.validate_python(value)
    return value


def _ip(value: str) -> str:
    return str(ip_address(value.strip()))


Currency = Annotated[str, AfterValidator(_currency)]
PageUrl = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_url)]
IpAddress = Annotated[str, StringConstraints(max_length=64), AfterValidator(_ip)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NetworkIn(_Strict):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"name": "Acme Affiliates"}]}
    )

    name: Name


class NetworkPatch(_Strict):
    name: Name | None = None


class KeyRotationIn(_Strict):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"grace_hours": 24}]})

    grace_hours: float = Field(
        default=0,
        ge=0,
        le=168,
        description="How long the replaced key is still accepted, so the network can switch "
        "over (at most 7 days); 0, the default, refuses it at once (a leaked key).",
    )


NetworkId = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
MAX_ALLOWED_NETWORKS = 200
ALLOWED_NETWORKS = (
    "IDs of the networks allowed to post conversions for this campaign's clicks; empty (the "
    "default): any network. A postback from another network is refused (403 naming key)."
)


class CampaignIn(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Summer sale",
                    "offer_url": "https://shop.example/lp?cid={click_id}",
                    "currency": "USD",
                    "repeatable_events": ["deposit"],
                }
            ]
        },
    )

    name: Name
    offer_url: OfferUrl = Field(examples=["https://offer.example/landing?cid={click_id}"])
    currency: Currency = "USD"
    repeatable_events: list[Name] = Field(default_factory=list, max_length=50)
    attribution_window_days: int = Field(default=30, ge=1, le=365)
    allowed_networks: list[NetworkId] = Field(
        default_factory=list, max_length=MAX_ALLOWED_NETWORKS, description=ALLOWED_NETWORKS
    )


class CampaignPatch(_Strict):
    name: Name | None = None
    offer_url: OfferUrl | None = None
    currency: Currency | None = None
    repeatable_events: list[Name] | None = Field(default=None, max_length=50)
    attribution_window_days: int | None = Field(default=None, ge=1, le=365)
    allowed_networks: list[NetworkId] | None = Field(
        default=None, max_length=MAX_ALLOWED_NETWORKS, description=ALLOWED_NETWORKS
    )


# A destination's own settings: a few short names with short values.
Options = Annotated[
    dict[
        Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,63}$")],
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=512)],
    ],
    Field(max_length=32),
]


class PixelIn(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "platform": "meta",
                    "platform_pixel_id": "1234567890",
                    "access_token": "EAAB...",
                    "name": "Meta purchase",
                    "primary": True,
                    "test_event_code": "TEST123",
                }
            ]
        },
    )

    platform: Platform
    platform_pixel_id: Annotated[
        str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    ]
    access_token: Token = Field(description="Write-only: encrypted at rest, never returned.")
    name: Name
    primary: bool = True
    event_name: Name | None = None
    test_event_code: Annotated[str, StringConstraints(max_length=64)] | None = None
    tiktok_api: TikTokApi = TikTokApi.EVENTS_2_0
    options: Options = Field(
        default_factory=dict,
        description="The platform's own settings without a field of their own "
        "(relay/destinations/<platform>/ `fields`); none for Meta and TikTok.",
    )


class PixelPatch(_Strict):
    access_token: Token | None = None
    name: Name | None = None
    primary: bool | None = None
    event_name: Name | None = None
    test_event_code: Annotated[str, StringConstraints(max_length=64)] | None = None
    tiktok_api: TikTokApi | None = None
    options: Options | None = None


def _plain_text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _identifier(value: str) -> str:
    problem = identifier_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


# A click's facts as `/c/` checks them (api/routes/clicks.py): identifiers refuse invisible
# characters too, free text (sub1-sub5, places, the user agent) controls and bidi controls.
ClickIdentifier = Annotated[Short, AfterValidator(_identifier)]
ClickText = Annotated[Short, AfterValidator(_plain_text)]

EventName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64),
    AfterValidator(_plain_text),
]


def _template(value: str) -> str:
    problems = template_problems(value)
    if problems:
        raise ValueError("; ".join(problems))
    return value


UrlTemplate = Annotated[
    str, StringConstraints(strip_whitespace=True, max_length=2048), AfterValidator(_template)
]


class CustomConversionIn(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "inbound_event": "AddToCart",
                    "pixel": "px_1a2b3c4d5e6f7a8b",
                    "event_name": "AddToCart",
                }
            ]
        },
    )

    inbound_event: EventName = Field(examples=["AddToCart"])
    pixel: str = Field(description="ID of a pixel of the same campaign", examples=["px_1a2b"])
    event_name: EventName = Field(examples=["AddToCart"])


class CustomConversionPatch(_Strict):
    inbound_event: EventName | None = None
    pixel: str | None = None
    event_name: EventName | None = None


class OutboundPostbackIn(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url_template": "https://tracker.example/cb?clickid={click_id}&payout={payout}",
                    "method": "GET",
                    "events": ["sale"],
                }
            ]
        },
    )

    url_template: UrlTemplate = Field(
        examples=["https://tracker.example/cb?clickid={click_id}&payout={payout}&tx={txid}"]
    )
    method: Literal["GET", "POST"] = "GET"
    events: list[EventName] = Field(
        default_factory=list,
        max_length=50,
        description="Event types it fires for; empty: every conversion event (no reversals).",
    )


class OutboundPostbackPatch(_Strict):
    url_template: UrlTemplate | None = None
    method: Literal["GET", "POST"] | None = None
    events: list[EventName] | None = Field(default=None, max_length=50)


class ClickIn(_Strict):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "campaign_id": "cmp_1a2b3c4d5e6f7a8b",
                    "ip": "203.0.113.9",
                    "user_agent": "Mozilla/5.0",
                    "landing_url": "https://lander.example/p",
                    "fbclid": "IwAR0abc",
                    "country": "US",
                }
            ]
        },
    )

    campaign_id: Name
    ip: IpAddress
    user_agent: ClickText
    landing_url: Annotated[PageUrl, StringConstraints(min_length=1)]
    referrer: PageUrl = ""
    fbclid: ClickIdentifier = ""
    ttclid: ClickIdentifier = ""
    fbc: ClickIdentifier = ""
    fbp: ClickIdentifier = ""
    ttp: ClickIdentifier = ""
    click_ids: Annotated[
        dict[Annotated[str, StringConstraints(max_length=64)], ClickIdentifier],
        Field(max_length=16),
    ] = Field(default_factory=dict)
    country: Annotated[str, StringConstraints(max_length=2)] = ""
    region: ClickText = ""
    city: ClickText = ""
    zip_code: ClickText = ""
    external_id: ClickIdentifier = ""
    sub1: ClickText = ""
    sub2: ClickText = ""
    sub3: ClickText = ""
    sub4: ClickText = ""
    sub5: ClickText = ""


class SettingsIn(_Strict):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"timezone": "America/New_York"}]}
    )

    timezone: Name
