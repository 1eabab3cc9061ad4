"""Meta Conversions API payloads (platforms.md section 1 and its decisions).

Hashed `user_data` keys are sent as one-element lists of strings, the shape Meta's own
SDK emits. Absent or unusable values are left out, never sent as null or "".
"""

from urllib.parse import quote

from relay.destinations.facts import EventFacts
from relay.destinations.normalize import UnusableValue, meta_hash
from relay.destinations.order import order_fields


def meta_events_path(api_version: str, pixel_id: str) -> str:
    """Path of the events edge, e.g. "/v24.0/123/events" (the base URL is a setting)."""
    version = api_version if api_version.startswith("v") else f"v{api_version}"
    return f"/{quote(version, safe='.')}/{quote(pixel_id, safe='')}/events"


def _fbc(facts: EventFacts) -> str | None:
    # A captured cookie wins and is passed byte-for-byte: it may carry the Parameter
    # Builder's 5th segment, and the click id inside is case-sensitive.
    if facts.fbc:
        return facts.fbc
    if facts.fbclid and facts.click_time_ms is not None:
        return f"fb.1.{facts.click_time_ms}.{facts.fbclid}"
    return None


def _user_data(facts: EventFacts, dropped: list[str]) -> dict[str, object]:
    user: dict[str, object] = {}
    for key, hashed in (
        ("em", facts.user.email),
        ("ph", facts.user.phone_meta),
        ("external_id", facts.user.external_id),
    ):
        if hashed:
            user[key] = [hashed]
    # Location comes from the click's geo lookup; the country also decides the US rules
    # for state and ZIP.
    for key, raw in (
        ("country", facts.country),
        ("ct", facts.city),
        ("st", facts.region),
        ("zp", facts.zip_code),
    ):
        if raw and raw.strip():
            try:
                user[key] = [meta_hash(key, raw, default_region=facts.country)]
            except UnusableValue as exc:
                dropped.append(str(exc))
    for key, plain in (
        ("client_ip_address", facts.client_ip),
        ("client_user_agent", facts.user_agent),
        ("fbc", _fbc(facts)),
        ("fbp", facts.fbp),
    ):
        if plain:
            user[key] = plain
    if facts.fbclid and not facts.fbc and facts.click_time_ms is None:
        dropped.append("fbc: click time unknown")
    return user


def build_meta_event(facts: EventFacts) -> tuple[dict[str, object], list[str]]:
    """One event object for the request's `data` list, and the fields left out.

    The dropped list starts with `facts.user.dropped` (identifiers that could not be
    hashed), followed by this builder's own ("ct: ...", "value: ..."), so one list
    accounts for everything this fire did not send. Like every other key, `user_data` is
    left out when empty; Meta then rejects the event as missing it, which is the truth.
    """
    dropped = list(facts.user.dropped)
    event: dict[str, object] = {
        "event_name": facts.event_name,
        "event_time": int(facts.event_time),
        "event_id": facts.event_id,
        "action_source": "website",
    }
    if facts.event_source_url:
        event["event_source_url"] = facts.event_source_url
    if facts.referrer_url:
        event["referrer_url"] = facts.referrer_url
    if user_data := _user_data(facts, dropped):
        event["user_data"] = user_data
    event["custom_data"] = order_fields(facts, dropped)
    return event, dropped


def build_meta_body(facts: EventFacts) -> tuple[dict[str, object], list[str]]:
    """The JSON body `{"data": [event], "test_event_code"?}`.

    It carries no `access_token`: the sender adds the token to the outgoing request only,
    so the body can be logged and stored.
    """
    event, dropped = build_meta_event(facts)
    body: dict[str, object] = {"data": [event]}
    if facts.test_event_code:
        body["test_event_code"] = facts.test_event_code
    return body, dropped
