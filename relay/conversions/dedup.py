"""What decides a duplicate, and whether a conversion counts for its click's campaign.

Every dedup and attribution rule lives here, as pure functions of the facts (no I/O, no
Temporal, no SQLite). The places that hold the facts gather them and ask:

- the inbox (relay/ingest/inbox.py `Inbox._accept`, `forget_older`) looks up what it
  remembers of the conversion ID, else of its (network, event, txid), and takes the
  (click, event) claim: `binds_txid`, `resend_at_accept`, `accepted_at_accept`,
  `inbox_memory_cutoff`;
- accepting (relay/ingest/accept.py) knows the event and, when it can be read at once, the
  click's campaign: `takes_click_claim`, `network_refusal` (403);
- shared claims (relay/ingest/claims.py) take Temporal's claims: `binds_txid`,
  `takes_click_claim`;
- ClickHouse (relay/store/traffic.py `TrafficStore.memory_for`) reads the recorded rows that
  may bear on a conversion: `clickhouse_memory`;
- the conversion's first step (activities/prepare.py `prepare_conversion`, `decide`, `plan`;
  activities/campaign_networks.py `bind_to_campaign`) has the claims' holders, ClickHouse's
  memory, the click, its campaign and, when needed, the claim holder's record:
  `earlier_record`, `judge` (with `attributed`, `network_refusal`), `claim_to_recheck`,
  `counts_despite_claim`, `not_delivered_because`.

The rules, in one place:

1. Identity. A conversion's ID is made from its click, event type and txid
   (relay/core/ids.py `conversion_id`): a resend of one postback is the same conversion.
2. Transaction ID. A txid binds (network, event type, txid) to the first conversion that
   had it; an empty txid binds nothing (`binds_txid`). A later postback with the same three
   is that conversion, whatever its click: the inbox answers `existing`; when only
   Temporal's txid claim or ClickHouse knows it, it is recorded a duplicate (`Kind.RESEND`),
   attributed or not, reversal or not, repeatable or not.
3. First per click and event. The first conversion for a (click, event type) counts; a later
   one (another txid, or none) is a duplicate (`Kind.DUPLICATE`): recorded, not delivered.
   The first is the holder of the (click, event) claim (the inbox's, in its commit order;
   Temporal's across API replicas, `RELAY_SHARED_DEDUP`), or an original ClickHouse counted.
   Different event types on one click are separate conversions.
4. No part in rule 3: a reversal (`refund`, `chargeback`, ...) takes no click claim and is
   never a click's duplicate (`takes_click_claim`, `Kind.REVERSAL`); an event the campaign
   lists in `repeatable_events` counts every time (`Kind.REPEATABLE`); an unattributed
   conversion (rule 8) is never a click's duplicate (`Kind.UNATTRIBUTED`).
5. At accept. A postback whose ID the inbox remembers, else whose (network, event, txid) it
   remembers, is `existing`: that conversion, with the duplicate status known then
   (`resend_at_accept`). Otherwise it is accepted: `is_duplicate` false when it holds its
   click's claim or takes none, else null: rule 4 needs the click's campaign, so the
   workflow decides (`accepted_at_accept`). Attribution is never known at accept (null).
6. Memory. The inbox remembers what it accepted for `RELAY_INBOX_MEMORY_DAYS`
   (`inbox_memory_cutoff`); an entry still waiting to be forwarded keeps its memory, so its
   resend answers `existing`. Beyond it, ClickHouse remembers (`clickhouse_memory`): the
   counted original for the click and event (not a duplicate, not refused), and an earlier
   conversion with the same network, event and txid. Either memory makes rules 2 and 3 hold.
7. Earlier run. A row ClickHouse holds for this conversion ID with another receipt time was
   recorded for an earlier postback of the ID (a resend past Temporal's retention): it is
   returned as recorded and not delivered again (`earlier_record`, `EARLIER_RUN`). The same
   receipt time is this postback's own row (a retry of the step): what was decided stays.
8. Attribution. A conversion is attributed to its click's campaign when the click exists,
   its campaign exists, and it arrived at most the campaign's `attribution_window_days` after
   the click (`attributed`). Otherwise it is unattributed: recorded (under the click's
   campaign, if any), not delivered.
9. Allowed networks. A campaign with `allowed_networks` refuses postbacks of other networks
   for its clicks (`network_refusal`): 403 at accept when the click can be read there, else
   recorded refused by the first step (`Kind.REFUSED`: unattributed, never a duplicate,
   `refusal` = `NOT_ALLOWED`, never an original). On such a campaign, a conversion that is
   a duplicate only because a refused one took its click's claim first counts
   (`claim_to_recheck`, `counts_despite_claim`); a holder not recorded yet leaves it a
   duplicate.
10. Not delivered, and why (`not_delivered_because`): recorded by an earlier run, else
    refused, else a duplicate, else unattributed; the reason is the plan's `skipped`.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal

from relay.domain.events import is_reversal
from relay.domain.models import Campaign, Click, Conversion
from relay.domain.workflow_io import ConversionInput

# The reasons a conversion is not delivered, as its plan records them (`Prepared.skipped`).
EARLIER_RUN = "recorded by an earlier run; not delivered again"
NOT_ALLOWED = "network not allowed for campaign"
DUPLICATE = "duplicate of an earlier conversion for this click and event"
UNATTRIBUTED = "unattributed: no click with this ID within the attribution window"


# Rules 2 and 4: which dedup keys a conversion takes part in ---------------------------------


def binds_txid(txid: str) -> bool:
    """Whether the txid identifies a conversion (rule 2): only one that was given."""
    return txid != ""


def takes_click_claim(event_type: str) -> bool:
    """Whether the conversion takes part in its click's dedup (rules 3, 4): reversals do not."""
    return not is_reversal(event_type)


# Rule 5: the inbox's answer at accept --------------------------------------------------


@dataclass(frozen=True)
class Remembered:
    """A conversion the inbox remembers: its ID and its duplicate status as known when it
    was accepted (None: the workflow decides it)."""

    conversion_id: str
    is_duplicate: bool | None


@dataclass(frozen=True)
class Acceptance:
    """The inbox's answer to a postback."""

    conversion_id: str
    status: Literal["accepted", "existing"]
    is_duplicate: bool | None


def resend_at_accept(same_id: Remembered | None, same_txid: Remembered | None) -> Acceptance | None:
    """The conversion a postback repeats, as the inbox remembers it (its ID first, else its
    network, event and txid), answered `existing`; None when it is new to the inbox."""
    known = same_id if same_id is not None else same_txid
    if known is None:
        return None
    return Acceptance(known.conversion_id, "existing", known.is_duplicate)


def accepted_at_accept(conversion_id: str, claim_holder: str) -> Acceptance:
    """A postback new to the inbox, accepted. Not a duplicate if it holds its click's claim
    (`claim_holder` is its own ID) or takes none (''); else it depends on the click's
    campaign (repeatable events, attribution): None, decided by the workflow."""
    first = claim_holder in ("", conversion_id)
    return Acceptance(conversion_id, "accepted", False if first else None)


def inbox_memory_cutoff(now: float, memory_s: float) -> float:
    """Rule 6: the inbox forgets what it accepted before this time (epoch seconds), except
    entries still waiting to be forwarded; ClickHouse remembers beyond."""
    return now - memory_s


# Rule 6: ClickHouse's memory -------------------------------------------------------------


@dataclass(frozen=True)
class ConversionMemory:
    """What ClickHouse remembers that bears on one conversion."""

    recorded: Conversion | None  # this conversion's own row, if written before
    original: str | None  # an earlier conversion counted for the same click and event
    same_txid: str | None  # an earlier conversion with the same network, event and txid


def _counts_for_click(row: Conversion, conversion: Conversion) -> bool:
    """A recorded row is the original of the conversion's click and event: the same click
    and event, not itself a duplicate, not refused (a refused one counts for nothing)."""
    return (
        row.click_id == conversion.click_id
        and row.event_type == conversion.event_type
        and not row.is_duplicate
        and not row.refusal
    )


def _has_its_txid(row: Conversion, conversion: Conversion) -> bool:
    return (
        binds_txid(conversion.txid)
        and row.txid == conversion.txid
        and row.network_id == conversion.network_id
        and row.event_type == conversion.event_type
    )


def clickhouse_memory(conversion: Conversion, rows: Iterable[Conversion]) -> ConversionMemory:
    """The memory in the recorded rows (`TrafficStore.memory_for`): the conversion's own
    row, the earliest original of its click and event, the earliest with its txid."""
    found = sorted(rows, key=lambda row: row.received_at)  # stable: ties keep their order
    me = conversion.conversion_id
    others = [row for row in found if row.conversion_id != me]
    return ConversionMemory(
        recorded=next((row for row in found if row.conversion_id == me), None),
        original=next(
            (row.conversion_id for row in others if _counts_for_click(row, conversion)), None
        ),
        same_txid=next(
            (row.conversion_id for row in others if _has_its_txid(row, conversion)), None
        ),
    )


# Rule 7: recorded by an earlier run -------------------------------------------------------


def earlier_record(pending: Conversion, memory: ConversionMemory) -> Conversion | None:
    """The conversion's row if an earlier postback of its ID wrote it (another receipt
    time): handled then, not delivered again. None when unrecorded or written by this
    postback's own run (a retry), whose decision stands."""
    recorded = memory.recorded
    if recorded is not None and recorded.received_at != pending.received_at:
        return recorded
    return None


# Rules 2-4, 8 and 9: the first step's decision ------------------------------------------------


def attributed(click: Click | None, campaign: Campaign | None, received_at: datetime) -> bool:
    """Rule 8: the click and its campaign exist and the conversion arrived within the
    campaign's attribution window of the click (its end included)."""
    return (
        click is not None
        and campaign is not None
        and received_at - click.clicked_at <= timedelta(days=campaign.attribution_window_days)
    )


def network_refusal(campaign: Campaign | None, network_id: str) -> str:
    """Rule 9: why the campaign refuses the network's postbacks for its clicks ('' when it
    does not: no campaign, no list of allowed networks, or a network on it)."""
    if campaign is not None and not campaign.allows(network_id):
        return NOT_ALLOWED
    return ""


class Kind(StrEnum):
    """What the first step decides a conversion is, by precedence (the first that applies)."""

    REFUSED = "refused"  # its network is not allowed for the click's campaign (rule 9)
    RESEND = "resend"  # its network, event and txid were had by another (rule 2): a duplicate
    UNATTRIBUTED = "unattributed"  # no click, no campaign, or past the window (rule 8)
    REVERSAL = "reversal"  # a status change: no part in the click's dedup (rule 4)
    REPEATABLE = "repeatable"  # its event repeats on the campaign: counts every time (rule 4)
    DUPLICATE = "duplicate"  # a later one for its click and event (rule 3)
    NEW = "new"  # the first for its click and event: counts


@dataclass(frozen=True)
class Decision:
    """`of`: the earlier conversion a RESEND or a DUPLICATE repeats."""

    kind: Kind
    attributed: bool
    of: str = ""

    @property
    def is_duplicate(self) -> bool:
        return self.kind in (Kind.RESEND, Kind.DUPLICATE)

    @property
    def refusal(self) -> str:
        return NOT_ALLOWED if self.kind is Kind.REFUSED else ""


def _other(holder: str, me: str) -> str:
    """The holder a claim names, if it is another conversion ('' if none or this one)."""
    return "" if holder in ("", me) else holder


def _resend_of(input: ConversionInput, memory: ConversionMemory) -> str | None:
    """The conversion that had this one's network, event and txid first: Temporal's txid
    claim (shared dedup) or ClickHouse's memory."""
    me = input.conversion.conversion_id
    if holder := _other(input.txid_holder, me):
        return holder
    return memory.same_txid


def judge(
    input: ConversionInput,
    click: Click | None,
    campaign: Campaign | None,
    memory: ConversionMemory,
) -> Decision:
    """The conversion's attribution and duplicate status (rules 2-4, 8, 9), from the claims'
    holders (`input`), the click, its campaign and ClickHouse's memory."""
    pending = input.conversion
    me, event = pending.conversion_id, pending.event_type
    counts = attributed(click, campaign, pending.received_at)
    if network_refusal(campaign, pending.network_id):
        return Decision(Kind.REFUSED, attributed=False)
    if (resent := _resend_of(input, memory)) is not None:
        return Decision(Kind.RESEND, counts, of=resent)
    if not counts:
        return Decision(Kind.UNATTRIBUTED, False)
    if not takes_click_claim(event):
        return Decision(Kind.REVERSAL, True)
    if campaign is not None and event in campaign.repeatable_events:
        return Decision(Kind.REPEATABLE, True)
    if first := _other(input.claim_holder, me):
        return Decision(Kind.DUPLICATE, True, of=first)
    if memory.original is not None:
        return Decision(Kind.DUPLICATE, True, of=memory.original)
    return Decision(Kind.NEW, True)


def claim_to_recheck(
    input: ConversionInput,
    decided: Conversion,
    campaign: Campaign | None,
    memory: ConversionMemory,
) -> str | None:
    """Rule 9: the claim holder whose record decides whether `decided` stays a duplicate:
    one held a duplicate by its click's claim alone (no counted original in ClickHouse, no
    resend), on a campaign that limits its networks, where the holder may be a refused
    conversion. None when the decision stands without reading anything."""
    if campaign is None or not campaign.allowed_networks or not decided.is_duplicate:
        return None
    if memory.original is not None or _resend_of(input, memory) is not None:
        return None
    return _other(input.claim_holder, decided.conversion_id) or None


def counts_despite_claim(holder: Conversion | None) -> bool:
    """Rule 9: a claim held by a refused conversion makes no duplicate. A holder not
    recorded yet (accepted by another replica) leaves it one: never counted twice."""
    return holder is not None and bool(holder.refusal)


# Rule 10: why a conversion is not delivered -------------------------------------------


def not_delivered_because(conversion: Conversion, recorded_by_earlier_run: bool = False) -> str:
    """The reason the plan records for sending nothing; '' when it is delivered."""
    if recorded_by_earlier_run:
        return EARLIER_RUN
    if conversion.refusal:
        return conversion.refusal
    if conversion.is_duplicate:
        return DUPLICATE
    if not conversion.attributed:
        return UNATTRIBUTED
    return ""
