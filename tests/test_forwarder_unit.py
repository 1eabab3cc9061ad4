"""The forwarder on its own (relay/ingest/forwarder.py): a real inbox on a real SQLite file, and
Temporal's recording stand-in at the forwarder's one seam, its start function (the `Starts`
of tests/test_forwarder_faults.py, which covers the faults). Here: entries are started
oldest first and leave the inbox; a forwarder stopped mid-way (a failed start, a start in
flight) and started again, on the reopened inbox, starts what is left and nothing twice
that had left; the memory sweep runs from the forwarder."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

import relay.ingest.forwarder
from relay.core.supervision import PARTS
from relay.ingest.forwarder import Forwarder
from relay.ingest.inbox import Inbox, PendingEntry
from tests.support import Starts, candidate, until


@pytest.fixture
def forget_parts() -> Iterator[None]:
    yield
    for name in ("forwarder", "inbox"):
        PARTS.forget(name)


@pytest.fixture
async def inbox(tmp_path: Path, forget_parts: None) -> AsyncIterator[Inbox]:
    opened = Inbox(tmp_path / "inbox.sqlite", capacity=1000, memory_days=1.0)
    try:
        yield opened
    finally:
        await opened.close()


async def accept(inbox: Inbox, ids: list[str]) -> None:
    for conversion_id in ids:
        await inbox.accept(candidate(conversion_id))


async def stop(task: "asyncio.Task[None]") -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def pending_ids(inbox: Inbox) -> list[str]:
    return [e.conversion_id for e in await inbox.take(0, 1000)]


async def test_entries_are_started_oldest_first_and_leave_the_inbox(inbox: Inbox) -> None:
    ids = [f"conv_{n:02d}" for n in range(12)]
    await accept(inbox, ids)
    starts = Starts()
    forwarder = Forwarder(inbox, starts, concurrency=1)
    task = asyncio.create_task(forwarder.run())
    try:
        await until(lambda: inbox.depth == 0, 5, "every entry removed")
        assert list(starts.seen) == ids  # one start each, in the order accepted
        assert set(starts.seen.values()) == {1}
        assert forwarder.forwarded == 12 and forwarder.retries == 0

        # One accepted while it runs: `notify` wakes it at once (it would wait 1 s else).
        await accept(inbox, ["conv_late"])
        forwarder.notify()
        await until(lambda: inbox.depth == 0, 0.5, "the late entry removed")
        assert list(starts.seen)[-1] == "conv_late"
    finally:
        await stop(task)
    assert await pending_ids(inbox) == []


class Hanging(Starts):
    """Starts as `Starts` does, but a start of an ID in `hang` never returns (a start in
    flight when the process stops)."""

    def __init__(self, hang: set[str]) -> None:
        super().__init__()
        self.hang = hang
        self.calls: list[str] = []

    async def __call__(self, entry: PendingEntry) -> None:
        self.calls.append(entry.conversion_id)
        if entry.conversion_id in self.hang:
            await asyncio.Event().wait()
        await super().__call__(entry)


async def test_stopped_and_started_again_it_starts_what_is_left_and_nothing_that_left(
    tmp_path: Path, forget_parts: None
) -> None:
    path = tmp_path / "inbox.sqlite"
    inbox = Inbox(path, capacity=1000, memory_days=1.0)
    ids = ["conv_ok1", "conv_refused", "conv_in_flight", "conv_ok2"]
    await accept(inbox, ids)
    first = Hanging(hang={"conv_in_flight"})
    first.failing = {"conv_refused"}
    forwarder = Forwarder(inbox, first, concurrency=4)
    task = asyncio.create_task(forwarder.run())
    await until(
        lambda: (
            first.refused >= 1
            and first.seen["conv_ok1"]
            and first.seen["conv_ok2"]
            and "conv_in_flight" in first.calls
        ),
        5,
        "two started, one refused, one in flight",
    )
    await stop(task)
    # Stopping removes what was started; the refused and the one in flight stay.
    assert await pending_ids(inbox) == ["conv_refused", "conv_in_flight"]
    assert forwarder.retries >= 1
    await inbox.close()

    reopened = Inbox(path, capacity=1000, memory_days=1.0)
    try:
        again = Starts()
        task = asyncio.create_task(Forwarder(reopened, again, concurrency=4).run())
        try:
            await until(lambda: reopened.depth == 0, 5, "the rest started and removed")
        finally:
            await stop(task)
        assert dict(again.seen) == {"conv_refused": 1, "conv_in_flight": 1}
    finally:
        await reopened.close()


async def test_the_forwarder_sweeps_the_inbox_memory(
    tmp_path: Path, forget_parts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(relay.ingest.forwarder, "_MEMORY_SWEEP_S", 0.0)  # sweep on every look
    window_s = 0.05
    inbox = Inbox(tmp_path / "inbox.sqlite", capacity=100, memory_days=window_s / 86_400)
    starts = Starts()
    forwarder = Forwarder(inbox, starts, concurrency=1)
    task = asyncio.create_task(forwarder.run())
    try:
        await accept(inbox, ["conv_swept"])
        forwarder.notify()
        await until(lambda: inbox.depth == 0, 5, "forwarded")
        resent = await inbox.accept(candidate("conv_swept"))
        assert resent.status == "existing"  # within the memory
        await asyncio.sleep(window_s * 2)

        async def forgotten() -> bool:
            forwarder.notify()  # the forwarder looks (and sweeps) now, not in 1 s
            return (await inbox.accept(candidate("conv_swept"))).status == "accepted"

        await until(forgotten, 5, "the memory swept by the forwarder")
        forwarder.notify()
        await until(lambda: starts.seen["conv_swept"] == 2, 5, "started again (idempotent)")
    finally:
        await stop(task)
        await inbox.close()
