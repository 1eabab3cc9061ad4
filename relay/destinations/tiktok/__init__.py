"""TikTok Events API (platforms.md section 2): a pixel code and an access token.

Events API 2.0 (`/event/track/`, the default) or the older `/pixel/track/`, chosen per
pixel; the token travels in the `Access-Token` header. payload.py builds the body,
answers.py classifies the answer, events.py names the events per flavour.
"""

import json
from collections.abc import Mapping
from datetime import timedelta

from relay.core.settings import Settings
from relay.destinations.ad_platform import TEST_EVENT_CODE, AdPlatform
from relay.destinations.base import ClickIdentifier, FieldKind, Outgoing, SettingField
from relay.destinations.classify import Classification
from relay.destinations.facts import SendFacts, event_facts
from relay.destinations.tiktok.answers import classify_tiktok
from relay.destinations.tiktok.events import tiktok_event_name
from relay.destinations.tiktok.payload import build_tiktok_body, tiktok_path
from relay.domain.models import Pixel, TikTokApi

API_NAMES = {
    TikTokApi.EVENTS_2_0: "Events API 2.0 (recommended; events Purchase, Lead…)",
    TikTokApi.PIXEL_TRACK: "Pixel track, legacy (events CompletePayment, SubmitForm…)",
}


class TikTokDestination(AdPlatform):
    kind: str = "tiktok"
    label: str = "TikTok"
    id_help: str = "the pixel code, e.g. CABC123DEF"
    credential: SettingField | None = SettingField(
        "access_token",
        "Access token",
        FieldKind.SECRET,
        required=True,
        help="From Events Manager (the pixel's Settings, Generate access token).",
    )
    fields: tuple[SettingField, ...] = (
        TEST_EVENT_CODE,
        SettingField(
            "tiktok_api",
            "TikTok API",
            FieldKind.CHOICE,
            help="Events API 2.0 is TikTok's current API and the default. Choose the "
            "legacy pixel track API only if this pixel still uses it; the default event "
            "names follow the choice.",
            choices=tuple((api.value, name) for api, name in API_NAMES.items()),
        ),
    )
    click_ids: tuple[ClickIdentifier, ...] = (ClickIdentifier("ttclid", timedelta(days=28)),)
    max_event_age: timedelta | None = timedelta(days=7)
    base_url_setting: str = "tiktok_base_url"
    timeout_setting: str = "tiktok_timeout_s"

    def default_event_name(self, event_type: str, config: Pixel) -> str:
        return tiktok_event_name(event_type, config.tiktok_api)

    def build(self, facts: SendFacts, config: Pixel, settings: Settings) -> Outgoing:
        body, dropped = build_tiktok_body(event_facts(facts, config))
        return Outgoing(
            method="POST",
            url=tiktok_path(config.tiktok_api),
            json=body,
            logged_body=json.dumps(body, separators=(",", ":"), sort_keys=True),
            dropped=tuple(dropped),
        )

    def authorize(self, outgoing: Outgoing, secret: str) -> Outgoing:
        return outgoing.with_headers(**{"Access-Token": secret})

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> Classification:
        return classify_tiktok(status, body, headers)


DESTINATION = TikTokDestination()
