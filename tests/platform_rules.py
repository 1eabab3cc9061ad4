"""Request rules of the fake Meta Conversions API and TikTok Events API.

Each rule mirrors a documented platform constraint (see ``shared/spec/platforms.md``), so a
payload that passes here is one the real platform would accept. The functions are pure: the
caller passes the parsed body, the access token it found, the token the pixel is bound to
(None: the pixel has none, so no token is valid) and the current time, and gets back the
problems in the order the platform would report them (authentication first).
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

MAX_EVENTS = 1000
MAX_EVENT_AGE_S = 7 * 24 * 3600
# Tolerated clock skew between Relay's host and the platform; a larger lead is a bug.
FUTURE_TOLERANCE_S = 300
# Seconds timestamps stay below 1e11 until the year 5138, while milliseconds since 1973
# are above it, so this separates the two units without guessing.
MILLISECONDS_THRESHOLD = 10**11

SHA256_HEX = re.compile(r"[0-9a-f]{64}")
# Creation time in milliseconds (13 digits); the optional 5th segment is the appendix that
# Meta's Parameter Builder adds, which must be passed through untouched.
FBC = re.compile(r"fb\.\d\.\d{13}\.[^.\s]+(\.[A-Za-z0-9_-]+)?")
FBP = re.compile(r"fb\.\d\.\d{13}\.\d+(\.[A-Za-z0-9_-]+)?")
CURRENCY = re.compile(r"[A-Za-z]{3}")

META_ACTION_SOURCES = frozenset(
    {
        "email",
        "website",
        "app",
        "phone_call",
        "chat",
        "physical_store",
        "system_generated",
        "business_messaging",
        "other",
    }
)
META_HASHED_KEYS = ("em", "ph", "fn", "ln", "ct", "st", "zp", "country", "db", "ge")
TIKTOK_EVENT_SOURCES = frozenset({"web", "app", "offline", "crm"})

META_INVALID_PARAMETER = 100
META_INVALID_TOKEN = 190
META_SUBCODE_REQUIRED = 2804019
META_SUBCODE_TOO_OLD = 2804003
# Meta publishes no subcode table; 2804001 stands in for "invalid value" so clients can
# tell it from the two subcodes seen in the wild above.
META_SUBCODE_INVALID = 2804001
TIKTOK_INVALID_PARAMETER = 40002
TIKTOK_BAD_TOKEN = 40105

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class Problem:
    """One reason the platform rejects a request, with the error code it answers."""

    code: int
    text: str
    subcode: int | None = None


@dataclass
class _Report:
    """Collects problems, phrased the way one platform phrases them."""

    meta: bool
    problems: list[Problem] = field(default_factory=list)

    def where(self, path: Path) -> str:
        if self.meta:
            return "$" + "".join(f"[{p}]" if isinstance(p, int) else f"['{p}']" for p in path)
        parts = [f"[{p}]" if isinstance(p, int) else f".{p}" for p in path]
        return "".join(parts).lstrip(".") or "body"

    def missing(self, path: Path) -> None:
        if self.meta:
            text = f"The parameter {self.where(path)} is required."
            self.problems.append(Problem(META_INVALID_PARAMETER, text, META_SUBCODE_REQUIRED))
        else:
            text = f"{self.where(path)}: Missing data for required field."
            self.problems.append(Problem(TIKTOK_INVALID_PARAMETER, text))

    def invalid(self, path: Path, why: str, subcode: int = META_SUBCODE_INVALID) -> None:
        if self.meta:
            text = f"Invalid parameter {self.where(path)}: {why}"
            self.problems.append(Problem(META_INVALID_PARAMETER, text, subcode))
        else:
            self.problems.append(Problem(TIKTOK_INVALID_PARAMETER, f"{self.where(path)}: {why}"))


def _get(parent: Any, key: str | int) -> Any:
    return parent.get(key) if isinstance(parent, dict) else None


def _text(report: _Report, parent: Any, path: Path, *, required: bool) -> str | None:
    value = _get(parent, path[-1])
    if value is None or value == "":
        if required:
            report.missing(path)
        return None
    if not isinstance(value, str):
        report.invalid(path, "must be a string")
        return None
    return value


def _object(report: _Report, parent: Any, path: Path, *, required: bool) -> dict[str, Any] | None:
    value = _get(parent, path[-1])
    if value is None or value == {}:
        if required:
            report.missing(path)
        return None
    if not isinstance(value, dict):
        report.invalid(path, "must be a JSON object")
        return None
    return value


def _events(report: _Report, body: dict[str, Any]) -> list[Any]:
    """The ``data`` list, or nothing when its size alone rejects the whole batch."""
    data = body.get("data")
    if data is None:
        report.missing(("data",))
    elif not isinstance(data, list) or not data:
        report.invalid(("data",), "must be a non-empty list of events")
    elif len(data) > MAX_EVENTS:
        report.invalid(("data",), f"holds {len(data)} events; at most {MAX_EVENTS} are allowed")
    else:
        return data
    return []


def _check_age(report: _Report, path: Path, seconds: float, now: float) -> None:
    if seconds < now - MAX_EVENT_AGE_S:
        report.invalid(path, "Event sent after seven days.", META_SUBCODE_TOO_OLD)
    elif seconds > now + FUTURE_TOLERANCE_S:
        report.invalid(path, "must not be in the future")


def _check_unix_seconds(report: _Report, parent: Any, path: Path, now: float) -> None:
    value = _get(parent, path[-1])
    if value is None:
        report.missing(path)
    elif isinstance(value, bool) or not isinstance(value, int):
        report.invalid(path, "must be an integer Unix timestamp in seconds")
    elif value >= MILLISECONDS_THRESHOLD:
        report.invalid(path, "looks like milliseconds; send Unix seconds")
    else:
        _check_age(report, path, value, now)


def _check_iso_timestamp(report: _Report, parent: Any, path: Path, now: float) -> None:
    value = _text(report, parent, path, required=False)
    if value is None:
        return
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        report.invalid(path, "must be an ISO 8601 timestamp")
        return
    # A naive timestamp would be read in the platform's zone, not the conversion's.
    if moment.tzinfo is None:
        report.invalid(path, "must carry a UTC offset, e.g. 2026-11-29T08:00:00Z")
        return
    _check_age(report, path, moment.timestamp(), now)


def _check_hashed(report: _Report, parent: Any, path: Path) -> None:
    value = _get(parent, path[-1])
    if value is None:
        return
    items = value if isinstance(value, list) else [value]
    if not items:
        report.invalid(path, "must not be an empty list")
    for index, item in enumerate(items):
        item_path = (*path, index) if isinstance(value, list) else path
        # The raw value is not echoed: a real platform never repeats unhashed PII.
        if not isinstance(item, str) or not SHA256_HEX.fullmatch(item):
            report.invalid(item_path, "must be a lowercase hex SHA-256 of the normalized value")


def _check_ip(report: _Report, parent: Any, path: Path) -> None:
    value = _text(report, parent, path, required=False)
    if value is None:
        return
    try:
        ipaddress.ip_address(value)
    except ValueError:
        report.invalid(path, "must be a raw (never hashed) IPv4 or IPv6 address")


def _check_money(report: _Report, parent: Any, path: Path) -> None:
    amounts = _object(report, parent, path, required=False)
    if amounts is None:
        return
    value = amounts.get("value")
    if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
        report.invalid((*path, "value"), "must be a number")
    currency = _text(report, amounts, (*path, "currency"), required=False)
    if currency is not None and not CURRENCY.fullmatch(currency):
        report.invalid((*path, "currency"), "must be a 3-letter ISO 4217 code")


def _check_cookie(report: _Report, parent: Any, path: Path, pattern: re.Pattern[str]) -> None:
    value = _text(report, parent, path, required=False)
    if value is not None and not pattern.fullmatch(value):
        report.invalid(path, f"must match fb.<subdomain>.<creation time in ms>.<id>: {value!r}")


def parse_meta_body(raw: bytes, content_type: str) -> Any:
    """Meta takes JSON or form fields; the SDK posts forms with ``data`` as a JSON string
    of JSON-encoded events, so both layers are decoded to give rules one shape."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True)
        body: Any = {key: values[-1] for key, values in fields.items()}
        events = parse_json(body.get("data", "").encode())
        # Undecodable ``data`` stays a string so the rules report it as not a list.
        if events is not None:
            body["data"] = events
    else:
        body = parse_json(raw)
    if isinstance(body, dict) and isinstance(body.get("data"), list):
        body["data"] = [parse_json(e.encode()) if isinstance(e, str) else e for e in body["data"]]
    return body


def parse_json(raw: bytes) -> Any:
    """Parsed JSON, or None when it is not JSON (the rules then report a malformed body)."""
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _meta_token_problems(access_token: str | None, expected_token: str | None) -> list[Problem]:
    if not access_token:
        text = "An access token is required to request this resource."
        return [Problem(META_INVALID_TOKEN, text)]
    if access_token != expected_token:
        text = "Invalid OAuth access token - Cannot parse access token"
        return [Problem(META_INVALID_TOKEN, text)]
    return []


def meta_problems(
    body: Any, access_token: str | None, expected_token: str | None, now: float
) -> list[Problem]:
    """Problems of a Meta ``/{pixel}/events`` request; empty when Meta would accept it."""
    problems = _meta_token_problems(access_token, expected_token)
    report = _Report(meta=True)
    if not isinstance(body, dict):
        report.invalid((), "the body must be a JSON object or form fields")
        return problems + report.problems
    for index, event in enumerate(_events(report, body)):
        _check_meta_event(report, event, ("data", index), now)
    _text(report, body, ("test_event_code",), required=False)
    return problems + report.problems


def _check_meta_event(report: _Report, event: Any, at: Path, now: float) -> None:
    if not isinstance(event, dict):
        report.invalid(at, "must be a JSON object")
        return
    _text(report, event, (*at, "event_name"), required=True)
    _check_unix_seconds(report, event, (*at, "event_time"), now)
    _text(report, event, (*at, "event_id"), required=False)
    source = _text(report, event, (*at, "action_source"), required=True)
    if source is not None and source not in META_ACTION_SOURCES:
        report.invalid((*at, "action_source"), f"unknown action source {source!r}")
    user = _object(report, event, (*at, "user_data"), required=True)
    if user is not None:
        _check_meta_user(report, user, (*at, "user_data"))
    if source == "website":
        url = _text(report, event, (*at, "event_source_url"), required=True)
        if url is not None and not url.startswith(("http://", "https://")):
            report.invalid((*at, "event_source_url"), "must be an absolute http(s) URL")
        if user is not None:  # a missing user_data is reported once, above
            _text(report, user, (*at, "user_data", "client_user_agent"), required=True)
    _check_money(report, event, (*at, "custom_data"))


def _check_meta_user(report: _Report, user: dict[str, Any], at: Path) -> None:
    for key in META_HASHED_KEYS:
        _check_hashed(report, user, (*at, key))
    # Meta recommends hashing external_id but accepts it raw (its own SDK sends it raw).
    external_id = user.get("external_id")
    if external_id is not None and not (
        isinstance(external_id, str)
        or (isinstance(external_id, list) and all(isinstance(i, str) for i in external_id))
    ):
        report.invalid((*at, "external_id"), "must be a string or a list of strings")
    _check_ip(report, user, (*at, "client_ip_address"))
    _text(report, user, (*at, "client_user_agent"), required=False)
    _check_cookie(report, user, (*at, "fbc"), FBC)
    _check_cookie(report, user, (*at, "fbp"), FBP)


def _tiktok_token_problems(access_token: str | None, expected_token: str | None) -> list[Problem]:
    if access_token and access_token == expected_token:
        return []
    return [Problem(TIKTOK_BAD_TOKEN, "Access token is incorrect or has been revoked.")]


def tiktok_event_problems(
    body: Any, access_token: str | None, expected_token: str | None, now: float
) -> list[Problem]:
    """Problems of a TikTok Events API 2.0 ``/event/track/`` request."""
    problems = _tiktok_token_problems(access_token, expected_token)
    report = _Report(meta=False)
    if not isinstance(body, dict):
        report.invalid((), "the body must be a JSON object")
        return problems + report.problems
    source = _text(report, body, ("event_source",), required=True)
    if source is not None and source not in TIKTOK_EVENT_SOURCES:
        report.invalid(("event_source",), f"must be one of {sorted(TIKTOK_EVENT_SOURCES)}")
    _text(report, body, ("event_source_id",), required=True)
    _text(report, body, ("test_event_code",), required=False)
    for index, event in enumerate(_events(report, body)):
        at: Path = ("data", index)
        if not isinstance(event, dict):
            report.invalid(at, "must be a JSON object")
            continue
        _text(report, event, (*at, "event"), required=True)
        _check_unix_seconds(report, event, (*at, "event_time"), now)
        _text(report, event, (*at, "event_id"), required=True)
        user = _object(report, event, (*at, "user"), required=False)
        for key in ("email", "phone", "external_id"):
            _check_hashed(report, user, (*at, "user", key))
        _check_ip(report, user, (*at, "user", "ip"))
        _text(report, user, (*at, "user", "user_agent"), required=False)
        _text(report, user, (*at, "user", "ttclid"), required=False)
        page = _object(report, event, (*at, "page"), required=source == "web")
        _text(report, page, (*at, "page", "url"), required=source == "web")
        _check_money(report, event, (*at, "properties"))
    return problems + report.problems


def tiktok_pixel_problems(
    body: Any, access_token: str | None, expected_token: str | None, now: float
) -> list[Problem]:
    """Problems of a TikTok legacy (Events API 1.0) ``/pixel/track/`` request."""
    problems = _tiktok_token_problems(access_token, expected_token)
    report = _Report(meta=False)
    if not isinstance(body, dict):
        report.invalid((), "the body must be a JSON object")
        return problems + report.problems
    for key in ("pixel_code", "event", "event_id"):
        _text(report, body, (key,), required=True)
    _text(report, body, ("test_event_code",), required=False)
    _check_iso_timestamp(report, body, ("timestamp",), now)
    context = _object(report, body, ("context",), required=False)
    user = _object(report, context, ("context", "user"), required=False)
    for key in ("email", "phone_number", "external_id"):
        _check_hashed(report, user, ("context", "user", key))
    _check_ip(report, context, ("context", "ip"))
    _text(report, context, ("context", "user_agent"), required=False)
    ad = _object(report, context, ("context", "ad"), required=False)
    _text(report, ad, ("context", "ad", "callback"), required=False)
    page = _object(report, context, ("context", "page"), required=False)
    _text(report, page, ("context", "page", "url"), required=False)
    _check_money(report, body, ("properties",))
    return problems + report.problems
