"""ClickHouse's memory of earlier conversions (relay/store/traffic.py `memory_for`, read by
relay/conversions/dedup.py `clickhouse_memory`) and the conversion's first step that uses it
(activities/prepare.py `prepare_conversion`), on the real store (the session's chdb
`clickhouse`, every ID the test's own) inside Temporal's ActivityEnvironment: what the inbox
forgot (past RELAY_INBOX_MEMORY_DAYS) ClickHouse still decides, and a conversion recorded by
an earlier run (a resend past Temporal's retention) is returned as recorded and plans
nothing. The rules on their own, every branch: tests/test_dedup.py."""

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from temporalio.testing import ActivityEnvironment

from activities.campaign_networks import bind_to_campaign
from activities.prepare import PrepareActivities, decide
from relay.conversions.dedup import (
    DUPLICATE,
    EARLIER_RUN,
    NOT_ALLOWED,
    ConversionMemory,
    clickhouse_memory,
)
from relay.core.ids import conversion_id
from relay.core.settings import Settings
from relay.domain.models import Campaign, Click, Conversion, OutboundPostback, Pixel, Platform
from relay.domain.workflow_io import ConversionInput, Prepared
from relay.store.click_cache import ClickCache
from relay.store.config import ConfigStore
from relay.store.config_cache import ConfigCache
from relay.store.pool import ClickHouse
from relay.store.traffic import TrafficStore
from tests.harness import physical_rows

T0 = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)  # millisecond precision, as stored


@dataclasses.dataclass(frozen=True)
class Row:
    """A conversion by its click (a name), txid, event and network ("a" or "b"), with what
    was decided for it when it is recorded."""

    click: str
    txid: str = ""
    event: str = "sale"
    network: str = "a"
    is_duplicate: bool = False
    attributed: bool = True
    refusal: str = ""


class Scene:
    """One test's IDs: its campaign, networks and clicks, unique in the shared database."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:10]
        self.campaign_id = f"cmp_{self.tag}"
        self.networks = {"a": f"net_a_{self.tag}", "b": f"net_b_{self.tag}"}

    def click_id(self, name: str) -> str:
        return f"{name}_{self.tag}"

    def conversion(self, row: Row, received_at: datetime = T0) -> Conversion:
        click_id = self.click_id(row.click)
        return Conversion(
            conversion_id=conversion_id(click_id, row.event, row.txid),
            click_id=click_id,
            network_id=self.networks[row.network],
            event_type=row.event,
            payout=Decimal("20"),
            currency="",
            txid=row.txid,
            received_at=received_at,
            is_duplicate=row.is_duplicate,
            attributed=row.attributed,
            refusal=row.refusal,
        )

    def campaign(self) -> Campaign:
        """The test's campaign: network a only."""
        return Campaign(
            id=self.campaign_id,
            name="Memory",
            offer_url="https://offer.example/?cid={click_id}",
            currency="EUR",
            allowed_networks=[self.networks["a"]],
            created_at=T0,
            updated_at=T0,
        )

    def record(
        self, traffic: TrafficStore, row: Row, received_at: datetime = T0, currency: str = "EUR"
    ) -> Conversion:
        """Write the row as an earlier run did (campaign and currency decided)."""
        update = {"campaign_id": self.campaign_id, "currency": currency}
        recorded = self.conversion(row, received_at).model_copy(update=update)
        traffic.record_conversion(recorded, "run-old")
        return recorded


ORIGINAL = Row("clk_1", "T-1")
# The recorded conversions every memory case reads, by name.
ROWS = {
    "original": ORIGINAL,
    "duplicate": Row("clk_1", "T-2", is_duplicate=True),
    "lead": Row("clk_1", "T-L", event="lead"),
    "refused": Row("clk_2", network="b", attributed=False, refusal=NOT_ALLOWED),
    "only-duplicate": Row("clk_3", "T-3", is_duplicate=True),
}
MEMORY_CASES = {
    # case: (the conversion looked up, then by name: recorded, original, same_txid)
    "second-for-click-and-event": (Row("clk_1", "T-9"), None, "original", None),
    "second-without-txid": (Row("clk_1"), None, "original", None),
    "per-event": (Row("clk_1", "T-9", event="lead"), None, "lead", None),
    "txid-resend-other-click": (Row("clk_9", "T-1"), None, None, "original"),
    "txid-of-another-network": (Row("clk_9", "T-1", network="b"), None, None, None),
    "txid-of-another-event": (Row("clk_9", "T-1", event="deposit"), None, None, None),
    "a-refused-one-is-no-original": (Row("clk_2", "T-5"), None, None, None),
    "a-duplicate-is-no-original": (Row("clk_3", "T-4"), None, None, None),
    "nothing-known": (Row("clk_7"), None, None, None),
    "its-own-row-is-recorded-not-original": (ORIGINAL, "original", None, None),
    "a-recorded-duplicate-names-its-original": (ROWS["duplicate"], "duplicate", "original", None),
}


def test_memory_for_finds_recorded_original_and_same_txid(clickhouse: ClickHouse) -> None:
    """Table-driven in one test: every case reads the same recorded rows."""
    scene, traffic = Scene(), TrafficStore(clickhouse)
    names = {scene.record(traffic, row).conversion_id: name for name, row in ROWS.items()}

    def named(found: str | None) -> str | None:
        return None if found is None else names.get(found, found)

    found, expected = {}, {}
    for case, (looked_up, recorded, original, same_txid) in MEMORY_CASES.items():
        conversion = scene.conversion(looked_up)
        memory = clickhouse_memory(conversion, traffic.memory_for(conversion))
        own = memory.recorded.conversion_id if memory.recorded else None
        found[case] = (named(own), named(memory.original), named(memory.same_txid))
        expected[case] = (recorded, original, same_txid)
    assert found == expected


# prepare_conversion ---------------------------------------------------------------------


@dataclasses.dataclass
class Step:
    """The first step as the worker binds it, with a campaign of the scene's (network a
    only) holding a primary Meta pixel and a postback for every event."""

    scene: Scene
    store: ClickHouse
    traffic: TrafficStore
    activities: PrepareActivities

    async def prepare(self, pending: Conversion, claim_holder: str | None = None) -> Prepared:
        """Run as Temporal runs it for the workflow of the conversion's ID; the claim
        holder is the conversion itself unless named (the inbox's first)."""
        env = ActivityEnvironment()
        env.info = dataclasses.replace(
            env.info, workflow_id=pending.conversion_id, workflow_run_id="run-new"
        )
        holder = pending.conversion_id if claim_holder is None else claim_holder
        input = ConversionInput(conversion=pending, claim_holder=holder)
        return await env.run(self.activities.prepare_conversion, input)


@pytest.fixture
def step(clickhouse: ClickHouse, tmp_path: Path) -> Step:
    scene = Scene()
    config = ConfigStore(clickhouse)
    config.save(scene.campaign())
    pixel = Pixel(
        id=f"px_{scene.tag}",
        campaign_id=scene.campaign_id,
        platform=Platform.META,
        platform_pixel_id="111",
        name="Meta",
        created_at=T0,
        updated_at=T0,
    )
    config.save_pixel(pixel, token_ciphertext="sealed")
    postback = OutboundPostback(
        id=f"pb_{scene.tag}",
        campaign_id=scene.campaign_id,
        url_template="https://source.example/pb?cid={click_id}",
        created_at=T0,
        updated_at=T0,
    )
    config.save(postback)
    traffic = TrafficStore(clickhouse)
    for name in ("clk_1", "clk_2", "clk_9"):
        click = Click(click_id=scene.click_id(name), campaign_id=scene.campaign_id, clicked_at=T0)
        traffic.save_click(click)
    settings = Settings(data_dir=tmp_path, default_currency="USD", delivery_retry_window_h=2)
    cache = ConfigCache(config, sole_writer=True)
    activities = PrepareActivities(settings, traffic, ClickCache(traffic), cache)
    return Step(scene, clickhouse, traffic, activities)


def sends(step: Step, prepared: Prepared) -> tuple[int, int]:
    """How many of the campaign's pixels and postbacks are planned (each is one)."""
    tag = step.scene.tag
    assert all(p.pixel_id == f"px_{tag}" for p in prepared.pixels)
    assert all(p.postback_id == f"pb_{tag}" for p in prepared.postbacks)
    return len(prepared.pixels), len(prepared.postbacks)


async def test_a_conversion_recorded_by_an_earlier_run_is_returned_and_plans_nothing(
    step: Step,
) -> None:
    recorded = step.scene.record(step.traffic, ORIGINAL)
    # The same postback again, past Temporal's retention: the same ID, a later receipt.
    resent = step.scene.conversion(ORIGINAL, received_at=T0 + timedelta(days=40))
    prepared = await step.prepare(resent)
    assert prepared.recorded_by_earlier_run
    assert prepared.skipped == EARLIER_RUN
    assert sends(step, prepared) == (0, 0)
    assert prepared.conversion == recorded  # as recorded then, not the resend
    assert physical_rows(step.store, recorded.conversion_id) == 1  # nothing written


async def test_a_retry_of_the_same_run_plans_again_and_writes_nothing_new(step: Step) -> None:
    # Decided when the campaign's currency was GBP (it is EUR now): decided once, kept.
    recorded = step.scene.record(step.traffic, ORIGINAL, currency="GBP")
    prepared = await step.prepare(step.scene.conversion(ORIGINAL))  # the receipt it wrote
    assert not prepared.recorded_by_earlier_run and prepared.skipped == ""
    assert prepared.conversion == recorded and prepared.conversion.currency == "GBP"
    assert sends(step, prepared) == (1, 1)
    assert prepared.retry_window_s == 2 * 3600
    assert physical_rows(step.store, recorded.conversion_id) == 1


@pytest.mark.parametrize(
    ("pending", "duplicate"),
    [
        pytest.param(ORIGINAL, False, id="first-is-original"),
        pytest.param(Row("clk_1", "T-8"), True, id="second-for-click-by-memory-original"),
        pytest.param(Row("clk_9", "T-1"), True, id="txid-resend-by-memory-same-txid"),
    ],
)
async def test_past_the_inbox_memory_clickhouse_decides_the_duplicate(
    step: Step, pending: Row, duplicate: bool
) -> None:
    """The inbox forgot the original: each conversion took its click's claim itself."""
    if pending != ORIGINAL:
        step.scene.record(step.traffic, ORIGINAL, received_at=T0 - timedelta(days=40))
    conversion = step.scene.conversion(pending)
    prepared = await step.prepare(conversion)
    assert not prepared.recorded_by_earlier_run
    assert prepared.conversion.is_duplicate is duplicate and prepared.conversion.attributed
    assert sends(step, prepared) == ((0, 0) if duplicate else (1, 1))
    assert prepared.skipped == (DUPLICATE if duplicate else "")
    stored = step.traffic.get_conversion(conversion.conversion_id)
    assert stored is not None and stored.is_duplicate is duplicate  # recorded as decided


@pytest.mark.parametrize(
    ("holder", "duplicate"),
    [
        pytest.param(ROWS["refused"], False, id="holder-refused-counts-it"),
        pytest.param(Row("clk_2", "T-H", is_duplicate=True), True, id="holder-not-refused"),
        pytest.param(None, True, id="holder-not-recorded-yet"),
    ],
)
async def test_a_claim_held_by_a_refused_network_does_not_make_a_duplicate(
    step: Step, holder: Row | None, duplicate: bool
) -> None:
    """The one branch of `bind_to_campaign` that reads the store: a duplicate by its click's
    claim alone, its holder looked up."""
    scene = step.scene
    if holder is None:  # accepted by another replica, not recorded yet
        holder_id = scene.conversion(Row("clk_2", "T-elsewhere")).conversion_id
    else:
        holder_id = scene.record(step.traffic, holder).conversion_id
    pending = scene.conversion(Row("clk_2", "T-A"))
    input = ConversionInput(conversion=pending, claim_holder=holder_id)
    memory = clickhouse_memory(pending, step.traffic.memory_for(pending))
    assert memory == ConversionMemory(recorded=None, original=None, same_txid=None)
    campaign = scene.campaign()
    decided = decide(input, step.traffic.get_click(pending.click_id), campaign, memory, "USD")
    assert decided.is_duplicate  # by the claim
    bound = await bind_to_campaign(step.traffic, input, decided, campaign, memory)
    assert bound.is_duplicate is duplicate and bound.refusal == ""

    # The whole step agrees.
    prepared = await step.prepare(pending, claim_holder=holder_id)
    assert prepared.conversion.is_duplicate is duplicate
    assert sends(step, prepared) == ((0, 0) if duplicate else (1, 1))
