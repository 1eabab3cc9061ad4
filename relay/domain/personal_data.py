"""What Relay counts as a person's data, and the stored request with it erased.

Personal data is blanked when its retention ends (relay/store/retention.py) or when an
operator erases one click's (relay/store/erasure.py); the rows stay, so dedup, attribution
and the delivery history keep working. Kept: IDs, campaign, times, country, sub1..sub5
(reporting dimensions and outbound postback macros), payouts, statuses and answers.
"""

import json
from typing import Any

ERASED = "[erased]"

# The visitor: address, browser, the pages around the click, platform click IDs and
# cookies, the place finer than the country, and the lander's user ID.
CLICK_FIELDS: tuple[str, ...] = (
    "ip",
    "user_agent",
    "landing_url",
    "referrer",
    "fbclid",
    "ttclid",
    "click_ids",
    "fbc",
    "fbp",
    "ttp",
    "region",
    "city",
    "zip_code",
    "external_id",
)

# The postback's user identifiers, stored only as SHA-256 hashes: still personal data.
CONVERSION_FIELDS: tuple[str, ...] = (
    "email_sha256",
    "phone_meta_sha256",
    "phone_tiktok_sha256",
    "external_id_sha256",
)

# Outbound postback macros whose value comes from the visitor.
MACROS: frozenset[str] = frozenset({"external_id"})

# Keys of a platform or postback request whose value is about the visitor, wherever they
# sit: Meta's `user_data` and page URLs, TikTok's `user` and `page` (and `context.ip`,
# `context.user_agent`, `context.ad.callback` in the legacy /pixel/track/ body), and an
# outbound POST body's `external_id`.
_REQUEST_KEYS = frozenset(
    {
        "user_data",
        "user",
        "page",
        "ad",
        "ip",
        "user_agent",
        "event_source_url",
        "referrer_url",
        "external_id",
    }
)


def _erased(value: Any) -> Any:
    """The value's shape with every leaf that held something replaced: which keys were
    sent stays readable."""
    if isinstance(value, dict):
        return {key: _erased(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_erased(item) for item in value]
    return value if value in ("", None) else ERASED


def _walk(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: _erased(item) if key in _REQUEST_KEYS else _walk(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_walk(item) for item in value]
    return value


def erase_request_body(body: str) -> str:
    """A logged request body (JSON) with the visitor's data erased, everything else as
    sent. A body that is not JSON cannot be told apart, so it is erased whole."""
    if not body:
        return ""
    try:
        parsed = json.loads(body)
    except ValueError:
        return ""
    return json.dumps(_walk(parsed), separators=(",", ":"))


def erase_macros(values: dict[str, str]) -> dict[str, str]:
    """Outbound postback macro values with the visitor's replaced by `ERASED`."""
    return {name: ERASED if name in MACROS and value else value for name, value in values.items()}
