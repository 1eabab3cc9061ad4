"""TikTok Events API payloads, both flavours (platforms.md sections 2.2 and 2.3).

Events API 2.0 (`/event/track/`) is the default; the seed's `/pixel/track/` is kept for
accounts that still use it. Hashed identifiers are sent as plain strings (both flavours
accept them; the legacy SDK models them as strings). Absent or unusable values are left
out, never sent as null or "".
"""

from datetime import UTC, datetime

from relay.destinations.facts import EventFacts
from relay.destinations.order import order_fields
from relay.domain.models import TikTokApi

_PATHS = {
    TikTokApi.EVENTS_2_0: "/open_api/v1.3/event/track/",
    TikTokApi.PIXEL_TRACK: "/open_api/v1.3/pixel/track/",
}


def tiktok_path(api: TikTokApi) -> str:
    """Path of the flavour's endpoint under the TikTok base URL."""
    return _PATHS[api]


def _present(pairs: dict[str, str | None]) -> dict[str, object]:
    return {key: value for key, value in pairs.items() if value}


def _page(facts: EventFacts) -> dict[str, object]:
    return _present({"url": facts.event_source_url, "referrer": facts.referrer_url})


def _events_2_0(facts: EventFacts, dropped: list[str]) -> dict[str, object]:
    user = _present(
        {
            "ttclid": facts.ttclid,
            "ttp": facts.ttp,
            "email": facts.user.email,
            "phone": facts.user.phone_tiktok,
            "external_id": facts.user.external_id,
            "ip": facts.client_ip,
            "user_agent": facts.user_agent,
        }
    )
    event: dict[str, object] = {
        "event": facts.event_name,
        "event_time": int(facts.event_time),
        "event_id": facts.event_id,
    }
    if user:
        event["user"] = user
    if page := _page(facts):
        event["page"] = page
    event["properties"] = order_fields(facts, dropped)
    return {"event_source": "web", "event_source_id": facts.pixel_id, "data": [event]}


def _pixel_track(facts: EventFacts, dropped: list[str]) -> dict[str, object]:
    context: dict[str, object] = {}
    if facts.ttclid:
        context["ad"] = {"callback": facts.ttclid}  # the legacy place of the click id
    if page := _page(facts):
        context["page"] = page
    user = _present(
        {
            "external_id": facts.user.external_id,
            "phone_number": facts.user.phone_tiktok,
            "email": facts.user.email,
            "ttp": facts.ttp,
        }
    )
    if user:
        context["user"] = user
    context.update(_present({"user_agent": facts.user_agent, "ip": facts.client_ip}))
    timestamp = datetime.fromtimestamp(facts.event_time, tz=UTC)
    body: dict[str, object] = {
        "pixel_code": facts.pixel_id,
        "event": facts.event_name,
        "event_id": facts.event_id,
        "timestamp": timestamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    if context:
        body["context"] = context
    body["properties"] = order_fields(facts, dropped)
    return body


def build_tiktok_body(facts: EventFacts) -> tuple[dict[str, object], list[str]]:
    """The JSON body for `facts.tiktok_api`, and the fields left out.

    The dropped list starts with `facts.user.dropped`, then this builder's own
    ("value: ..."). `test_event_code` is top-level in both flavours. The body carries no
    token: TikTok takes it in the `Access-Token` header.
    """
    dropped = list(facts.user.dropped)
    if facts.tiktok_api == TikTokApi.EVENTS_2_0:
        body = _events_2_0(facts, dropped)
    else:
        body = _pixel_track(facts, dropped)
    if facts.test_event_code:
        body["test_event_code"] = facts.test_event_code
    return body, dropped
