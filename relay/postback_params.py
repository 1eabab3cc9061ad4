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
STORED_PAYOUT = Decimal("0.000001")  # the conversions table keeps six decimals
# C0 and C1 controls and DEL; and the bidi embeddings, overrides and isolates, which make a
# value display as something else than it is (in the admin UI, a log, a terminal).
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f]")
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
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
        problem = text_problem(value)
        if problem is not None:
            raise BadParameter(f"{name} {problem}", name)
    return value


def text_problem(value: str) -> str | None:
    """What makes `value` unfit as text (a control or bidi formatting character), or None."""
    for pattern, kind in ((_CONTROLS, "control"), (_BIDI, "bidirectional control")):
        found = pattern.search(value)
        if found is not None:
            return f"contains {kind} characters (U+{ord(found.group()):04X})"
    return None


def _payout(value: str | None) -> Decimal | None:
    if value is None:
        return None
    # Plain ASCII decimals only: Decimal() would also take "NaN", "1_000", "1e3" and
    # non-Latin digits, none of which a network means as a payout.
    magnitude = value.removeprefix("-")
    if not _DECIMAL.fullmatch(magnitude):
        message = f"payout must be a decimal number like 12.50, got {value[:32]!r}"
        raise BadParameter(message, "payout")
    # The bound holds for the value as stored: 999999999999.9999995 rounds to 10^12.
    payout = Decimal(magnitude).quantize(STORED_PAYOUT)
    if (value.startswith("-") and payout != 0) or payout >= MAX_PAYOUT:
        raise BadParameter("payout must be a number from 0 to 10^12 (exclusive)", "payout")
    return payout


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


def parse_postback(raw: Mapping[str, str]) -> PostbackParams:
    """Validate a postback's parameters; raise with the offending parameter named."""
    key = _pick(raw, "key")
    if key is None:
        raise Unauthorized("the network's postback key is missing", "key")
    return _parse(raw, key)


def conversion_identity(raw: Mapping[str, str]) -> tuple[str, str, str | None]:
    """(click_id, event as sent or "sale", txid): what the conversion ID is made of, for
    `/api/event-id`. Every parameter is validated as `/postback` validates it, so the two
    refuse the same input with the same error; only the key is not required (a browser
    never holds it)."""
    params = _parse(raw, _pick(raw, "key") or "")
    return params.click_id, params.event, params.txid


def _parse(raw: Mapping[str, str], key: str) -> PostbackParams:
    click_id = _pick(raw, "click_id")
    if click_id is None:
        raise BadParameter("click_id is required (aliases: clickid, cid, subid)", "click_id")
    event, txid = _pick(raw, "event") or "sale", _pick(raw, "txid")
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
