"""What a platform request is built from: the facts of one pixel fire, without any secret.

The send activity assembles an `EventFacts` from the conversion row, its click and the
pixel's configuration; the Meta and TikTok builders turn it into a wire body. The access
token is never part of it: the activity adds the token only to the outgoing request.
"""

from dataclasses import dataclass, field
from decimal import Decimal

from relay.domain.models import TikTokApi


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
    test_event_code: str | None = None
    tiktok_api: TikTokApi = TikTokApi.EVENTS_2_0
