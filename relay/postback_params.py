"""Parsing a network's postback: aliases, defaults and bounds (product.md section 4)."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

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
_DECIMAL = re.compile(r"[0-9]{1,13}(\.[0-9]{1,12})?")


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
    # Plain ASCII decimals only: Decimal() would also take "NaN", "1_000", "1e3" and
    # non-Latin digits, none of which a network means as a payout.
    magnitude = value.removeprefix("-")
    if not _DECIMAL.fullmatch(magnitude):
        message = f"payout must be a decimal number like 12.50, got {value[:32]!r}"
        raise BadParameter(message, "payout")
    payout = Decimal(magnitude)
    if (value.startswith("-") and payout != 0) or payout >= MAX_PAYOUT:
        raise BadParameter("payout must be a number from 0 to 10^12", "payout")
    return payout.quantize(Decimal("0.000001"))


def iso_currency(value: str) -> str | None:
    """The uppercase ISO 4217 code for `value` (any case), or None if it is not one."""
    code = value.strip().upper()
    return code if len(code) == 3 and pycountry.currencies.get(alpha_3=code) else None


def _currency(value: str | None) -> str | None:
    if value is None:
        return None
    code = iso_currency(value)
    if code is None:
        raise BadParameter(f"currency must be an ISO 4217 code, got {value!r}", "currency")
    return code


def conversion_identity(raw: Mapping[str, str]) -> tuple[str, str, str | None]:
    """(click_id, event as sent or "sale", txid): what the conversion ID is made of, read
    the same way for `/postback` and `/api/event-id` so both give the same ID."""
    click_id = _pick(raw, "click_id")
    if click_id is None:
        raise BadParameter("click_id is required (aliases: clickid, cid, subid)", "click_id")
    return click_id, _pick(raw, "event") or "sale", _pick(raw, "txid")


def parse_postback(raw: Mapping[str, str]) -> PostbackParams:
    """Validate a postback's parameters; raise with the offending parameter named."""
    key = _pick(raw, "key")
    if key is None:
        raise Unauthorized("the network's postback key is missing", "key")
    click_id, event, txid = conversion_identity(raw)
    return PostbackParams(
        key=key,
        click_id=click_id,
        event=event,
        payout=_payout(_pick(raw, "payout")),
        currency=_currency(_pick(raw, "currency")),
        txid=txid,
        email=_pick(raw, "email"),
        phone=_pick(raw, "phone"),
        external_id=_pick(raw, "external_id"),
    )
