"""Parsing a network's postback: aliases, defaults and bounds (product.md section 4)."""

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pycountry

from relay.errors import BadParameter, Unauthorized

ALIASES: dict[str, tuple[str, ...]] = {
    "key": ("key",),
    "click_id": ("click_id", "clickid", "cid", "subid"),
    "event": ("event", "status", "goal", "type"),
    "payout": ("payout", "sum", "amount"),
    "currency": ("currency",),
    "txid": ("txid", "transaction_id", "tid"),
    "email": ("email",),
    "phone": ("phone",),
    "external_id": ("external_id",),
}
MAX_LENGTH = {
    "key": 128,
    "click_id": 128,
    "event": 64,
    "payout": 32,
    "currency": 3,
    "txid": 128,
    "email": 254,
    "phone": 64,
    "external_id": 128,
}
MAX_PAYOUT = Decimal("1000000000000")
_PRINTABLE = re.compile(r"^[^\x00-\x1f\x7f]*$")


@dataclass(frozen=True)
class PostbackParams:
    key: str
    click_id: str
    event: str
    payout: Decimal | None
    currency: str | None
    txid: str | None
    email: str | None
    phone: str | None
    external_id: str | None


def _pick(raw: Mapping[str, str], name: str) -> str | None:
    values = {raw[a].strip() for a in ALIASES[name] if a in raw and raw[a].strip()}
    if len(values) > 1:
        names = ", ".join(a for a in ALIASES[name] if a in raw)
        raise BadParameter(f"conflicting values given for {name} ({names})", name)
    value = values.pop() if values else None
    if value is not None:
        if len(value) > MAX_LENGTH[name]:
            raise BadParameter(f"{name} is longer than {MAX_LENGTH[name]} characters", name)
        if not _PRINTABLE.match(value):
            raise BadParameter(f"{name} contains control characters", name)
    return value


def _payout(value: str | None) -> Decimal | None:
    if value is None:
        return None
    try:
        payout = Decimal(value)
    except InvalidOperation:
        raise BadParameter(f"payout must be a number, got {value[:32]!r}", "payout") from None
    if not math.isfinite(payout) or payout < 0 or payout >= MAX_PAYOUT:
        raise BadParameter("payout must be a finite number from 0 to 10^12", "payout")
    return payout.quantize(Decimal("0.000001"))


def _currency(value: str | None) -> str | None:
    if value is None:
        return None
    code = value.upper()
    if len(code) != 3 or pycountry.currencies.get(alpha_3=code) is None:
        raise BadParameter(f"currency must be an ISO 4217 code, got {value!r}", "currency")
    return code


def parse_postback(raw: Mapping[str, str]) -> PostbackParams:
    """Validate a postback's parameters; raise with the offending parameter named."""
    key = _pick(raw, "key")
    if key is None:
        raise Unauthorized("the network's postback key is missing", "key")
    click_id = _pick(raw, "click_id")
    if click_id is None:
        raise BadParameter("click_id is required (aliases: clickid, cid, subid)", "click_id")
    return PostbackParams(
        key=key,
        click_id=click_id,
        event=_pick(raw, "event") or "sale",
        payout=_payout(_pick(raw, "payout")),
        currency=_currency(_pick(raw, "currency")),
        txid=_pick(raw, "txid"),
        email=_pick(raw, "email"),
        phone=_pick(raw, "phone"),
        external_id=_pick(raw, "external_id"),
    )
