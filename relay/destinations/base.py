"""The destination interface: what Relay needs from each place it sends conversions to.

A destination is an ad platform (Meta, TikTok: a pixel with an access token) or a traffic
source's outbound postback URL. Each is one package under relay/destinations/ whose
`DESTINATION` implements `Destination`, listed in relay/destinations/registry.py. The send
activities (activities/sending.py) run one path for all of them: load the configuration
and the secret, `build` the request from the conversion's facts, refuse it when older than
`max_event_age`, `authorize` it with the secret (after the log copy is taken), send, and
`classify` the answer. The workflow retries by the verdict; nothing there is
per-destination. docs/adding-a-destination.md walks through adding one.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from enum import StrEnum
from typing import Protocol, TypeVar

from relay.core.settings import Settings
from relay.destinations.classify import Classification
from relay.destinations.facts import SendFacts

# What the log shows in place of a secret: the token in a body, a key in a URL.
REDACTED = "[REDACTED]"
Config = TypeVar("Config", contravariant=True)


class FieldKind(StrEnum):
    """How the console and the API take a setting."""

    TEXT = "text"
    SECRET = "secret"  # noqa: S105 (a kind): stored encrypted, never shown again
    CHOICE = "choice"


@dataclass(frozen=True)
class SettingField:
    """One setting of a destination's configuration, as the console's form shows it.

    `name` is the configuration's attribute and the API's field. The console renders the
    form of each destination from these, in order.
    """

    name: str
    label: str
    kind: FieldKind = FieldKind.TEXT
    help: str = ""
    required: bool = False
    choices: tuple[tuple[str, str], ...] = ()  # (value, label), for CHOICE
    placeholder: str = ""
    unset: str = "none"  # what the pixel's card says when it has no value


@dataclass(frozen=True)
class ClickIdentifier:
    """A click ID the platform issues on its ad clicks, captured by `/c/` on the landing
    click and sent with the conversion; the platform matches it for `lifetime`."""

    param: str  # the landing URL's query parameter, e.g. "fbclid"
    lifetime: timedelta
    cookie: str = ""  # the first-party cookie that carries it too, e.g. "_fbc"


@dataclass(frozen=True)
class Outgoing:
    """One request, ready to send. `url` is absolute or relative to the destination's
    base URL. `logged_body` and `logged_url` are what the attempt log keeps: built before
    `authorize` adds the secret, so they never hold it."""

    method: str
    url: str
    json: Mapping[str, object] | None
    headers: Mapping[str, str] = field(default_factory=dict)
    logged_body: str = ""
    logged_url: str = ""  # "" : the URL as sent
    erased_url: str = ""  # the logged URL with the visitor's values erased (postbacks)
    dropped: tuple[str, ...] = ()  # fields left out, each with why ("ct: not a city")

    def with_json(self, **extra: object) -> "Outgoing":
        return replace(self, json={**(self.json or {}), **extra})

    def with_headers(self, **extra: str) -> "Outgoing":
        return replace(self, headers={**self.headers, **extra})


class Destination(Protocol[Config]):
    """One kind of destination; `Config` is what a media buyer configures for it (a
    `Pixel` for an ad platform, an `OutboundPostback` for a traffic source)."""

    kind: str  # the stored name, e.g. "meta"
    label: str  # the name people read, e.g. "Meta"
    id_help: str  # what its pixel ID is, for the console ("the pixel (dataset) ID, digits")
    credential: SettingField | None  # the secret it sends with, stored encrypted
    fields: tuple[SettingField, ...]  # its own settings, beyond name and primary
    click_ids: tuple[ClickIdentifier, ...]
    max_event_age: timedelta | None  # None: no limit
    transport_errors: tuple[type[Exception], ...]  # classified by `classify_failure`
    base_url_setting: str  # the Settings field of its base URL ("" : absolute URLs)
    timeout_setting: str  # the Settings field of its request timeout

    def default_event_name(self, event_type: str, config: Config) -> str:
        """The platform event an inbound event type becomes when nothing overrides it."""
        ...

    def build(self, facts: SendFacts, config: Config, settings: Settings) -> Outgoing:
        """Normalize, hash and lay out the request; no secret in it."""
        ...

    def authorize(self, outgoing: Outgoing, secret: str) -> Outgoing:
        """The request with its credential added where the platform takes it."""
        ...

    def classify(self, status: int, body: bytes, headers: Mapping[str, str]) -> Classification:
        """The answer's verdict: delivered, retryable (with the delay asked for) or
        permanent; "not sendable" is a permanent verdict naming why."""
        ...

    def classify_failure(self, error: Exception) -> Classification:
        """The verdict when no answer came (one of `transport_errors`)."""
        ...

    def test_mode(self, config: Config) -> bool:
        """Whether sends go to the platform's test mode (nothing counted)."""
        ...
