"""Domain records as Relay stores and serves them. Access tokens are never a field here."""

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field


class TikTokApi(StrEnum):
    """Which TikTok endpoint a pixel uses (platforms.md section 2.1)."""

    EVENTS_2_0 = "events_2_0"
    PIXEL_TRACK = "pixel_track"


class Verdict(StrEnum):
    """What the sender does next."""

    DELIVERED = "delivered"
    RETRYABLE = "retryable"
    PERMANENT = "permanent"


class Platform(StrEnum):
    META = "meta"
    TIKTOK = "tiktok"


class Network(BaseModel):
    """A network as stored: its postback key only as keyed hashes (`KeyRing.keyed_hash`),
    the key a rotation replaced still accepted until `previous_key_valid_until`."""

    id: str
    name: str
    postback_key_hash: str = ""
    previous_key_hash: str = ""
    previous_key_valid_until: datetime | None = None
    created_at: datetime
    updated_at: datetime


class Campaign(BaseModel):
    """A campaign; `allowed_networks` lists the networks whose postbacks count for its
    clicks, empty for any network."""

    id: str
    name: str
    offer_url: str
    currency: str
    repeatable_events: list[str] = Field(default_factory=list)
    attribution_window_days: int = 30
    allowed_networks: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime

    def allows(self, network_id: str) -> bool:
        """Whether this network may post conversions for the campaign's clicks."""
        return not self.allowed_networks or network_id in self.allowed_networks


class Pixel(BaseModel):
    """A pixel's configuration. Its encrypted token lives only in the store."""

    id: str
    campaign_id: str
    platform: Platform
    platform_pixel_id: str
    name: str
    primary: bool = True
    event_name: str | None = None
    test_event_code: str | None = None
    tiktok_api: TikTokApi = TikTokApi.EVENTS_2_0
    # The destination's own settings without a column of their own, by the names its
    # package lists in `fields` (relay/destinations/); never a secret.
    options: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime


class CustomConversion(BaseModel):
    """An inbound event routed to one pixel under a chosen platform event name."""

    id: str
    campaign_id: str
    inbound_event: str
    pixel_id: str
    event_name: str
    created_at: datetime
    updated_at: datetime


class OutboundPostback(BaseModel):
    """A traffic source's postback URL template; `events` empty means every conversion
    event (reversals fire only postbacks that list them)."""

    id: str
    campaign_id: str
    url_template: str
    method: Literal["GET", "POST"] = "GET"
    events: list[str] = Field(default_factory=list)
    created_at: datetime
    updated_at: datetime


class Click(BaseModel):
    click_id: str
    campaign_id: str
    clicked_at: datetime
    ip: str = ""
    user_agent: str = ""
    landing_url: str = ""
    referrer: str = ""
    fbclid: str = ""
    ttclid: str = ""
    fbc: str = ""
    fbp: str = ""
    ttp: str = ""
    country: str = ""
    region: str = ""
    city: str = ""
    zip_code: str = ""
    external_id: str = ""
    sub1: str = ""
    sub2: str = ""
    sub3: str = ""
    sub4: str = ""
    sub5: str = ""
    # Platforms' click IDs without a field of their own, by parameter (relay/destinations/).
    click_ids: dict[str, str] = Field(default_factory=dict)


class Conversion(BaseModel):
    """One conversion row. User identifiers are stored only as SHA-256 hashes."""

    conversion_id: str
    click_id: str
    campaign_id: str = ""
    network_id: str
    event_type: str
    payout: Decimal | None = None
    currency: str
    txid: str = ""
    email_sha256: str = ""
    phone_meta_sha256: str = ""
    phone_tiktok_sha256: str = ""
    external_id_sha256: str = ""
    pii_dropped: list[str] = Field(default_factory=list)
    is_duplicate: bool = False
    attributed: bool = True
    received_at: datetime
    # Why the conversion was refused (recorded, not counted, nothing sent), or ''.
    refusal: str = ""


class DeliveryAttempt(BaseModel):
    """What every logged attempt records, pixel fire or outbound postback."""

    conversion_id: str
    campaign_id: str
    attempt: int
    request_body: str
    http_status: int | None
    response_body: str
    response_truncated: bool
    verdict: str
    success: bool
    error: str
    duration_ms: int
    scheduled_at: datetime | None = None


class PixelFire(DeliveryAttempt):
    """One delivery attempt to one pixel, as logged (token redacted)."""

    fire_id: str
    pixel_id: str
    platform: Platform
    pixel_name: str
    event_name: str
    event_id: str
    request_url: str
    fired_at: datetime


class PostbackAttempt(DeliveryAttempt):
    """One outbound postback attempt, as logged (secrets in the URL redacted)."""

    attempt_id: str
    postback_id: str
    event_type: str
    method: str
    url: str
    sent_at: datetime


class PostbackAttemptRow(PostbackAttempt):
    """A postback attempt as written: also its URL with the visitor's macro values erased,
    which `url` becomes when personal data expires or is erased
    (relay/domain/personal_data.py)."""

    url_erased: str = ""
