"""Every dedup and attribution rule (relay/conversions/dedup.py), branch by branch, as tables
over real models: pure functions, no store, no Temporal, no SQLite.

The places that gather the facts are tested on their own: the inbox on a real SQLite file
(tests/test_inbox_unit.py), ClickHouse's `memory_for` on chdb (tests/test_prepare_memory.py),
`decide`, `plan` and `bind_to_campaign` (tests/test_decide.py), shared claims on Temporal
(tests/test_shared_dedup.py), end to end (tests/test_idempotency.py, tests/test_inbox.py)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Literal

import pytest

from relay.conversions import dedup
from relay.conversions.dedup import (
    DUPLICATE,
    EARLIER_RUN,
    NOT_ALLOWED,
    UNATTRIBUTED,
    Acceptance,
    ConversionMemory,
    Decision,
    Kind,
    Remembered,
)
from relay.core.ids import conversion_id
from relay.domain.models import Campaign, Click, Conversion
from relay.domain.workflow_io import ConversionInput

NOW = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
CLICK_ID = "clk_dedup"
NETWORK = "net_a"
OTHER_NETWORK = "net_b"
WINDOW_DAYS = 30
EARLIER = "conv_earlier_original"  # another conversion, counted before
ME = "me"  # stands for the conversion's own ID in the tables below

NOTHING = ConversionMemory(recorded=None, original=None, same_txid=None)
REMEMBERS_ORIGINAL = ConversionMemory(recorded=None, original=EARLIER, same_txid=None)
REMEMBERS_TXID = ConversionMemory(recorded=None, original=None, same_txid=EARLIER)


def campaign(repeatable: tuple[str, ...] = ("deposit",), allowed: tuple[str, ...] = ()) -> Campaign:
    return Campaign(
        id="cmp_a",
        name="Dedup",
        offer_url="https://offer.example/?cid={click_id}",
        currency="EUR",
        repeatable_events=list(repeatable),
        attribution_window_days=WINDOW_DAYS,
        allowed_networks=list(allowed),
        created_at=NOW,
        updated_at=NOW,
    )


def click(age: timedelta = timedelta(days=1), click_id: str = CLICK_ID) -> Click:
    return Click(click_id=click_id, campaign_id="cmp_a", clicked_at=NOW - age)


def conversion(
    event: str = "sale",
    txid: str = "",
    network: str = NETWORK,
    click_id: str = CLICK_ID,
    received_at: datetime = NOW,
    is_duplicate: bool = False,
    attributed: bool = False,
    refusal: str = "",
) -> Conversion:
    """A conversion with the ID its click, event and txid make (relay/core/ids.py)."""
    return Conversion(
        conversion_id=conversion_id(click_id, event, txid),
        click_id=click_id,
        network_id=network,
        event_type=event,
        payout=Decimal("12.50"),
        currency="",
        txid=txid,
        received_at=received_at,
        is_duplicate=is_duplicate,
        attributed=attributed,
        refusal=refusal,
    )


def holder(name: str, me: str) -> str:
    return me if name == ME else name


# Which dedup keys a conversion takes part in (rules 2 and 4) ------------------------------


@pytest.mark.parametrize(
    ("txid", "binds"),
    [
        pytest.param("T-1", True, id="a-given-txid-binds"),
        pytest.param("", False, id="an-empty-txid-binds-nothing"),
    ],
)
def test_binds_txid(txid: str, binds: bool) -> None:
    assert dedup.binds_txid(txid) is binds


@pytest.mark.parametrize(
    ("event", "takes"),
    [
        pytest.param("sale", True, id="sale"),
        pytest.param("deposit", True, id="repeatable-or-not-it-takes-one"),
        pytest.param("AddToCart", True, id="custom-event"),
        pytest.param("refund", False, id="reversal-takes-none"),
        pytest.param("Chargeback", False, id="reversal-whatever-its-case"),
    ],
)
def test_takes_click_claim(event: str, takes: bool) -> None:
    assert dedup.takes_click_claim(event) is takes


# The inbox's answer at accept (rule 5) ---------------------------------------------------


@pytest.mark.parametrize(
    ("same_id", "same_txid", "claim_holder", "expected"),
    [
        pytest.param(None, None, ME, ("accepted", ME, False), id="first-for-click-and-event"),
        pytest.param(None, None, "", ("accepted", ME, False), id="takes-no-claim-reversal"),
        pytest.param(
            None, None, EARLIER, ("accepted", ME, None), id="second-decided-by-the-workflow"
        ),
        pytest.param(
            Remembered(ME, False), None, ME, ("existing", ME, False), id="resend-of-the-first"
        ),
        pytest.param(
            Remembered(ME, None), None, ME, ("existing", ME, None), id="resend-of-an-undecided"
        ),
        pytest.param(
            None,
            Remembered(EARLIER, False),
            ME,
            ("existing", EARLIER, False),
            id="txid-resend-names-the-conversion-that-has-it",
        ),
        pytest.param(
            Remembered(ME, None),
            Remembered(EARLIER, False),
            ME,
            ("existing", ME, None),
            id="its-own-id-first",
        ),
    ],
)
def test_at_accept(
    same_id: Remembered | None,
    same_txid: Remembered | None,
    claim_holder: str,
    expected: tuple[Literal["accepted", "existing"], str, bool | None],
) -> None:
    """As the inbox asks: a resend first; else accepted, with its click's claim taken."""
    me = conversion().conversion_id

    def mine(remembered: Remembered | None) -> Remembered | None:
        if remembered is None:
            return None
        return Remembered(holder(remembered.conversion_id, me), remembered.is_duplicate)

    answer = dedup.resend_at_accept(mine(same_id), mine(same_txid))
    if answer is None:
        answer = dedup.accepted_at_accept(me, holder(claim_holder, me))
    status, named, duplicate = expected
    assert answer == Acceptance(holder(named, me), status, duplicate)


# The memory window: the inbox's, then ClickHouse's (rule 6) ------------------------------

DAY_S = 86_400.0


@pytest.mark.parametrize(
    ("age_s", "remembered"),
    [
        pytest.param(0.0, True, id="just-accepted"),
        pytest.param(DAY_S - 1, True, id="within-the-window"),
        pytest.param(DAY_S, True, id="at-the-window-end"),
        pytest.param(DAY_S + 1, False, id="past-the-window"),
    ],
)
def test_the_inbox_memory_window(age_s: float, remembered: bool) -> None:
    """The inbox forgets what it accepted before the cutoff (`forget_older` deletes rows
    with `accepted_at < cutoff`, unless still waiting: tests/test_inbox_unit.py)."""
    now = 1_700_000_000.0
    cutoff = dedup.inbox_memory_cutoff(now, memory_s=DAY_S)
    assert (now - age_s >= cutoff) is remembered


# The earlier conversion: the first for its click and event, with txid T-1, 40 days ago.
FIRST = conversion(txid="T-1", received_at=NOW - timedelta(days=40), attributed=True)


@pytest.mark.parametrize(
    ("pending", "inbox", "clickhouse", "at_accept", "kind"),
    [
        # A second postback for the click and event, with another txid.
        pytest.param(
            conversion(txid="T-2"),
            True,
            True,
            ("accepted", None),
            Kind.DUPLICATE,
            id="second-inbox-remembers-the-claim",
        ),
        pytest.param(
            conversion(txid="T-2"),
            False,
            True,
            ("accepted", False),
            Kind.DUPLICATE,
            id="second-inbox-forgot-clickhouse-remembers",
        ),
        pytest.param(
            conversion(txid="T-2"),
            False,
            False,
            ("accepted", False),
            Kind.NEW,
            id="second-forgotten-everywhere-counts",
        ),
        # The same network, event and txid on another click.
        pytest.param(
            conversion(txid="T-1", click_id="clk_other"),
            True,
            True,
            ("existing", False),
            None,
            id="txid-resend-inbox-answers-existing",
        ),
        pytest.param(
            conversion(txid="T-1", click_id="clk_other"),
            False,
            True,
            ("accepted", False),
            Kind.RESEND,
            id="txid-resend-inbox-forgot-clickhouse-remembers",
        ),
    ],
)
def test_what_the_inbox_forgot_clickhouse_decides(
    pending: Conversion,
    inbox: bool,
    clickhouse: bool,
    at_accept: tuple[str, bool | None],
    kind: Kind | None,
) -> None:
    """The inbox answers from its memory; what it accepts, the first step decides from the
    claim it took and from ClickHouse's memory."""
    me, first = pending.conversion_id, FIRST.conversion_id
    # Within its window the inbox remembers FIRST's txid and its click's claim.
    same_txid = Remembered(first, False) if inbox and pending.txid == FIRST.txid else None
    claim_holder = first if inbox and pending.click_id == FIRST.click_id else me
    answer = dedup.resend_at_accept(None, same_txid) or dedup.accepted_at_accept(me, claim_holder)
    assert (answer.status, answer.is_duplicate) == at_accept
    if answer.status == "existing":
        assert answer.conversion_id == first and kind is None
        return
    memory = dedup.clickhouse_memory(pending, [FIRST] if clickhouse else [])
    input = ConversionInput(conversion=pending, claim_holder=claim_holder)
    decision = dedup.judge(input, click(click_id=pending.click_id), campaign(), memory)
    assert decision.kind is kind
    assert decision.of == (first if decision.is_duplicate else "")


# ClickHouse's memory (rule 6) -------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """A recorded conversion by its click, txid, event and network, with its decision."""

    click: str = CLICK_ID
    txid: str = ""
    event: str = "sale"
    network: str = NETWORK
    is_duplicate: bool = False
    refusal: str = ""
    minutes: int = 0  # received this many minutes after T0

    def conversion(self) -> Conversion:
        return conversion(
            self.event,
            self.txid,
            self.network,
            self.click,
            received_at=NOW - timedelta(days=1) + timedelta(minutes=self.minutes),
            is_duplicate=self.is_duplicate,
            refusal=self.refusal,
        )


ORIGINAL = Row(txid="T-1")


@pytest.mark.parametrize(
    ("looked_up", "rows", "expected"),
    [
        # expected: (recorded, original, same_txid), each the index of a row or None
        pytest.param(Row(txid="T-9"), [ORIGINAL], (None, 0, None), id="second-for-click-event"),
        pytest.param(Row(), [ORIGINAL], (None, 0, None), id="second-without-txid"),
        pytest.param(Row(txid="T-9", event="lead"), [ORIGINAL], (None, None, None), id="per-event"),
        pytest.param(
            Row("clk_9", "T-1"), [ORIGINAL], (None, None, 0), id="txid-resend-other-click"
        ),
        pytest.param(
            Row("clk_9", "T-1", network=OTHER_NETWORK),
            [ORIGINAL],
            (None, None, None),
            id="txid-of-another-network",
        ),
        pytest.param(
            Row("clk_9", "T-1", event="deposit"),
            [ORIGINAL],
            (None, None, None),
            id="txid-of-another-event",
        ),
        pytest.param(
            Row(),
            [Row("clk_9", network=OTHER_NETWORK), Row("clk_8")],
            (None, None, None),
            id="an-empty-txid-binds-nothing",
        ),
        pytest.param(
            Row(txid="T-5"),
            [Row(network=OTHER_NETWORK, refusal=NOT_ALLOWED)],
            (None, None, None),
            id="a-refused-one-is-no-original",
        ),
        pytest.param(
            Row(txid="T-4"),
            [Row(txid="T-3", is_duplicate=True)],
            (None, None, None),
            id="a-duplicate-is-no-original",
        ),
        pytest.param(Row("clk_7"), [], (None, None, None), id="nothing-known"),
        pytest.param(
            ORIGINAL, [ORIGINAL], (0, None, None), id="its-own-row-is-recorded-not-original"
        ),
        pytest.param(
            Row(txid="T-2", is_duplicate=True),
            [ORIGINAL, Row(txid="T-2", is_duplicate=True, minutes=5)],
            (1, 0, None),
            id="a-recorded-duplicate-names-its-original",
        ),
        pytest.param(
            Row(txid="T-9"),
            [Row(txid="T-3", minutes=9), ORIGINAL],
            (None, 1, None),
            id="the-earliest-original-whatever-the-row-order",
        ),
        pytest.param(
            Row("clk_9", "T-1"),
            [Row("clk_8", "T-1", minutes=3), ORIGINAL, ORIGINAL],
            (None, None, 1),
            id="the-earliest-with-its-txid-a-row-found-twice",
        ),
    ],
)
def test_clickhouse_memory(
    looked_up: Row, rows: list[Row], expected: tuple[int | None, int | None, int | None]
) -> None:
    found = [row.conversion() for row in rows]

    def named(index: int | None) -> str | None:
        return None if index is None else found[index].conversion_id

    memory = dedup.clickhouse_memory(looked_up.conversion(), found)
    recorded, original, same_txid = expected
    own = None if memory.recorded is None else memory.recorded.conversion_id
    assert (own, memory.original, memory.same_txid) == (
        named(recorded),
        named(original),
        named(same_txid),
    )


# Recorded by an earlier run (rule 7) -------------------------------------------------------


@pytest.mark.parametrize(
    ("recorded_at", "earlier"),
    [
        pytest.param(None, False, id="not-recorded-decide-now"),
        pytest.param(NOW, False, id="recorded-by-this-postback-a-retry-keeps-it"),
        pytest.param(NOW - timedelta(days=40), True, id="an-earlier-postback-of-its-id"),
    ],
)
def test_earlier_record(recorded_at: datetime | None, earlier: bool) -> None:
    pending = conversion(txid="T-1")
    recorded = None if recorded_at is None else conversion(txid="T-1", received_at=recorded_at)
    memory = ConversionMemory(recorded=recorded, original=None, same_txid=None)
    assert dedup.earlier_record(pending, memory) == (recorded if earlier else None)


# Attribution (rule 8) and allowed networks (rule 9) -----------------------------------------


@pytest.mark.parametrize(
    ("click_age", "has_campaign", "expected"),
    [
        pytest.param(timedelta(days=1), True, True, id="click-within-the-window"),
        pytest.param(timedelta(days=WINDOW_DAYS), True, True, id="window-end-is-inclusive"),
        pytest.param(
            timedelta(days=WINDOW_DAYS, seconds=1), True, False, id="click-past-the-window"
        ),
        pytest.param(None, True, False, id="unknown-click"),
        pytest.param(timedelta(days=1), False, False, id="campaign-unknown-or-deleted"),
    ],
)
def test_attributed(click_age: timedelta | None, has_campaign: bool, expected: bool) -> None:
    found = None if click_age is None else click(click_age)
    assert dedup.attributed(found, campaign() if has_campaign else None, NOW) is expected


@pytest.mark.parametrize(
    ("allowed", "has_campaign", "network", "refusal"),
    [
        pytest.param((), True, OTHER_NETWORK, "", id="any-network-by-default"),
        pytest.param((NETWORK,), True, NETWORK, "", id="a-listed-network"),
        pytest.param((NETWORK,), True, OTHER_NETWORK, NOT_ALLOWED, id="another-network"),
        pytest.param((NETWORK,), False, OTHER_NETWORK, "", id="no-campaign-refuses-nothing"),
    ],
)
def test_network_refusal(
    allowed: tuple[str, ...], has_campaign: bool, network: str, refusal: str
) -> None:
    bound = campaign(allowed=allowed) if has_campaign else None
    assert dedup.network_refusal(bound, network) == refusal


# The first step's decision (rules 2-4, 8, 9) -------------------------------------------------


@dataclass(frozen=True)
class Case:
    event: str = "sale"
    txid: str = ""
    network: str = NETWORK
    claim_holder: str = ME  # the inbox names the first accepted for (click, event)
    txid_holder: str = ""  # only with shared dedup (several API replicas)
    click_age: timedelta | None = timedelta(days=1)  # None: no such click
    has_campaign: bool = True
    allowed: tuple[str, ...] = ()
    memory: ConversionMemory = NOTHING

    def input(self) -> ConversionInput:
        pending = conversion(self.event, self.txid, self.network)
        me = pending.conversion_id
        return ConversionInput(
            conversion=pending,
            claim_holder=holder(self.claim_holder, me),
            txid_holder=holder(self.txid_holder, me),
        )

    def click(self) -> Click | None:
        return None if self.click_age is None else click(self.click_age)

    def campaign(self) -> Campaign | None:
        return campaign(allowed=self.allowed) if self.has_campaign else None


# (case, what it is decided, attributed, of) ; tests/test_decide.py checks `decide` records it
JUDGEMENTS = [
    pytest.param(Case(), Kind.NEW, True, "", id="first-for-click-and-event-is-original"),
    pytest.param(Case(claim_holder=""), Kind.NEW, True, "", id="no-claim-taken-and-no-memory"),
    pytest.param(
        Case(txid="T-2", claim_holder=EARLIER),
        Kind.DUPLICATE,
        True,
        EARLIER,
        id="second-by-inbox-claim",
    ),
    pytest.param(
        Case(txid="T-2", memory=REMEMBERS_ORIGINAL),
        Kind.DUPLICATE,
        True,
        EARLIER,
        id="second-past-inbox-memory-by-clickhouse-original",
    ),
    pytest.param(
        Case(txid="T-1", memory=REMEMBERS_TXID),
        Kind.RESEND,
        True,
        EARLIER,
        id="txid-resend-by-clickhouse-same-txid",
    ),
    pytest.param(
        Case(txid="T-1", txid_holder=EARLIER),
        Kind.RESEND,
        True,
        EARLIER,
        id="txid-resend-by-temporal-txid-claim",
    ),
    pytest.param(
        Case(txid="T-1", txid_holder=ME), Kind.NEW, True, "", id="own-txid-claim-is-no-resend"
    ),
    pytest.param(
        Case(txid="T-1", click_age=None, claim_holder="", memory=REMEMBERS_TXID),
        Kind.RESEND,
        False,
        EARLIER,
        id="txid-resend-is-duplicate-even-unattributed",
    ),
    pytest.param(
        Case(event="deposit", txid="T-2", claim_holder=EARLIER, memory=REMEMBERS_ORIGINAL),
        Kind.REPEATABLE,
        True,
        "",
        id="repeatable-event-repeats",
    ),
    pytest.param(
        Case(event="deposit", txid="T-1", memory=REMEMBERS_TXID),
        Kind.RESEND,
        True,
        EARLIER,
        id="repeatable-event-txid-resend-is-still-duplicate",
    ),
    pytest.param(
        Case(event="refund", claim_holder="", memory=REMEMBERS_ORIGINAL),
        Kind.REVERSAL,
        True,
        "",
        id="reversal-takes-no-part-in-click-dedup",
    ),
    pytest.param(
        Case(event="refund", txid="T-1", claim_holder="", memory=REMEMBERS_TXID),
        Kind.RESEND,
        True,
        EARLIER,
        id="reversal-txid-resend-is-duplicate",
    ),
    pytest.param(
        Case(click_age=None, claim_holder=EARLIER, memory=REMEMBERS_ORIGINAL),
        Kind.UNATTRIBUTED,
        False,
        "",
        id="unknown-click-is-unattributed-never-a-click-duplicate",
    ),
    pytest.param(
        Case(click_age=timedelta(days=WINDOW_DAYS, seconds=1), claim_holder=EARLIER),
        Kind.UNATTRIBUTED,
        False,
        "",
        id="click-outside-attribution-window",
    ),
    pytest.param(
        Case(click_age=timedelta(days=WINDOW_DAYS)),
        Kind.NEW,
        True,
        "",
        id="window-end-is-inclusive",
    ),
    pytest.param(
        Case(has_campaign=False, claim_holder=EARLIER, memory=REMEMBERS_ORIGINAL),
        Kind.UNATTRIBUTED,
        False,
        "",
        id="click-of-unknown-or-deleted-campaign",
    ),
    pytest.param(Case(network=OTHER_NETWORK), Kind.NEW, True, "", id="any-network-by-default"),
    pytest.param(
        Case(network=OTHER_NETWORK, allowed=(NETWORK,)),
        Kind.REFUSED,
        False,
        "",
        id="not-allowed-network-refused",
    ),
    pytest.param(
        Case(network=OTHER_NETWORK, allowed=(NETWORK,), txid="T-1", memory=REMEMBERS_TXID),
        Kind.REFUSED,
        False,
        "",
        id="refused-even-when-a-resend",
    ),
    pytest.param(
        Case(
            network=OTHER_NETWORK,
            allowed=(NETWORK,),
            click_age=timedelta(days=WINDOW_DAYS + 1),
        ),
        Kind.REFUSED,
        False,
        "",
        id="refused-even-past-the-window",
    ),
    pytest.param(Case(allowed=(NETWORK,)), Kind.NEW, True, "", id="allowed-original"),
    pytest.param(
        Case(allowed=(NETWORK,), txid="T-2", claim_holder=EARLIER, memory=REMEMBERS_ORIGINAL),
        Kind.DUPLICATE,
        True,
        EARLIER,
        id="allowed-duplicate-of-a-counted-original",
    ),
]


@pytest.mark.parametrize(("case", "kind", "attributed", "of"), JUDGEMENTS)
def test_judge(case: Case, kind: Kind, attributed: bool, of: str) -> None:
    decision = dedup.judge(case.input(), case.click(), case.campaign(), case.memory)
    assert decision == Decision(kind, attributed, of)
    assert decision.is_duplicate is (kind in (Kind.RESEND, Kind.DUPLICATE))
    assert decision.refusal == (NOT_ALLOWED if kind is Kind.REFUSED else "")


# A claim held by a refused conversion (rule 9) ---------------------------------------------


@pytest.mark.parametrize(
    ("case", "is_duplicate", "recheck"),
    [
        pytest.param(
            Case(allowed=(NETWORK,), claim_holder=EARLIER), True, EARLIER, id="by-the-claim-alone"
        ),
        pytest.param(Case(claim_holder=EARLIER), True, None, id="campaign-allows-any-network"),
        pytest.param(Case(has_campaign=False, claim_holder=EARLIER), True, None, id="no-campaign"),
        pytest.param(
            Case(allowed=(NETWORK,), claim_holder=EARLIER), False, None, id="not-a-duplicate"
        ),
        pytest.param(
            Case(allowed=(NETWORK,), claim_holder=EARLIER, memory=REMEMBERS_ORIGINAL),
            True,
            None,
            id="clickhouse-counted-an-original",
        ),
        pytest.param(
            Case(allowed=(NETWORK,), claim_holder=EARLIER, txid="T-1", txid_holder="conv_t"),
            True,
            None,
            id="a-resend-by-temporal-txid-claim",
        ),
        pytest.param(
            Case(allowed=(NETWORK,), claim_holder=EARLIER, txid="T-1", memory=REMEMBERS_TXID),
            True,
            None,
            id="a-resend-by-clickhouse-same-txid",
        ),
        pytest.param(Case(allowed=(NETWORK,), claim_holder=ME), True, None, id="holds-it-itself"),
        pytest.param(Case(allowed=(NETWORK,), claim_holder=""), True, None, id="no-claim-taken"),
    ],
)
def test_claim_to_recheck(case: Case, is_duplicate: bool, recheck: str | None) -> None:
    input = case.input()
    decided = input.conversion.model_copy(update={"is_duplicate": is_duplicate})
    assert dedup.claim_to_recheck(input, decided, case.campaign(), case.memory) == recheck


@pytest.mark.parametrize(
    ("holder_record", "counts"),
    [
        pytest.param(conversion(network=OTHER_NETWORK, refusal=NOT_ALLOWED), True, id="refused"),
        pytest.param(conversion(attributed=True), False, id="counted"),
        pytest.param(None, False, id="not-recorded-yet-stays-a-duplicate"),
    ],
)
def test_counts_despite_claim(holder_record: Conversion | None, counts: bool) -> None:
    assert dedup.counts_despite_claim(holder_record) is counts


# Why a conversion is not delivered (rule 10) ------------------------------------------------


@pytest.mark.parametrize(
    ("attributed", "is_duplicate", "refusal", "earlier_run", "reason"),
    [
        pytest.param(True, False, "", False, "", id="delivered"),
        pytest.param(True, True, "", False, DUPLICATE, id="duplicate"),
        pytest.param(False, False, "", False, UNATTRIBUTED, id="unattributed"),
        pytest.param(False, True, "", False, DUPLICATE, id="duplicate-first"),
        pytest.param(False, False, NOT_ALLOWED, False, NOT_ALLOWED, id="refused-says-why"),
        pytest.param(False, True, NOT_ALLOWED, False, NOT_ALLOWED, id="refusal-first"),
        pytest.param(True, False, "", True, EARLIER_RUN, id="earlier-run"),
        pytest.param(False, False, NOT_ALLOWED, True, EARLIER_RUN, id="earlier-run-first"),
    ],
)
def test_not_delivered_because(
    attributed: bool, is_duplicate: bool, refusal: str, earlier_run: bool, reason: str
) -> None:
    decided = conversion(attributed=attributed, is_duplicate=is_duplicate, refusal=refusal)
    assert dedup.not_delivered_because(decided, recorded_by_earlier_run=earlier_run) == reason
