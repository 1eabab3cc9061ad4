"""Default platform event names for inbound event types (product.md section 7).

A pixel or custom conversion may override the default name; these functions give the
default only.
"""

from relay.domain.events import normalize_event_type
from relay.domain.models import TikTokApi

# Meta's standard web events (Meta Pixel reference), plus the PageView default event.
META_STANDARD_EVENTS = frozenset(
    {
        "AddPaymentInfo",
        "AddToCart",
        "AddToWishlist",
        "CompleteRegistration",
        "Contact",
        "CustomizeProduct",
        "Donate",
        "FindLocation",
        "InitiateCheckout",
        "Lead",
        "PageView",
        "Purchase",
        "Schedule",
        "Search",
        "StartTrial",
        "SubmitApplication",
        "Subscribe",
        "ViewContent",
    }
)

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

_META_NAMES = {
    "sale": "Purchase",
    "lead": "Lead",
    "registration": "CompleteRegistration",
    "install": "Install",
    "deposit": "Purchase",
}
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


def meta_event_name(event_type: str) -> str:
    """Default Meta `event_name`: mapped, else the custom name if standard, else Custom."""
    canonical = normalize_event_type(event_type)
    if canonical in _META_NAMES:
        return _META_NAMES[canonical]
    return canonical if canonical in META_STANDARD_EVENTS else "Custom"


def tiktok_event_name(event_type: str, api: TikTokApi) -> str:
    """Default TikTok `event` for the pixel's flavour; unknown custom names -> CustomEvent."""
    canonical = normalize_event_type(event_type)
    names = _TIKTOK_NAMES[api]
    if canonical in names:
        return names[canonical]
    return canonical if canonical in _TIKTOK_STANDARD[api] else "CustomEvent"
