"""The durable inbox: a postback is answered once it is fsynced here, not after Temporal.

One SQLite file (WAL journal, `synchronous=FULL`: every commit is on disk before it returns)
in the API's data dir. One committer task owns the connection and commits whatever callers
have queued as one transaction (group commit), so a burst costs one fsync per batch rather
than one per postback. The forwarder (relay/forwarder.py) drains `pending` into conversion
workflows and removes an entry only once Temporal has its workflow.

The inbox also remembers what it accepted (`seen`, `claims`) for `memory_days`: a resend of a
known conversion or transaction ID answers `existing` at once, and the first postback for a
(click, event type) is decided here, in commit order, race-free among this inbox's callers.
"""

import asyncio
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    conversion_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    claim_holder TEXT NOT NULL,
    accepted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS seen (
    conversion_id TEXT PRIMARY KEY,
    network_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    txid TEXT NOT NULL,
    is_duplicate INTEGER,
    accepted_at REAL NOT NULL
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS seen_txid ON seen (network_id, event_type, txid)
    WHERE txid != '';
CREATE INDEX IF NOT EXISTS seen_age ON seen (accepted_at);
CREATE TABLE IF NOT EXISTS claims (
    click_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    conversion_id TEXT NOT NULL,
    accepted_at REAL NOT NULL,
    PRIMARY KEY (click_id, event_type)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS claims_age ON claims (accepted_at);
"""


class InboxFull(Exception):
    """The inbox holds `capacity` entries not yet forwarded."""


@dataclass(frozen=True)
class Candidate:
    """A postback to accept: its identity, its dedup keys and its serialized body."""

    conversion_id: str
    network_id: str
    click_id: str
    event_type: str
    txid: str
    claims_click: bool  # takes part in per-(click, event) dedup (reversals do not)
    body: str


@dataclass(frozen=True)
class Acceptance:
    conversion_id: str
    status: Literal["accepted", "existing"]
    is_duplicate: bool | None


@dataclass(frozen=True)
class PendingEntry:
    seq: int
    conversion_id: str
    body: str
    claim_holder: str
    accepted_at: float


@dataclass(frozen=True)
class InboxStats:
    depth: int
    oldest_age_s: float | None
    capacity: int


Op = Callable[[sqlite3.Connection], Any]


class Inbox:
    """Group-committed SQLite inbox; every method that writes returns once it is durable."""

    def __init__(self, path: Path, capacity: int, memory_days: float) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.capacity = capacity
        self.memory_s = memory_days * 86_400
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(_SCHEMA)
        self._depth: int = self._conn.execute("SELECT count(*) FROM pending").fetchone()[0]
        self._queue: list[tuple[Op, asyncio.Future[Any]]] = []
        self._wake = asyncio.Event()
        self._closed = False
        self._committer: asyncio.Task[None] | None = None
        # Its own thread: a commit never queues behind ClickHouse calls in the shared pool.
        self._fsync = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox-commit")

    # The committer ------------------------------------------------------------------
    # Statements run on the event loop (tens of microseconds each); only COMMIT, which
    # waits for the disk, runs in a thread. Callers that arrive meanwhile form the next
    # batch. (A writer thread running the statements itself was measured slower: each
    # statement waited for the event loop to hand over the GIL, 40-80 ms a batch.)
    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._queue = self._queue, []
            if batch:
                await self._commit(batch)
            elif self._closed:
                return

    async def _commit(self, batch: list[tuple[Op, "asyncio.Future[Any]"]]) -> None:
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        depth = self._depth
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            for op, future in batch:
                conn.execute("SAVEPOINT op")
                try:
                    results.append((future, op(conn), None))
                    conn.execute("RELEASE op")
                except Exception as exc:  # this caller's error only; the batch goes on
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    results.append((future, None, exc))
            loop = asyncio.get_running_loop()
            await asyncio.shield(loop.run_in_executor(self._fsync, conn.execute, "COMMIT"))
        except BaseException as exc:  # the commit failed: nobody's write is durable
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            self._depth = depth
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for future, value, error in results:
            if future.done():  # the caller went away (cancelled); its write stands
                continue
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

    async def _call(self, op: Callable[[sqlite3.Connection], T]) -> T:
        if self._closed:
            raise RuntimeError("the inbox is closed")
        if self._committer is None:
            self._committer = asyncio.create_task(self._run(), name="inbox-committer")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append((op, future))
        self._wake.set()
        return await future

    # Operations ---------------------------------------------------------------------
    async def accept(self, candidate: Candidate) -> Acceptance:
        """Durably accept the postback, or name the conversion that already has it."""
        return await self._call(lambda conn: self._accept(conn, candidate))

    def _accept(self, conn: sqlite3.Connection, c: Candidate) -> Acceptance:
        known = conn.execute(
            "SELECT conversion_id, is_duplicate FROM seen WHERE conversion_id = ?",
            (c.conversion_id,),
        ).fetchone()
        if known is None and c.txid:
            known = conn.execute(
                # `txid != ''` lets SQLite use the partial index (else: a full scan).
                "SELECT conversion_id, is_duplicate FROM seen "
                "WHERE network_id = ? AND event_type = ? AND txid = ? AND txid != ''",
                (c.network_id, c.event_type, c.txid),
            ).fetchone()
        if known is not None:
            duplicate = None if known[1] is None else bool(known[1])
            return Acceptance(known[0], "existing", duplicate)
        if self._depth >= self.capacity:
            raise InboxFull(f"the inbox holds {self._depth} postbacks not yet forwarded")
        now = time.time()
        holder = ""
        if c.claims_click:
            conn.execute(
                "INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?)",
                (c.click_id, c.event_type, c.conversion_id, now),
            )
            holder = conn.execute(
                "SELECT conversion_id FROM claims WHERE click_id = ? AND event_type = ?",
                (c.click_id, c.event_type),
            ).fetchone()[0]
        # Known now: not a duplicate if it is the first for its click and event (or takes
        # no part in that rule). Otherwise it depends on the click's campaign: decided later.
        duplicate = False if holder in ("", c.conversion_id) else None
        conn.execute(
            "INSERT INTO seen VALUES (?, ?, ?, ?, ?, ?)",
            (c.conversion_id, c.network_id, c.event_type, c.txid, duplicate, now),
        )
        conn.execute(
            "INSERT INTO pending (conversion_id, body, claim_holder, accepted_at) "
            "VALUES (?, ?, ?, ?)",
            (c.conversion_id, c.body, holder, now),
        )
        self._depth += 1
        return Acceptance(c.conversion_id, "accepted", duplicate)

    async def take(self, after_seq: int, limit: int) -> list[PendingEntry]:
        """Pending entries after `after_seq`, oldest first."""

        def op(conn: sqlite3.Connection) -> list[PendingEntry]:
            rows = conn.execute(
                "SELECT seq, conversion_id, body, claim_holder, accepted_at FROM pending "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
            return [PendingEntry(*row) for row in rows]

        return await self._call(op)

    async def forwarded(self, conversion_ids: list[str]) -> None:
        """Temporal has these conversions' workflows: they leave the inbox."""

        def op(conn: sqlite3.Connection) -> None:
            for conversion_id in conversion_ids:
                deleted = conn.execute(
                    "DELETE FROM pending WHERE conversion_id = ?", (conversion_id,)
                ).rowcount
                self._depth -= deleted

        await self._call(op)

    async def forget_older(self) -> int:
        """Drop the dedup memory older than `memory_days`; ClickHouse remembers beyond."""
        cutoff = time.time() - self.memory_s

        def op(conn: sqlite3.Connection) -> int:
            gone = conn.execute("DELETE FROM seen WHERE accepted_at < ?", (cutoff,)).rowcount
            conn.execute("DELETE FROM claims WHERE accepted_at < ?", (cutoff,))
            return int(gone)

        return await self._call(op)

    async def stats(self) -> InboxStats:
        def op(conn: sqlite3.Connection) -> InboxStats:
            oldest = conn.execute("SELECT min(accepted_at) FROM pending").fetchone()[0]
            age = None if oldest is None else max(0.0, time.time() - oldest)
            return InboxStats(self._depth, age, self.capacity)

        return await self._call(op)

    @property
    def depth(self) -> int:
        return self._depth

    async def close(self) -> None:
        """Commit what is queued, then close the file."""
        self._closed = True
        self._wake.set()
        if self._committer is not None:
            await self._committer
        self._fsync.shutdown()
        self._conn.close()


def read_stats(path: Path) -> InboxStats:
    """Depth and oldest entry's age of an inbox file, read-only (for `relay inbox`)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        depth, oldest = conn.execute("SELECT count(*), min(accepted_at) FROM pending").fetchone()
    finally:
        conn.close()
    age = None if oldest is None else max(0.0, time.time() - oldest)
    return InboxStats(int(depth), age, 0)
