"""Deterministic identifiers (product.md section 5) and random ones for clicks and keys."""

import base64
import hashlib
import secrets


def _digest24(seed: str) -> str:
    digest = hashlib.sha256(seed.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")[:24]


def conversion_id(click_id: str, event_type: str, txid: str | None) -> str:
    """`conv_` + first 24 chars of unpadded base64url SHA-256 of `click|event_type|txid`."""
    return "conv_" + _digest24(f"{click_id}|{event_type}|{txid or ''}")


def is_conversion_id_of(claimed: str, click_id: str, event_type: str, txid: str) -> bool:
    """Whether `claimed` is the conversion ID its click, event type and txid make: a
    conversion whose ID is not was not accepted by Relay's postback endpoint."""
    return claimed == conversion_id(click_id, event_type, txid)


def click_claim_id(click_id: str, event_type: str) -> str:
    """Workflow ID whose uniqueness makes one conversion per (click, event type) the original."""
    return "claim_click_" + _digest24(f"{click_id}|{event_type}")


def txid_claim_id(network_id: str, event_type: str, txid: str) -> str:
    """Workflow ID whose uniqueness binds (network, event type, txid) to one conversion."""
    return "claim_txid_" + _digest24(f"{network_id}|{event_type}|{txid}")


def new_click_id() -> str:
    """A random, URL-safe click ID (22 chars, 128 bits)."""
    return secrets.token_urlsafe(16)


def new_resource_id(prefix: str) -> str:
    """IDs for networks, campaigns and pixels: short, random, typed by prefix."""
    return f"{prefix}_{secrets.token_hex(8)}"


def new_secret(nbytes: int = 24) -> str:
    """A random secret for postback keys and admin tokens."""
    return secrets.token_urlsafe(nbytes)
