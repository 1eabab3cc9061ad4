"""TikTok's default `event` for inbound event types, per endpoint flavour (product.md
section 7); a pixel or custom conversion may override it."""

from relay.domain.events import normalize_event_type
from relay.domain.models import TikTokApi

# Events API 2.0 web list (platforms.md section 2.6, T-ENUM).
TIKTOK_STANDARD_EVENTS_2_0 = frozenset(
    {
        "AddPaymentInfo",
        "AddToCart",
        "AddToWishlist",
        "ApplicationApproval",
        "CompleteRegistration",
        "Contact",
        "CustomizeProduct",
        "Download",
        "FindLocation",
        "InitiateCheckout",
        "Lead",
        "Purchase",
        "Schedule",
        "Search",
        "StartTrial",
        "SubmitApplication",
        "Subscribe",
        "ViewContent",
    }
)

# The `/pixel/track/` era list (TikTok help aid=10028, the seed's names).
TIKTOK_LEGACY_EVENTS = frozenset(
    {
        "AddPaymentInfo",
        "AddToCart",
        "AddToWishlist",
        "ClickButton",
        "CompletePayment",
        "CompleteRegistration",
        "Contact",
        "Download",
        "InitiateCheckout",
        "PlaceAnOrder",
        "Search",
        "SubmitForm",
        "Subscribe",
        "ViewContent",
    }
)

_TIKTOK_NAMES = {
    TikTokApi.EVENTS_2_0: {
        "sale": "Purchase",
        "lead": "Lead",
        "registration": "CompleteRegistration",
        "install": "Download",
        "deposit": "Purchase",
    },
    TikTokApi.PIXEL_TRACK: {
        "sale": "CompletePayment",
        "lead": "SubmitForm",
        "registration": "CompleteRegistration",
        "install": "Download",
        "deposit": "CompletePayment",
    },
}
_TIKTOK_STANDARD = {
    TikTokApi.EVENTS_2_0: TIKTOK_STANDARD_EVENTS_2_0,
    TikTokApi.PIXEL_TRACK: TIKTOK_LEGACY_EVENTS,
}


def tiktok_event_name(event_type: str, api: TikTokApi) -> str:
    """Default TikTok `event` for the pixel's flavour; unknown custom names -> CustomEvent."""
    canonical = normalize_event_type(event_type)
    names = _TIKTOK_NAMES[api]
    if canonical in names:
        return names[canonical]
    return canonical if canonical in _TIKTOK_STANDARD[api] else "CustomEvent"
