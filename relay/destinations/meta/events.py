"""Meta's default `event_name` for inbound event types (product.md section 7); a pixel or
custom conversion may override it."""

from relay.domain.events import normalize_event_type

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

_META_NAMES = {
    "sale": "Purchase",
    "lead": "Lead",
    "registration": "CompleteRegistration",
    "install": "Install",
    "deposit": "Purchase",
}


def meta_event_name(event_type: str) -> str:
    """Default Meta `event_name`: mapped, else the custom name if standard, else Custom."""
    canonical = normalize_event_type(event_type)
    if canonical in _META_NAMES:
        return _META_NAMES[canonical]
    return canonical if canonical in META_STANDARD_EVENTS else "Custom"
