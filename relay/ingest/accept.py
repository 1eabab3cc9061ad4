"""Accepting a postback: identify the conversion and make it durable in the inbox.

Nothing here waits on Temporal, and ClickHouse is read only when a decision needs the click:
the network comes from the in-process configuration cache, the dedup decisions that can be
made at once come from the inbox, and the forwarder (relay/ingest/forwarder.py) starts the
workflow a moment later. What depends on the click (its campaign, attribution, repeatable events) is
decided by the workflow's first step and recorded on the conversion. The dedup and
attribution rules themselves are relay/conversions/dedup.py's.

A campaign may name the networks allowed to post for its clicks. A postback from a network
that some campaign does not allow needs its click's campaign: from this process's memory, else
one read of the click (at most CLICK_READ_S). When the click is found and its campaign does not
allow the network, the postback is refused (403) and nothing is written; when it cannot be
found now, the workflow's first step decides and records the conversion as refused.
"""

import asyncio
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal

from relay.conversions import dedup
from relay.core.crypto import KeyRing
from relay.core.errors import Forbidden, Unauthorized, Unavailable
from relay.core.ids import conversion_id
from relay.destinations.facts import UserHashes
from relay.destinations.normalize import hash_user_identifiers
from relay.domain.events import normalize_event_type
from relay.domain.models import Conversion, Network
from relay.domain.postback_params import PostbackParams
from relay.ingest.forwarder import Forwarder
from relay.ingest.inbox import Candidate, Inbox, InboxClosed, InboxFull
from relay.store.click_cache import ClickCache
from relay.store.config_cache import ConfigCache, ConfigSnapshot
from relay.store.pool import STORE_ERRORS
from relay.store.rows import utc_now
from relay.store.traffic import TrafficStore


class RetryLater(Unavailable):
    """The inbox is full or cannot be written (disk full), or the API is overloaded: resend
    after `retry_after_s` (503 with Retry-After)."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


OVERLOAD_RETRY_AFTER_S = 1


class Admission:
    """At most `limit` postbacks in hand at once (parsed, waiting for the inbox's commit).
    Past it a postback is refused at once with 503 and `Retry-After: 1`, instead of joining
    a queue whose wait would outlast the sender's timeout; the sender resends, as it would
    after a timeout, without the wait."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_flight = 0
        self.refused = 0

    @contextmanager
    def admit(self) -> Iterator[None]:
        if self.in_flight >= self.limit:
            self.refused += 1
            raise RetryLater(
                f"{self.in_flight} postbacks are being accepted, the most this API takes at "
                f"once (RELAY_POSTBACK_MAX_IN_FLIGHT); resend after {OVERLOAD_RETRY_AFTER_S} s",
                OVERLOAD_RETRY_AFTER_S,
            )
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1


@dataclass(frozen=True)
class PostbackAnswer:
    conversion_id: str
    status: Literal["accepted", "existing"]
    is_duplicate: bool | None
    attributed: bool | None


async def _network(config: ConfigCache, keys: KeyRing, key: str) -> tuple[Network, ConfigSnapshot]:
    """The network the key belongs to, and the configuration it was found in."""
    # Only keyed hashes of postback keys are stored: look the presented key's hashes up
    # (one per key of the ring, so keys hashed before a ring rotation are still found).
    hashes = keys.keyed_hashes(key)
    try:
        snapshot = await config.current()
        network = snapshot.network_for_key(hashes)
        if network is None:  # perhaps created a moment ago by another process
            snapshot = await config.after_miss()
            network = snapshot.network_for_key(hashes)
    except STORE_ERRORS as exc:
        raise Unavailable(f"configuration could not be read ({type(exc).__name__})") from exc
    if network is None:
        raise Unauthorized("the postback key does not match any network", "key")
    return network, snapshot


# How long accepting waits for the click's campaign; past it the workflow decides.
CLICK_READ_S = 0.5


async def _click_campaign(intake: "Intake", click_id: str) -> str | None:
    """The campaign of the click, if this process knows it or it can be read at once."""
    clicks = intake.clicks
    if clicks is not None and (click := clicks.cached(click_id)) is not None:
        return click.campaign_id
    try:
        # Its campaign column only: the whole click costs more to read and, in `relay api`,
        # the worker that would reuse it runs in another process.
        read = intake.traffic.click_campaign
        return await asyncio.wait_for(asyncio.to_thread(read, click_id), CLICK_READ_S)
    except TimeoutError:
        return None
    except STORE_ERRORS:
        return None


async def _check_network_allowed(
    intake: "Intake", config: ConfigSnapshot, network: Network, click_id: str
) -> None:
    """Refuse (403) a postback from a network its click's campaign does not allow."""
    if not config.restricts(network.id):
        return
    campaign_id = await _click_campaign(intake, click_id)
    campaign = config.campaigns.get(campaign_id) if campaign_id else None
    if dedup.network_refusal(campaign, network.id):
        raise Forbidden(
            "this network is not allowed to post conversions for the campaign of this "
            "click; the campaign's allowed networks are set on the campaign",
            "key",
        )


NO_REGION = "phone: no country code and no region"


async def _hashes(traffic: TrafficStore, params: PostbackParams) -> UserHashes:
    """Identifiers hashed on arrival; raw values are never stored, not even in the inbox.

    A phone number without a country code needs the click's country: only then is the
    click read here. If it cannot be read, the phone is dropped with the reason logged."""
    hashes = hash_user_identifiers(params.email, params.phone, params.external_id, None)
    if NO_REGION not in hashes.dropped:
        return hashes
    try:
        click = await asyncio.to_thread(traffic.get_click, params.click_id)
    except STORE_ERRORS:
        return hashes
    if click is None or not click.country:
        return hashes
    return hash_user_identifiers(params.email, params.phone, params.external_id, click.country)


def pending_conversion(network: Network, params: PostbackParams, hashes: UserHashes) -> Conversion:
    """The conversion as known at accept time: identity, amounts, hashed identifiers.

    Campaign, currency default, attribution and duplicate status come from the click and
    are decided by the workflow's first step (`campaign_id` and `currency` are '' until then)."""
    event = normalize_event_type(params.event)
    return Conversion(
        conversion_id=conversion_id(params.click_id, event, params.txid),
        click_id=params.click_id,
        network_id=network.id,
        event_type=event,
        payout=params.payout,
        currency=params.currency or "",
        txid=params.txid or "",
        email_sha256=hashes.email or "",
        phone_meta_sha256=hashes.phone_meta or "",
        phone_tiktok_sha256=hashes.phone_tiktok or "",
        external_id_sha256=hashes.external_id or "",
        pii_dropped=list(hashes.dropped),
        is_duplicate=False,
        attributed=False,
        received_at=utc_now(),
    )


@dataclass(frozen=True)
class Intake:
    """What accepting needs: the configuration cache, the click store, the inbox, the key
    ring that hashes postback keys, and the forwarder to wake once a postback is in;
    `clicks`, the process's click cache, finds clicks this process recorded without a read."""

    config: ConfigCache
    traffic: TrafficStore
    inbox: Inbox
    keys: KeyRing
    retry_after_s: int = 5
    forwarder: Forwarder | None = None
    admission: Admission = field(default_factory=lambda: Admission(1000))
    clicks: ClickCache | None = None


async def accept_postback(intake: Intake, params: PostbackParams) -> PostbackAnswer:
    """Durably accept the postback (or find the conversion that has it) and answer."""
    with intake.admission.admit():
        if intake.forwarder is None:
            return await _accept(intake, params)
        pressure = intake.forwarder.pressure
        pressure.enter()
        try:
            return await _accept(intake, params)
        finally:
            pressure.exit()


async def _accept(intake: Intake, params: PostbackParams) -> PostbackAnswer:
    network, config = await _network(intake.config, intake.keys, params.key)
    await _check_network_allowed(intake, config, network, params.click_id)
    conversion = pending_conversion(network, params, await _hashes(intake.traffic, params))
    candidate = Candidate(
        conversion_id=conversion.conversion_id,
        network_id=network.id,
        click_id=conversion.click_id,
        event_type=conversion.event_type,
        txid=conversion.txid,
        claims_click=dedup.takes_click_claim(conversion.event_type),
        body=conversion.model_dump_json(),
    )
    try:
        accepted = await intake.inbox.accept(candidate)
    except InboxFull as exc:
        wait = intake.retry_after_s
        raise RetryLater(f"{exc}; resend after {wait} s", wait) from None
    except InboxClosed as exc:  # stopping: a network's resend reaches this API's successor
        raise RetryLater(f"{exc}; nothing was accepted; resend after 1 s", 1) from None
    except (OSError, sqlite3.Error) as exc:  # a full or failing disk: nothing was accepted
        wait = intake.retry_after_s
        raise RetryLater(
            f"the inbox could not record the postback ({type(exc).__name__}: {exc}); nothing "
            f"was accepted; resend after {wait} s",
            wait,
        ) from exc
    if intake.forwarder is not None and accepted.status == "accepted":
        intake.forwarder.notify()
    # Attribution needs the click, read by the workflow: unknown at accept time (dedup rule 5).
    return PostbackAnswer(accepted.conversion_id, accepted.status, accepted.is_duplicate, None)
