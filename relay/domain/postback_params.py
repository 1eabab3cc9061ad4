"""Parsing a network's postback: aliases, defaults and bounds (product.md section 4)."""

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import pycountry

from relay.core.errors import BadParameter, Unauthorized

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
_ASCII_CONTROLS = re.compile("[\x00-\x1f\x7f]")
# Unicode categories of characters no text value may hold: controls (C0, DEL, C1), the line
# and paragraph separators, and surrogates (only a JSON escape can give one, unpaired).
_CONTROL_KINDS = {
    "Cc": "control",
    "Zl": "line separator",
    "Zp": "paragraph separator",
    "Cs": "unpaired surrogate",
}
# The bidi embeddings, overrides and isolates: they make a value display as something else
# than it is (in the console, a log, a terminal).
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Letters drawn as nothing, outside the format characters (category Cf).
_HANGUL_FILLERS = frozenset("\u115f\u1160\u3164\uffa0")
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
        problem = identifier_problem(value)
        if problem is not None:
            raise BadParameter(f"{name} {problem}", name)
    return value


def text_problem(value: str) -> str | None:
    """What makes `value` unfit as text, or None: a control character (C0, DEL, C1, a line
    or paragraph separator, an unpaired surrogate) or a bidi embedding, override or isolate.
    For free text, such as a click's sub1-sub5: other format characters pass (the zero-width
    non-joiner belongs in Persian and Indic words)."""
    return _problem(value, identifier=False)


def identifier_problem(value: str) -> str | None:
    """As `text_problem`, and any invisible character: every format character (Unicode
    category Cf: zero-width space and joiners, the bidi marks, word joiner, byte order mark,
    soft hyphen...) and the Hangul fillers. For values that identify something (a txid, a
    click ID, an event): two that look identical must be the same value."""
    return _problem(value, identifier=True)


def _problem(value: str, identifier: bool) -> str | None:
    if value.isascii():  # the common case, without a look at each character
        found = _ASCII_CONTROLS.search(value)
        return None if found is None else _contains("control", found.group())
    for char in value:
        category = unicodedata.category(char)
        if category in _CONTROL_KINDS:
            return _contains(_CONTROL_KINDS[category], char)
        if char in _BIDI_CONTROLS:
            return _contains("bidirectional control", char)
        if identifier and (category == "Cf" or char in _HANGUL_FILLERS):
            return _contains("invisible", char)
    return None


def _contains(kind: str, char: str) -> str:
    return f"contains {kind} characters (U+{ord(char):04X})"


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
