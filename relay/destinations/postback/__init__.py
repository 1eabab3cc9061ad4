"""Outbound postbacks (product.md section 3): a traffic source's URL template, filled with
the conversion's values and sent as a GET, or a POST with the values as JSON.

template.py checks, expands and redacts templates; answers.py classifies the answer by its
HTTP status. Requests go only to public addresses (addresses.py, checked_http.py).
"""

import json
from collections.abc import Mapping
from datetime import timedelta

import httpx

from relay.core.settings import Settings
from relay.destinations.addresses import DestinationRefused
from relay.destinations.base import ClickIdentifier, FieldKind, Outgoing, SettingField
from relay.destinations.classify import Classification, parse_retry_after
from relay.destinations.facts import SendFacts
from relay.destinations.postback.answers import classify_postback
from relay.destinations.postback.template import expand, macro_values, redact_url
from relay.domain.models import OutboundPostback, Verdict
from relay.domain.personal_data import erase_macros


class PostbackDestination:
    kind: str = "postback"
    label: str = "Outbound postback"
    id_help: str = ""
    credential: SettingField | None = None  # a template carries its own keys
    fields: tuple[SettingField, ...] = (
        SettingField(
            "url_template",
            "URL template",
            required=True,
            help="Macros: {click_id} {conversion_id} {event_id} {payout} {currency} "
            "{event} {txid} {external_id} {sub1}..{sub5}",
            placeholder="https://source.example/pb?cid={click_id}&sum={payout}",
        ),
        SettingField(
            "method", "Method", FieldKind.CHOICE, choices=(("GET", "GET"), ("POST", "POST"))
        ),
        SettingField("events", "Events", help="Comma-separated; empty: every conversion event"),
    )
    click_ids: tuple[ClickIdentifier, ...] = ()
    max_event_age: timedelta | None = None
    # InvalidURL, UnicodeError: a host no request can go to, saved before templates were
    # checked for it; DestinationRefused: an address outside the allowed networks.
    transport_errors: tuple[type[Exception], ...] = (
        httpx.HTTPError,
        httpx.InvalidURL,
        UnicodeError,
        DestinationRefused,
    )
    base_url_setting: str = ""
    timeout_setting: str = "postback_timeout_s"

    def default_event_name(self, event_type: str, config: OutboundPostback) -> str:
        return event_type

    def build(self, facts: SendFacts, config: OutboundPostback, settings: Settings) -> Outgoing:
        values = macro_values(facts.conversion, facts.click)
        url = expand(config.url_template, values)
        body = values if config.method == "POST" else None
        return Outgoing(
            method=config.method,
            url=url,
            json=body,
            logged_body=json.dumps(body) if body else "",
            logged_url=redact_url(url),
            erased_url=redact_url(expand(config.url_template, erase_macros(values))),
        )

    def authorize(self, outgoing: Outgoing, secret: str) -> Outgoing:
        return outgoing  # a template carries its own keys

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> Classification:
        verdict = classify_postback(status, None)
        retry_after = parse_retry_after(headers.get("retry-after"))
        if verdict.verdict == Verdict.RETRYABLE and retry_after is not None:
            return Classification(verdict.verdict, verdict.reason, retry_after)
        return verdict

    def classify_failure(self, error: Exception) -> Classification:
        return classify_postback(None, error)

    def test_mode(self, config: OutboundPostback) -> bool:
        return False


DESTINATION = PostbackDestination()
