"""Normalization and SHA-256 hashing of user identifiers for Meta and TikTok.

Rules follow Meta's "Customer Information Parameters" doc and TikTok's Events API 2.0 doc
(platforms.md sections 1.2 and 2.4). Where Meta's Python SDK agrees with the doc the output
is identical to the SDK's; where they differ (section 1.3) the doc wins, and Relay is never
looser than either. A value that cannot be normalized, or is empty once normalized, raises
`UnusableValue`: the caller leaves the field out and logs the reason, which never quotes
the raw value, so no PII reaches the logs.
"""

import hashlib
import re
import unicodedata
from collections.abc import Callable
from decimal import Decimal

import phonenumbers
import pycountry

from relay.destinations.facts import UserHashes

_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
_EMAIL = re.compile(r".+@.+\..+")  # the SDK's check; fullmatch also refuses line breaks
_CURRENCY = re.compile(r"[A-Z]{3}")

# ISO 3166-1 alpha-2, officially assigned codes: the SDK validates through pycountry too.
ISO_ALPHA2 = frozenset(country.alpha_2.lower() for country in pycountry.countries)

# Meta wants "the 2-character ANSI abbreviation" for US states; the SDK does not map full
# names, so a GeoIP region such as "California" would otherwise hash as "california".
_US_STATE_CODES = (
    "alabama:al alaska:ak arizona:az arkansas:ar california:ca colorado:co connecticut:ct"
    " delaware:de districtofcolumbia:dc florida:fl georgia:ga hawaii:hi idaho:id"
    " illinois:il indiana:in iowa:ia kansas:ks kentucky:ky louisiana:la maine:me"
    " maryland:md massachusetts:ma michigan:mi minnesota:mn mississippi:ms missouri:mo"
    " montana:mt nebraska:ne nevada:nv newhampshire:nh newjersey:nj newmexico:nm"
    " newyork:ny northcarolina:nc northdakota:nd ohio:oh oklahoma:ok oregon:or"
    " pennsylvania:pa rhodeisland:ri southcarolina:sc southdakota:sd tennessee:tn"
    " texas:tx utah:ut vermont:vt virginia:va washington:wa westvirginia:wv"
    " wisconsin:wi wyoming:wy puertorico:pr guam:gu americansamoa:as"
    " northernmarianaislands:mp unitedstatesvirginislands:vi"
)
_US_STATES = dict(pair.split(":") for pair in _US_STATE_CODES.split())


class UnusableValue(ValueError):
    """A value that cannot be normalized; `reason` never contains the raw value."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def sha256_hex(value: str) -> str:
    """Lowercase hex SHA-256 of the UTF-8 bytes of `value`."""
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def looks_hashed(value: str) -> bool:
    """True when `value` is already a SHA-256 hex digest (any case, surrounding spaces)."""
    return _SHA256_HEX.fullmatch(value.strip()) is not None


def _non_empty(field: str, value: str) -> str:
    if not value:
        raise UnusableValue(field, "empty after normalization")
    return value


def _letters_only(raw: str) -> str:
    """Lowercase Unicode letters (and their combining marks) of `raw`, NFC-composed."""
    lowered = unicodedata.normalize("NFC", raw).lower()
    kept = "".join(c for c in lowered if unicodedata.category(c)[0] in "LM")
    # Removing characters can leave a letter next to a combining mark it now composes with.
    return unicodedata.normalize("NFC", kept)


def normalize_email(raw: str) -> str:
    """Trim and lowercase (Meta and TikTok alike); must look like `x@y.z`."""
    value = _non_empty("email", raw.lower().strip())
    if _EMAIL.fullmatch(value) is None:
        raise UnusableValue("email", "not an email address")
    return value


def to_e164(raw: str, default_region: str | None) -> str:
    """E.164 with '+' (e.g. "+16505551212"), parsed by `phonenumbers`.

    `default_region` (the click's country) is used only when the number carries no
    international prefix. Letters are read as vanity letters and extensions are dropped,
    as libphonenumber does; a number of impossible length is refused.
    """
    region = default_region.strip().upper() if default_region else None
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        no_region = exc.error_type == phonenumbers.NumberParseException.INVALID_COUNTRY_CODE
        raise UnusableValue(
            "phone", "no country code and no region" if no_region else "does not parse"
        ) from None
    # Only a full number: a local-only one (7 US digits, no area code) is "possible" to
    # libphonenumber but would hash to a number nobody has.
    possible = phonenumbers.is_possible_number_with_reason(number)
    if possible != phonenumbers.ValidationResult.IS_POSSIBLE:
        raise UnusableValue("phone", "not a possible phone number")
    e164: str = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    return e164


def normalize_name(raw: str, *, field: str = "fn") -> str:
    """Lowercase, no punctuation or symbols, UTF-8 letters kept (`Valéry` -> `valéry`).

    The SDK keeps punctuation (`o'brien`); the doc says "no punctuation", so `obrien`.
    Runs of whitespace collapse to one space, which neither source forbids.
    """
    lowered = unicodedata.normalize("NFC", raw).lower()
    kept = "".join(c for c in lowered if unicodedata.category(c)[0] not in "PSC")
    return _non_empty(field, " ".join(unicodedata.normalize("NFC", kept).split()))


def normalize_city(raw: str) -> str:
    """Letters only, lowercase: `Washington D.C` -> `washingtondc`, `St. John's` -> `stjohns`."""
    return _non_empty("ct", _letters_only(raw))


def normalize_state(raw: str, *, country: str | None = None) -> str:
    """Letters only, lowercase; a US state's full name becomes its 2-letter code.

    The mapping applies when `country` is US or unknown; elsewhere a region named like a
    US state keeps its own name.
    """
    value = _non_empty("st", _letters_only(raw))
    if country is None or country.strip().lower() == "us":
        return _US_STATES.get(value, value)
    return value


def normalize_zip(raw: str, *, country: str | None = None) -> str:
    """Lowercase, no spaces; cut at the first '-' (the SDK's rule); US: first 5 digits."""
    value = "".join(raw.lower().split()).split("-", 1)[0]
    value = re.sub(r"[^a-z0-9]", "", value)
    if country is not None and country.strip().lower() == "us" and value[:5].isdigit():
        value = value[:5]
    return _non_empty("zp", value)


def normalize_country(raw: str) -> str:
    """Lowercase ISO 3166-1 alpha-2; names such as "United States" are refused (as the SDK)."""
    value = _non_empty("country", re.sub(r"[^a-z]", "", raw.lower()))
    if value not in ISO_ALPHA2:
        raise UnusableValue("country", "not an ISO 3166-1 alpha-2 code")
    return value


def normalize_external_id(raw: str) -> str:
    """Trimmed only: IDs may be case-sensitive and must match what the browser pixel sends."""
    return _non_empty("external_id", raw.strip())


def normalize_currency(raw: str) -> str:
    """Uppercase ISO 4217 code; both platforms accept uppercase."""
    value = raw.strip().upper()
    if _CURRENCY.fullmatch(value) is None:
        raise UnusableValue("currency", "not a 3-letter currency code")
    return value


def json_number(value: Decimal) -> int | float:
    """A Decimal amount as a JSON number: int when integral, else float (`20` or `12.5`)."""
    if not value.is_finite():
        raise UnusableValue("value", "not a finite number")
    return int(value) if value == value.to_integral_value() else float(value)


# Per hashed Meta key: normalizer taking (raw, click country).
_META_NORMALIZERS: dict[str, Callable[[str, str | None], str]] = {
    "em": lambda raw, _: normalize_email(raw),
    "ph": lambda raw, region: to_e164(raw, region).removeprefix("+"),  # Meta: digits only
    "fn": lambda raw, _: normalize_name(raw, field="fn"),
    "ln": lambda raw, _: normalize_name(raw, field="ln"),
    "ct": lambda raw, _: normalize_city(raw),
    "st": lambda raw, region: normalize_state(raw, country=region),
    "zp": lambda raw, region: normalize_zip(raw, country=region),
    "country": lambda raw, _: normalize_country(raw),
    "external_id": lambda raw, _: normalize_external_id(raw),
}


def meta_hash(field: str, raw: str, *, default_region: str | None = None) -> str:
    """Hashed Meta `user_data` value for `field` (em, ph, fn, ln, ct, st, zp, country,
    external_id). `default_region` is the click's country: the phone's default region and
    the country that decides the US rules for `st` and `zp`."""
    normalizer = _META_NORMALIZERS[field]  # KeyError: a caller bug, not bad data
    if looks_hashed(raw):
        return raw.strip().lower()
    try:
        return sha256_hex(normalizer(raw, default_region))
    except UnusableValue as exc:
        raise UnusableValue(field, exc.reason) from None


def tiktok_hash(field: str, raw: str, *, default_region: str | None = None) -> str:
    """Hashed TikTok `user` value for `field` (email, phone, external_id).

    Unlike Meta, TikTok hashes the phone in E.164 *with* '+' (platforms.md 2.4).
    """
    if looks_hashed(raw):
        return raw.strip().lower()
    try:
        if field == "email":
            return sha256_hex(normalize_email(raw))
        if field == "phone":
            return sha256_hex(to_e164(raw, default_region))
        if field == "external_id":
            return sha256_hex(normalize_external_id(raw))
    except UnusableValue as exc:
        raise UnusableValue(field, exc.reason) from None
    raise ValueError(f"not a hashed TikTok user key: {field}")


def hash_user_identifiers(
    email: str | None, phone: str | None, external_id: str | None, default_region: str | None
) -> UserHashes:
    """Hash a postback's identifiers once for both platforms.

    Blank or missing values are simply absent; unusable ones are listed in `dropped` as
    "field: reason". A pre-hashed phone is passed to both platforms as given, since its
    '+' convention cannot be known.
    """
    dropped: list[str] = []

    def hashed(raw: str | None, hasher: Callable[[str], str]) -> str | None:
        if raw is None or not raw.strip():
            return None
        try:
            return hasher(raw)
        except UnusableValue as exc:
            dropped.append(str(exc))
            return None

    email_hash = hashed(email, lambda raw: tiktok_hash("email", raw))
    phone_tiktok = hashed(
        phone, lambda raw: tiktok_hash("phone", raw, default_region=default_region)
    )
    # Both phone hashes come from the same parse, so only the first can fail.
    phone_meta = (
        meta_hash("ph", phone, default_region=default_region) if phone and phone_tiktok else None
    )
    return UserHashes(
        email=email_hash,
        phone_meta=phone_meta,
        phone_tiktok=phone_tiktok,
        external_id=hashed(external_id, lambda raw: tiktok_hash("external_id", raw)),
        dropped=tuple(dropped),
    )
