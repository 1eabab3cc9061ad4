"""Inbound event types: aliases folded to one spelling, and the reversals (product.md
section 5). What each becomes on a platform is the destination's (relay/destinations/)."""

# Lowercased alias -> canonical event_type (product.md section 5).
_EVENT_TYPE_ALIASES = {
    "sale": "sale",
    "conversion": "sale",
    "purchase": "sale",
    "approved": "sale",
    "confirmed": "sale",
    "lead": "lead",
    "registration": "registration",
    "reg": "registration",
    "signup": "registration",
    "install": "install",
    "deposit": "deposit",
    "dep": "deposit",
    # Reversals (status changes) fold to one lowercase spelling each.
    "rejected": "rejected",
    "declined": "declined",
    "trash": "trash",
    "cancelled": "cancelled",
    "canceled": "cancelled",
    "refund": "refund",
    "chargeback": "chargeback",
}

REVERSAL_EVENTS = frozenset(
    {"rejected", "declined", "trash", "cancelled", "canceled", "refund", "chargeback"}
)


def normalize_event_type(raw: str) -> str:
    """Trimmed event type with known aliases folded (`Signup` -> `registration`).

    Anything else is a custom event and keeps its name as sent, case included
    (`AddToCart` stays `AddToCart`).
    """
    value = raw.strip()
    return _EVENT_TYPE_ALIASES.get(value.lower(), value)


def is_reversal(raw: str) -> bool:
    """True for status changes that reverse a conversion (`rejected`, `refund`, ...)."""
    return raw.strip().lower() in REVERSAL_EVENTS
