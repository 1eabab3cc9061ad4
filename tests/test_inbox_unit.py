"""The inbox on its own (relay/ingest/inbox.py), on a real SQLite file: what `accept` decides
(first per click and event, a resend, a transaction-ID resend), the capacity refusal, the
dedup memory's window (RELAY_INBOX_MEMORY_DAYS, `forget_older`), durability across a
reopen, and its stats. tests/test_inbox.py runs it end to end under `relay up`; the rules it
asks relay/conversions/dedup.py, every branch: tests/test_dedup.py."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from relay.core.settings import Settings
from relay.core.supervision import PARTS
from relay.ingest.inbox import Acceptance, Candidate, Inbox, InboxClosed, InboxFull, read_stats

DAY_S = 86_400


def candidate(
    conversion_id: str,
    click_id: str = "clk_1",
    event: str = "sale",
    txid: str = "",
    network: str = "net_a",
    claims_click: bool = True,
) -> Candidate:
    return Candidate(
        conversion_id=conversion_id,
        network_id=network,
        click_id=click_id,
        event_type=event,
        txid=txid,
        claims_click=claims_click,
        body=f'{{"conversion_id": "{conversion_id}"}}',
    )


@pytest.fixture
def forget_part() -> Iterator[None]:
    yield
    PARTS.forget("inbox")


@pytest.fixture
async def inbox(tmp_path: Path, forget_part: None) -> AsyncIterator[Inbox]:
    opened = Inbox(tmp_path / "inbox.sqlite", capacity=100, memory_days=1.0)
    try:
        yield opened
    finally:
        await opened.close()


async def holders(inbox: Inbox) -> dict[str, str]:
    """Each pending entry's claim holder, by conversion ID."""
    return {e.conversion_id: e.claim_holder for e in await inbox.take(0, 1000)}


async def test_the_first_per_click_and_event_is_known_original_and_holds_the_claim(
    inbox: Inbox,
) -> None:
    first = await inbox.accept(candidate("conv_first", txid="T-1"))
    second = await inbox.accept(candidate("conv_second", txid="T-2"))
    other_event = await inbox.accept(candidate("conv_lead", event="lead"))
    other_click = await inbox.accept(candidate("conv_click2", click_id="clk_2"))
    assert first == Acceptance("conv_first", "accepted", False)
    # Not the first: a duplicate unless the event repeats on the campaign, decided later.
    assert second == Acceptance("conv_second", "accepted", None)
    assert other_event == Acceptance("conv_lead", "accepted", False)
    assert other_click == Acceptance("conv_click2", "accepted", False)
    assert await holders(inbox) == {
        "conv_first": "conv_first",
        "conv_second": "conv_first",
        "conv_lead": "conv_lead",
        "conv_click2": "conv_click2",
    }
    assert inbox.depth == 4


async def test_a_reversal_takes_no_claim(inbox: Inbox) -> None:
    await inbox.accept(candidate("conv_sale"))
    refund = await inbox.accept(candidate("conv_refund", event="refund", claims_click=False))
    again = await inbox.accept(candidate("conv_refund2", event="refund", claims_click=False))
    assert (refund.is_duplicate, again.is_duplicate) == (False, False)
    assert (await holders(inbox))["conv_refund2"] == ""


async def test_a_resend_is_existing_with_what_was_known_and_queues_nothing(inbox: Inbox) -> None:
    await inbox.accept(candidate("conv_first"))
    await inbox.accept(candidate("conv_second", txid="T-2"))
    resent_first = await inbox.accept(candidate("conv_first"))
    resent_second = await inbox.accept(candidate("conv_second", txid="T-2"))
    assert resent_first == Acceptance("conv_first", "existing", False)
    assert resent_second == Acceptance("conv_second", "existing", None)
    assert inbox.depth == 2 and len(await inbox.take(0, 10)) == 2


async def test_a_txid_resend_names_the_conversion_that_has_it_whatever_its_click(
    inbox: Inbox,
) -> None:
    await inbox.accept(candidate("conv_txid", click_id="clk_1", txid="T-9"))
    resend = await inbox.accept(candidate("conv_other_click", click_id="clk_2", txid="T-9"))
    assert resend == Acceptance("conv_txid", "existing", False)
    # The txid binds (network, event type, txid): another network or event is new.
    other_network = await inbox.accept(candidate("conv_net_b", "clk_3", txid="T-9", network="b"))
    other_event = await inbox.accept(candidate("conv_lead", "clk_4", event="lead", txid="T-9"))
    assert (other_network.status, other_event.status) == ("accepted", "accepted")
    assert sorted(await holders(inbox)) == ["conv_lead", "conv_net_b", "conv_txid"]


async def test_a_full_inbox_refuses_new_postbacks_but_answers_resends(
    tmp_path: Path, forget_part: None
) -> None:
    inbox = Inbox(tmp_path / "inbox.sqlite", capacity=2, memory_days=1.0)
    try:
        await inbox.accept(candidate("conv_1", click_id="clk_1"))
        await inbox.accept(candidate("conv_2", click_id="clk_2", txid="T-2"))
        with pytest.raises(InboxFull):
            await inbox.accept(candidate("conv_3", click_id="clk_3"))
        assert (await inbox.accept(candidate("conv_1", "clk_1"))).status == "existing"
        assert (await inbox.accept(candidate("conv_x", "clk_x", txid="T-2"))).status == "existing"
        assert inbox.depth == 2

        # Refused, it left no trace: once there is room it is accepted as new.
        await inbox.forwarded(["conv_1"])
        assert await inbox.accept(candidate("conv_3", click_id="clk_3")) == Acceptance(
            "conv_3", "accepted", False
        )
        assert inbox.depth == 2
    finally:
        await inbox.close()


async def test_forwarded_entries_leave_once_and_the_rest_stay_in_order(inbox: Inbox) -> None:
    for n in range(5):
        await inbox.accept(candidate(f"conv_{n}", click_id=f"clk_{n}"))
    await inbox.forwarded(["conv_1", "conv_3"])
    await inbox.forwarded(["conv_1", "conv_unknown"])  # removed already: depth unchanged
    assert inbox.depth == 3
    entries = await inbox.take(0, 10)
    assert [e.conversion_id for e in entries] == ["conv_0", "conv_2", "conv_4"]
    assert [e.conversion_id for e in await inbox.take(entries[0].seq, 1)] == ["conv_2"]
    # Forwarded, a conversion is still remembered: its resend is existing.
    assert (await inbox.accept(candidate("conv_1", click_id="clk_1"))).status == "existing"


def test_the_memory_window_is_relay_inbox_memory_days(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RELAY_INBOX_MEMORY_DAYS", "2.5")
    assert Settings().inbox_memory_days == 2.5


async def test_forget_older_keeps_what_is_within_the_window(inbox: Inbox) -> None:
    await inbox.accept(candidate("conv_kept", txid="T-1"))
    await inbox.forwarded(["conv_kept"])
    assert inbox.memory_s == DAY_S
    assert await inbox.forget_older() == 0
    assert (await inbox.accept(candidate("conv_kept", txid="T-1"))).status == "existing"
    resend = await inbox.accept(candidate("conv_other_click", click_id="clk_2", txid="T-1"))
    assert resend == Acceptance("conv_kept", "existing", False)
    second = await inbox.accept(candidate("conv_second", txid="T-2"))
    assert second == Acceptance("conv_second", "accepted", None)  # the claim is remembered


async def test_past_the_window_a_resend_is_no_longer_existing(
    tmp_path: Path, forget_part: None
) -> None:
    window_s = 0.1
    inbox = Inbox(tmp_path / "inbox.sqlite", capacity=100, memory_days=window_s / DAY_S)
    try:
        await inbox.accept(candidate("conv_old", click_id="clk_old", txid="T-1"))
        await inbox.forwarded(["conv_old"])
        await asyncio.sleep(window_s * 1.5)
        await inbox.accept(candidate("conv_new", click_id="clk_new", txid="T-2"))
        assert await inbox.forget_older() == 1  # conv_old only: conv_new is within the window
        assert (await inbox.accept(candidate("conv_new", "clk_new", txid="T-2"))).status == (
            "existing"
        )

        # Forgotten, conv_old's click claim, txid and ID are new to the inbox (ClickHouse's
        # memory decides them then: relay/conversions/dedup.py `judge`).
        rival = await inbox.accept(candidate("conv_rival", click_id="clk_old", txid="T-3"))
        assert rival == Acceptance("conv_rival", "accepted", False)  # first for clk_old again
        resent = await inbox.accept(candidate("conv_old", click_id="clk_old", txid="T-1"))
        assert resent == Acceptance("conv_old", "accepted", None)  # second for clk_old now
        # Accepted again, it is remembered again.
        elsewhere = await inbox.accept(candidate("conv_elsewhere", click_id="clk_9", txid="T-1"))
        assert elsewhere == Acceptance("conv_old", "existing", None)
    finally:
        await inbox.close()


async def test_what_was_accepted_survives_a_close_and_a_reopen(
    tmp_path: Path, forget_part: None
) -> None:
    path = tmp_path / "inbox.sqlite"
    inbox = Inbox(path, capacity=100, memory_days=1.0)
    await inbox.accept(candidate("conv_done", click_id="clk_1"))
    await inbox.accept(candidate("conv_waiting", click_id="clk_2", txid="T-2"))
    await inbox.accept(candidate("conv_dup", click_id="clk_2", txid="T-3"))
    await inbox.forwarded(["conv_done"])
    before = await inbox.take(0, 10)
    await inbox.close()
    with pytest.raises(InboxClosed):
        await inbox.accept(candidate("conv_late", click_id="clk_9"))

    reopened = Inbox(path, capacity=100, memory_days=1.0)
    try:
        assert reopened.depth == 2
        assert await reopened.take(0, 10) == before
        assert [(e.conversion_id, e.claim_holder) for e in before] == [
            ("conv_waiting", "conv_waiting"),
            ("conv_dup", "conv_waiting"),
        ]
        # The memory and the claims are durable too.
        assert (await reopened.accept(candidate("conv_done", "clk_1"))).status == "existing"
        later = await reopened.accept(candidate("conv_later", click_id="clk_2", txid="T-4"))
        assert later == Acceptance("conv_later", "accepted", None)
        assert reopened.depth == 3
    finally:
        await reopened.close()


async def test_stats_count_what_waits_and_its_age(inbox: Inbox) -> None:
    empty = await inbox.stats()
    assert (empty.depth, empty.oldest_age_s, empty.capacity) == (0, None, 100)
    await inbox.accept(candidate("conv_a", click_id="clk_a"))
    await asyncio.sleep(0.05)
    await inbox.accept(candidate("conv_b", click_id="clk_b"))
    waiting = await inbox.stats()
    assert waiting.depth == 2 and waiting.capacity == 100
    assert waiting.oldest_age_s is not None and 0.05 <= waiting.oldest_age_s < 5
    on_disk = read_stats(inbox.path)  # what `relay inbox` reads, beside the running API
    assert on_disk.depth == 2 and on_disk.oldest_age_s is not None
    await inbox.forwarded(["conv_a"])
    one = await inbox.stats()
    assert one.depth == 1 and one.oldest_age_s is not None
    assert one.oldest_age_s < waiting.oldest_age_s  # conv_b, the younger, is the oldest now
    await inbox.forwarded(["conv_b"])
    assert (await inbox.stats()).oldest_age_s is None


async def test_a_resend_of_an_entry_still_waiting_past_the_window_is_existing(
    tmp_path: Path, forget_part: None
) -> None:
    window_s = 0.02
    inbox = Inbox(tmp_path / "inbox.sqlite", capacity=100, memory_days=window_s / DAY_S)
    try:
        await inbox.accept(candidate("conv_waiting"))  # Temporal unreachable: not forwarded
        await asyncio.sleep(window_s * 2)
        await inbox.forget_older()
        assert (await inbox.accept(candidate("conv_waiting"))).status == "existing"
        assert inbox.depth == 1
    finally:
        await inbox.close()
