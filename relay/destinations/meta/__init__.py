"""Meta Conversions API (platforms.md section 1): a dataset (pixel) ID and an access token.

The request is `POST {RELAY_META_BASE_URL}/{version}/{pixel_id}/events` with the token in
the body's `access_token`; payload.py builds the body, answers.py classifies the answer,
events.py names the events.
"""

import json
from collections.abc import Mapping
from datetime import timedelta

from relay.core.settings import Settings
from relay.destinations.ad_platform import TEST_EVENT_CODE, AdPlatform
from relay.destinations.base import (
    REDACTED,
    ClickIdentifier,
    FieldKind,
    Outgoing,
    SettingField,
)
from relay.destinations.classify import Classification
from relay.destinations.facts import SendFacts, event_facts
from relay.destinations.meta.answers import classify_meta
from relay.destinations.meta.events import meta_event_name
from relay.destinations.meta.payload import build_meta_body, meta_events_path
from relay.domain.models import Pixel


class MetaDestination(AdPlatform):
    kind: str = "meta"
    label: str = "Meta"
    id_help: str = "the pixel (dataset) ID, digits"
    credential: SettingField | None = SettingField(
        "access_token",
        "Access token",
        FieldKind.SECRET,
        required=True,
        help="A system user's token from Events Manager "
        "(Settings, Conversions API, Generate access token).",
    )
    fields: tuple[SettingField, ...] = (TEST_EVENT_CODE,)
    click_ids: tuple[ClickIdentifier, ...] = (
        ClickIdentifier("fbclid", timedelta(days=90), cookie="_fbc"),
    )
    max_event_age: timedelta | None = timedelta(days=7)
    base_url_setting: str = "meta_base_url"
    timeout_setting: str = "meta_timeout_s"

    def default_event_name(self, event_type: str, config: Pixel) -> str:
        return meta_event_name(event_type)

    def build(self, facts: SendFacts, config: Pixel, settings: Settings) -> Outgoing:
        body, dropped = build_meta_body(event_facts(facts, config))
        logged = {**body, "access_token": REDACTED}
        return Outgoing(
            method="POST",
            url=meta_events_path(settings.meta_api_version, config.platform_pixel_id),
            json=body,
            logged_body=json.dumps(logged, separators=(",", ":"), sort_keys=True),
            dropped=tuple(dropped),
        )

    def authorize(self, outgoing: Outgoing, secret: str) -> Outgoing:
        return outgoing.with_json(access_token=secret)

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> Classification:
        return classify_meta(status, body, headers)


DESTINATION = MetaDestination()
