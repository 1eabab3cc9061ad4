"""The forwarder and the inbox's committer never stop on a fault (issue 17): a commit that
fails (disk full), an inbox that cannot be read, a start that raises, a bug in the
forwarder. Each time the part reports stuck while the fault lasts, recovers by itself, and
every entry is started (at least once: starts are idempotent) and leaves the inbox.

A real inbox on a real SQLite file; faults are injected into its real connection (a
`sqlite3.Connection` subclass), and the starts go to a recording stand-in for Temporal."""

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from relay.core.supervision import PARTS, supervise
from relay.ingest import inbox as inbox_module
from relay.ingest.forwarder import Forwarder
from relay.ingest.inbox import Inbox
from tests.support import Starts, candidate, until

DISK_FULL = "database or disk is full"


@dataclass
class Fault:
    """Statements matching `when(sql, statements since BEGIN)` raise `error` while armed,
    `times` times at most (None: until disarmed)."""

    when: Callable[[str, list[str]], bool]
    error: str
    times: int | None = None
    raised: int = 0
    armed: bool = True

    def fires(self, sql: str, batch: list[str]) -> bool:
        if not self.armed or not self.when(sql, batch):
            return False
        self.raised += 1
        if self.times is not None and self.raised >= self.times:
            self.armed = False
        return True


class FaultyConnection(sqlite3.Connection):
    """A real SQLite connection whose statements fail on demand, as a full disk makes them."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.faults: list[Fault] = []
        self.batch: list[str] = []

    def execute(self, sql: str, parameters: object = (), /) -> sqlite3.Cursor:
        if sql.startswith("BEGIN"):
            self.batch = []
        self.batch.append(sql)
        for fault in self.faults:
            if fault.fires(sql, self.batch):
                raise sqlite3.OperationalError(fault.error)
        return super().execute(sql, parameters)  # type: ignore[arg-type]


def commit_removing(sql: str, batch: list[str]) -> bool:
    """The COMMIT of a batch that removes forwarded entries."""
    return sql == "COMMIT" and any(s.startswith("DELETE FROM pending") for s in batch)


def any_commit(sql: str, batch: list[str]) -> bool:
    return sql == "COMMIT"


def rollback(sql: str, batch: list[str]) -> bool:
    return sql == "ROLLBACK"


def reading_pending(sql: str, batch: list[str]) -> bool:
    return sql.startswith("SELECT seq, conversion_id")


@dataclass
class Bench:
    inbox: Inbox
    starts: Starts
    forwarder: Forwarder

    def inject(self, fault: Fault) -> Fault:
        """Into both of the inbox's connections: the writer's and the reader's."""
        for conn in (self.inbox._conn, self.inbox._reader):
            assert isinstance(conn, FaultyConnection)
            conn.faults.append(fault)
        return fault

    async def accept(self, count: int, prefix: str) -> list[str]:
        """Accept `count` postbacks; one whose batch failed to commit (the API would answer
        503) is resent, as its sender would."""
        ids = [f"conv_{prefix}{n:03d}" for n in range(count)]
        for conversion_id in ids:
            for _ in range(50):
                try:
                    await self.inbox.accept(candidate(conversion_id))
                    break
                except sqlite3.OperationalError:
                    await asyncio.sleep(0.05)
            else:
                raise AssertionError(f"{conversion_id} refused 50 times")
            self.forwarder.notify()
        return ids

    async def delivered(self, ids: list[str], timeout_s: float = 20) -> None:
        """Every ID started at least once and out of the inbox."""

        async def done() -> bool:
            left = {e.conversion_id for e in await self.inbox.take(0, 100_000)}
            return all(self.starts.seen[c] for c in ids) and not left & set(ids)

        await until(done, timeout_s, f"{len(ids)} entries started and removed")


def stuck(part: str) -> str | None:
    return PARTS.stuck().get(part)


def ready(part: str) -> bool:
    return any(s.name == part and s.ready for s in PARTS.states())


@pytest.fixture
def clean_parts() -> Iterator[None]:
    yield
    for name in ("forwarder", "inbox"):
        PARTS.forget(name)


@pytest.fixture
async def bench(tmp_path: Path, clean_parts: None) -> AsyncIterator[Bench]:
    """Inbox + forwarder, the forwarder supervised as `running_intake` runs it."""
    inbox = Inbox(tmp_path / "inbox.sqlite", 10_000, 1.0, factory=FaultyConnection)
    starts = Starts()
    forwarder = Forwarder(inbox, starts, concurrency=4)
    task = asyncio.create_task(supervise("forwarder", forwarder.run, forwarder.part))
    try:
        yield Bench(inbox, starts, forwarder)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await inbox.close()


@pytest.mark.unit
async def test_a_failing_removal_is_retried_and_nothing_is_forgotten(bench: Bench) -> None:
    full = bench.inject(Fault(commit_removing, DISK_FULL))
    ids = await bench.accept(20, "a")

    await until(lambda: "cannot remove" in (stuck("forwarder") or ""), 10, "forwarder stuck")
    assert DISK_FULL in (stuck("forwarder") or "")
    await until(lambda: all(bench.starts.seen[c] for c in ids), 10, "all started")
    assert bench.inbox.depth == 20  # started, but not one removed while commits fail

    # Postbacks keep being accepted meanwhile; the forwarder stays alive for them too.
    later = await bench.accept(5, "b")
    full.armed = False
    await bench.delivered(ids + later)
    await until(lambda: ready("forwarder") and ready("inbox"), 10, "forwarder ok again")
    assert bench.inbox.depth == 0
    assert full.raised >= 1


@pytest.mark.unit
async def test_a_failed_rollback_after_a_failed_commit_does_not_stop_the_committer(
    tmp_path: Path, clean_parts: None
) -> None:
    inbox = Inbox(tmp_path / "inbox.sqlite", 100, 1.0, factory=FaultyConnection)
    conn = inbox._conn
    assert isinstance(conn, FaultyConnection)
    try:
        conn.faults += [Fault(any_commit, DISK_FULL, times=1), Fault(rollback, "disk I/O error", 1)]
        with pytest.raises(sqlite3.OperationalError, match=DISK_FULL):
            await inbox.accept(candidate("conv_first"))
        assert conn.in_transaction  # the ROLLBACK failed: the batch is still open
        assert DISK_FULL in (stuck("inbox") or "")
        assert inbox.depth == 0

        # The next batch ends the open one first, then commits: nothing was lost but the
        # refused postback, which its sender resends (the API answered it 503).
        accepted = await inbox.accept(candidate("conv_second"))
        again = await inbox.accept(candidate("conv_first"))
        assert (accepted.status, again.status) == ("accepted", "accepted")
        assert [e.conversion_id for e in await inbox.take(0, 10)] == ["conv_second", "conv_first"]
        assert inbox.depth == 2
        assert ready("inbox")
    finally:
        await inbox.close()
    assert "inbox" not in {s.name for s in PARTS.states()}  # closed: no longer reported


@pytest.mark.unit
async def test_an_idle_stuck_inbox_probes_until_it_can_write_again(
    tmp_path: Path, clean_parts: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(inbox_module, "PROBE_S", 0.1)  # the probe's pace, not its point
    inbox = Inbox(tmp_path / "inbox.sqlite", 100, 1.0, factory=FaultyConnection)
    conn = inbox._conn
    assert isinstance(conn, FaultyConnection)
    try:
        full = Fault(any_commit, DISK_FULL)
        conn.faults.append(full)
        with pytest.raises(sqlite3.OperationalError):
            await inbox.accept(candidate("conv_refused"))
        await until(lambda: full.raised >= 2, 5, "a probe while nothing is queued")
        assert stuck("inbox")
        full.armed = False
        await until(lambda: ready("inbox"), 5, "the inbox ok again without any postback")
    finally:
        await inbox.close()


@pytest.mark.unit
async def test_an_inbox_that_cannot_be_read_is_read_again(bench: Bench) -> None:
    ids = await bench.accept(6, "a")
    await bench.delivered(ids)
    unreadable = bench.inject(Fault(reading_pending, "disk I/O error"))
    later = await bench.accept(6, "b")
    await until(lambda: "cannot read the inbox" in (stuck("forwarder") or ""), 10, "stuck")
    assert not any(bench.starts.seen[c] for c in later)
    unreadable.armed = False
    await bench.delivered(later)
    await until(lambda: ready("forwarder"), 10, "forwarder ok again")


@pytest.mark.unit
async def test_a_start_that_fails_is_retried_and_reported(bench: Bench) -> None:
    bench.starts.failing = {"conv_a001", "conv_a004"}
    ids = await bench.accept(6, "a")
    await until(lambda: "cannot start conv_a00" in (stuck("forwarder") or ""), 10, "stuck")
    await until(lambda: bench.starts.refused >= 4, 10, "starts retried")
    assert bench.inbox.depth >= 2  # the refused ones wait in the inbox
    bench.starts.failing = set()
    await bench.delivered(ids)
    await until(lambda: ready("forwarder"), 10, "forwarder ok again")


class BrokenOnce:
    """A bug inside the forwarder (here: its pressure gauge raising once)."""

    def __init__(self) -> None:
        self.raised = False

    @property
    def high(self) -> bool:
        if not self.raised:
            self.raised = True
            raise ValueError("a bug in the forwarder (simulated)")
        return False

    def enter(self) -> None: ...

    def exit(self) -> None: ...


@pytest.mark.unit
async def test_a_forwarder_that_raises_is_restarted_by_its_supervisor(
    bench: Bench, caplog: pytest.LogCaptureFixture
) -> None:
    ids = await bench.accept(3, "a")
    await bench.delivered(ids)
    bench.forwarder.pressure = BrokenOnce()  # type: ignore[assignment]
    # The forwarding task that takes this entry starts it, then meets the bug.
    trigger = await bench.accept(1, "b")
    await until(lambda: "ValueError" in (stuck("forwarder") or ""), 10, "restart reported")
    assert "restarting (attempt 1)" in (stuck("forwarder") or "")
    later = await bench.accept(3, "c")
    await bench.delivered(trigger + later)
    await until(lambda: ready("forwarder"), 10, "forwarder ok after its restart")
    logged = [r for r in caplog.records if "forwarder cannot make progress" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None  # once, with its cause
