"""What a platform request is built from: the facts of one pixel fire, without any secret.

The send activity assembles an `EventFacts` from the conversion row, its click and the
pixel's configuration; the Meta and TikTok builders turn it into a wire body. The access
token is never part of it: the activity adds the token only to the outgoing request.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from relay.domain.models import Click, Conversion, Pixel, TikTokApi


@dataclass(frozen=True)
class UserHashes:
    """User identifiers carried by the postback, already normalized and SHA-256 hashed.

    Meta hashes phone digits without '+', TikTok hashes E.164 with '+', so both are kept.
    `dropped` names each identifier that could not be normalized and why; it is logged.
    """

    email: str | None = None
    phone_meta: str | None = None
    phone_tiktok: str | None = None
    external_id: str | None = None
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventFacts:
    """Everything one pixel fire sends, as raw facts; builders normalize and hash."""

    pixel_id: str
    event_name: str
    event_id: str
    event_time: int
    currency: str
    value: Decimal | None = None
    order_id: str | None = None
    event_source_url: str | None = None
    referrer_url: str | None = None
    client_ip: str | None = None
    user_agent: str | None = None
    fbclid: str | None = None
    fbc: str | None = None
    fbp: str | None = None
    ttclid: str | None = None
    ttp: str | None = None
    click_time_ms: int | None = None
    country: str | None = None
    region: str | None = None
    city: str | None = None
    zip_code: str | None = None
    user: UserHashes = field(default_factory=UserHashes)
    # Platforms' click IDs without a field above, by parameter (`Click.click_ids`).
    click_ids: Mapping[str, str] = field(default_factory=dict)
    test_event_code: str | None = None
    tiktok_api: TikTokApi = TikTokApi.EVENTS_2_0


@dataclass(frozen=True)
class SendFacts:
    """What one send is built from: the conversion, its click (None when unknown), the
    event name the plan chose and the event time (epoch seconds) to report."""

    conversion: Conversion
    click: Click | None
    event_name: str
    event_time: int


def event_facts(send: SendFacts, pixel: Pixel) -> EventFacts:
    """Join what the conversion, its click and the pixel know into one platform-neutral
    fact set (the conversion ID is the event ID and order ID)."""
    c, conversion = send.click, send.conversion
    return EventFacts(
        pixel_id=pixel.platform_pixel_id,
        event_name=send.event_name,
        event_id=conversion.conversion_id,
        event_time=send.event_time,
        currency=conversion.currency,
        value=conversion.payout,
        order_id=conversion.conversion_id,
        event_source_url=(c.landing_url or None) if c else None,
        referrer_url=(c.referrer or None) if c else None,
        client_ip=(c.ip or None) if c else None,
        user_agent=(c.user_agent or None) if c else None,
        fbclid=(c.fbclid or None) if c else None,
        fbc=(c.fbc or None) if c else None,
        fbp=(c.fbp or None) if c else None,
        ttclid=(c.ttclid or None) if c else None,
        ttp=(c.ttp or None) if c else None,
        click_time_ms=int(c.clicked_at.timestamp() * 1000) if c else None,
        country=(c.country or None) if c else None,
        region=(c.region or None) if c else None,
        city=(c.city or None) if c else None,
        zip_code=(c.zip_code or None) if c else None,
        click_ids=dict(c.click_ids) if c else {},
        user=UserHashes(
            email=conversion.email_sha256 or None,
            phone_meta=conversion.phone_meta_sha256 or None,
            phone_tiktok=conversion.phone_tiktok_sha256 or None,
            external_id=conversion.external_id_sha256 or None,
            # Identifiers the postback carried but could not be normalized, with why.
            dropped=tuple(conversion.pii_dropped),
        ),
        test_event_code=pixel.test_event_code,
        tiktok_api=pixel.tiktok_api,
    )
