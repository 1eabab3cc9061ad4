"""The durable inbox: a postback is answered once it is fsynced here, not after Temporal.

One SQLite file (WAL journal, `synchronous=FULL`: every commit is on disk before it returns)
in the API's data dir. One committer task owns the writing connection and commits whatever
callers have queued as one transaction (group commit), so a burst costs one fsync per batch
rather than one per postback; reads (`take`, `stats`) use a second connection. The
forwarder (relay/ingest/forwarder.py) drains `pending` into conversion workflows and removes an
entry only once Temporal has its workflow.

The inbox also remembers what it accepted (`seen`, `claims`) for `memory_days`: a resend of a
known conversion or transaction ID answers `existing` at once, and the first postback for a
(click, event type) is decided here, in commit order, race-free among this inbox's callers.
The rules are relay/conversions/dedup.py's; the inbox keeps the facts and asks it.

One process owns an inbox file: an exclusive lock on `<inbox>.lock`, held while it is open,
refuses a second (InboxInUse). The committer never stops on a failed commit (disk full, I/O
error): the callers of that batch get the error (the API answers 503) and part `inbox`
reports stuck; while it is stuck, a probe the size of a postback's write is tried every
PROBE_S, and the part is ok again once that, or a postback, commits.
"""

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from relay.conversions import dedup
from relay.conversions.dedup import Acceptance as Acceptance
from relay.conversions.dedup import Remembered
from relay.core.supervision import PARTS, Part

T = TypeVar("T")
log = logging.getLogger(__name__)
PROBE_S = 1.0  # while stuck: how often the inbox tries a postback-sized write

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


class InboxClosed(RuntimeError):
    """The inbox was closed (the API is stopping): nothing more is accepted."""

    def __init__(self) -> None:
        super().__init__("the inbox is closed: this API is stopping")


class InboxInUse(RuntimeError):
    """Another process (or another Inbox in this one) has the inbox file open."""


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _lock(path: Path) -> IO[str]:
    """An exclusive lock on the inbox's sidecar lock file, holding this process's pid; the
    kernel releases it when the process dies, however it dies."""
    handle = lock_path(path).open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise InboxInUse(
            f"another relay api (pid {owner}) is using the inbox {path.resolve()}; stop it, "
            "or give this one its own RELAY_INBOX_PATH (or RELAY_DATA_DIR)"
        ) from None
    handle.truncate(0)
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


def ensure_free(path: Path) -> None:
    """Raise InboxInUse if another process holds the inbox: for a one-line refusal before
    serving (inside the app's lifespan, uvicorn prints a traceback instead). The inbox
    takes the lock itself when it opens."""
    if lock_path(path).exists():
        _lock(path).close()


def _consume(future: "asyncio.Future[Any]") -> None:
    if not future.cancelled():
        future.exception()  # a failed probe is reported through the part, not here


@dataclass(frozen=True)
class Candidate:
    """A postback to accept: its identity, its dedup keys and its serialized body."""

    conversion_id: str
    network_id: str
    click_id: str
    event_type: str
    txid: str
    claims_click: bool  # takes its click's claim (dedup.takes_click_claim: reversals do not)
    body: str


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


@dataclass(frozen=True)
class _Queued:
    op: Op
    future: "asyncio.Future[Any]"
    sized_like_accept: bool = False  # committed, it shows that a postback would commit


class Inbox:
    """Group-committed SQLite inbox; every method that writes returns once it is durable.

    `part` reports whether postbacks can be written (default: part `inbox` of the process
    registry); `factory` is the sqlite3 connection class (tests inject faults through it)."""

    def __init__(
        self,
        path: Path,
        capacity: int,
        memory_days: float,
        part: Part | None = None,
        factory: type[sqlite3.Connection] = sqlite3.Connection,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.capacity = capacity
        self.memory_s = memory_days * 86_400
        self.part = part or PARTS.part("inbox")
        self._lock = _lock(path)
        try:
            self._conn = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, factory=factory
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.executescript(_SCHEMA)
            self._depth: int = self._conn.execute("SELECT count(*) FROM pending").fetchone()[0]
            # Reads (`take`, `stats`) on a connection of their own, outside the group commit:
            # a batch whose commit fails (disk full) then never stops the forwarder from
            # reading what was accepted before, and starting it.
            self._reader = sqlite3.connect(
                path, check_same_thread=False, isolation_level=None, factory=factory
            )
        except BaseException:
            self._lock.close()  # releases the lock
            raise
        self._queue: list[_Queued] = []
        self._wake = asyncio.Event()
        self._closed = False
        # False from a failed write until a postback's write (or the probe) commits again.
        self._writable = True
        self._probe_at = 0.0  # monotonic; while not writable, when to try the probe
        self._committer: asyncio.Task[None] | None = None
        # Its own thread: a commit never queues behind ClickHouse calls in the shared pool.
        self._fsync = ThreadPoolExecutor(max_workers=1, thread_name_prefix="inbox-commit")
        self.part.ok()

    # The committer ------------------------------------------------------------------
    # Statements run on the event loop (tens of microseconds each); only COMMIT, which
    # waits for the disk, runs in a thread. Callers that arrive meanwhile form the next
    # batch. (A writer thread running the statements itself was measured slower: each
    # statement waited for the event loop to hand over the GIL, 40-80 ms a batch.)
    async def _run(self) -> None:
        while True:
            if self._closed:
                pass  # commit what is queued, then end
            elif self._writable:
                await self._wake.wait()
            else:  # stuck: the probe is due even when nothing is queued
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self._probe_at - time.monotonic())
            self._wake.clear()
            batch, self._queue = self._queue, []
            if batch:
                await self._commit(batch)
            elif self._closed:
                return
            if not self._writable and not self._closed and time.monotonic() >= self._probe_at:
                self._probe_at = time.monotonic() + PROBE_S
                await self._commit([self._probe()])  # alone: it never fails others' writes

    def _probe(self) -> _Queued:
        """A postback's write without the postback: the pages an accept changes, changed
        and restored in one transaction. Only once it commits would a postback commit (a
        smaller write may fit where an accept does not, on an almost full disk)."""

        def op(conn: sqlite3.Connection) -> None:
            body = "p" * 1024  # about a conversion's JSON
            conn.execute("INSERT OR REPLACE INTO seen VALUES ('probe', '', '', '', NULL, 0)")
            conn.execute("INSERT OR REPLACE INTO claims VALUES ('probe', '', 'probe', 0)")
            conn.execute(
                "INSERT OR REPLACE INTO pending (conversion_id, body, claim_holder, accepted_at) "
                "VALUES ('probe', ?, '', 0)",
                (body,),
            )
            conn.execute("DELETE FROM pending WHERE conversion_id = 'probe'")
            conn.execute("DELETE FROM claims WHERE click_id = 'probe'")
            conn.execute("DELETE FROM seen WHERE conversion_id = 'probe'")

        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_consume)
        return _Queued(op, future, sized_like_accept=True)

    async def _commit(self, batch: list[_Queued]) -> None:
        results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
        depth = self._depth
        conn = self._conn
        proof = False  # a write the size of a postback's is in this batch
        fault: sqlite3.OperationalError | None = None  # a statement the disk refused
        try:
            if conn.in_transaction:  # a ROLLBACK that failed left the last batch open
                conn.execute("ROLLBACK")
            conn.execute("BEGIN IMMEDIATE")
            for queued in batch:
                conn.execute("SAVEPOINT op")
                changes = conn.total_changes
                try:
                    results.append((queued.future, queued.op(conn), None))
                    conn.execute("RELEASE op")
                    proof |= queued.sized_like_accept and conn.total_changes != changes
                except Exception as exc:  # this caller's error only; the batch goes on
                    if not conn.in_transaction:
                        raise  # SQLite rolled the whole batch back (disk full, I/O error)
                    conn.execute("ROLLBACK TO op")
                    conn.execute("RELEASE op")
                    results.append((queued.future, None, exc))
                    if isinstance(exc, sqlite3.OperationalError):
                        fault = exc
            loop = asyncio.get_running_loop()
            await asyncio.shield(loop.run_in_executor(self._fsync, conn.execute, "COMMIT"))
        except BaseException as exc:  # the commit failed: nobody's write is durable
            self._roll_back()
            self._depth = depth
            for queued in batch:
                if not queued.future.done():
                    queued.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            self._cannot_write(exc)
            return
        if fault is not None:
            self._cannot_write(fault)
        elif proof and not self._writable:
            self._writable = True
            self.part.ok()
        for future, value, error in results:
            if future.done():  # the caller went away (cancelled); its write stands
                continue
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

    def _roll_back(self) -> None:
        """End a failed batch; if even that fails, the next batch tries again first."""
        if not self._conn.in_transaction:  # SQLite rolled it back itself
            return
        try:
            self._conn.execute("ROLLBACK")
        except sqlite3.Error as exc:
            log.warning("inbox: ROLLBACK failed (%s); tried again before the next batch", exc)

    def _cannot_write(self, exc: BaseException) -> None:
        self._writable = False
        self._probe_at = time.monotonic() + PROBE_S
        self.part.stuck(
            f"the inbox {self.path} cannot be written ({type(exc).__name__}: {exc}); "
            "postbacks are answered 503",
            exc,
        )

    def _start_committer(self) -> None:
        """Started on first use; started again should it ever have ended (a bug): callers
        would otherwise wait forever for a commit."""
        if self._committer is not None and self._committer.done():
            dead = self._committer
            error = None if dead.cancelled() else dead.exception()
            reason = f"the inbox committer ended ({type(error).__name__}: {error}); restarted"
            self.part.stuck(reason, error)
            self._writable = False  # the probe reports ok
            self._probe_at = time.monotonic()
            self._committer = None
        if self._committer is None:
            self._committer = asyncio.create_task(self._run(), name="inbox-committer")

    async def _call(self, op: Callable[[sqlite3.Connection], T], accepts: bool = False) -> T:
        if self._closed:
            raise InboxClosed()
        if self._committer is None or self._committer.done():
            self._start_committer()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.append(_Queued(op, future, accepts))
        self._wake.set()
        return await future

    # Operations ---------------------------------------------------------------------
    async def accept(self, candidate: Candidate) -> Acceptance:
        """Durably accept the postback, or name the conversion that already has it."""
        return await self._call(lambda conn: self._accept(conn, candidate), accepts=True)

    def _accept(self, conn: sqlite3.Connection, c: Candidate) -> Acceptance:
        same_id = _remembered(
            conn.execute(
                "SELECT conversion_id, is_duplicate FROM seen WHERE conversion_id = ?",
                (c.conversion_id,),
            ).fetchone()
        )
        same_txid = None
        if same_id is None and dedup.binds_txid(c.txid):
            same_txid = _remembered(
                conn.execute(
                    # `txid != ''` lets SQLite use the partial index (else: a full scan).
                    "SELECT conversion_id, is_duplicate FROM seen "
                    "WHERE network_id = ? AND event_type = ? AND txid = ? AND txid != ''",
                    (c.network_id, c.event_type, c.txid),
                ).fetchone()
            )
        resend = dedup.resend_at_accept(same_id, same_txid)
        if resend is not None:
            return resend
        if self._depth >= self.capacity:
            raise InboxFull(f"the inbox holds {self._depth} postbacks not yet forwarded")
        now = time.time()
        holder = ""
        if c.claims_click:  # the first to commit its claim holds it
            conn.execute(
                "INSERT OR IGNORE INTO claims VALUES (?, ?, ?, ?)",
                (c.click_id, c.event_type, c.conversion_id, now),
            )
            holder = conn.execute(
                "SELECT conversion_id FROM claims WHERE click_id = ? AND event_type = ?",
                (c.click_id, c.event_type),
            ).fetchone()[0]
        accepted = dedup.accepted_at_accept(c.conversion_id, holder)
        conn.execute(
            "INSERT INTO seen VALUES (?, ?, ?, ?, ?, ?)",
            (c.conversion_id, c.network_id, c.event_type, c.txid, accepted.is_duplicate, now),
        )
        conn.execute(
            "INSERT INTO pending (conversion_id, body, claim_holder, accepted_at) "
            "VALUES (?, ?, ?, ?)",
            (c.conversion_id, c.body, holder, now),
        )
        self._depth += 1
        return accepted

    def _read(self) -> sqlite3.Connection:
        if self._closed:
            raise InboxClosed()
        return self._reader

    async def take(self, after_seq: int, limit: int) -> list[PendingEntry]:
        """Committed pending entries after `after_seq`, oldest first (no commit needed)."""
        rows = (
            self._read()
            .execute(
                "SELECT seq, conversion_id, body, claim_holder, accepted_at FROM pending "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            )
            .fetchall()
        )
        return [PendingEntry(*row) for row in rows]

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
        """Drop the dedup memory older than `memory_days`; ClickHouse remembers beyond. An
        entry still waiting to be forwarded (Temporal away longer than the window) keeps
        its memory: its resend must answer `existing`, not collide with it in `pending`."""
        cutoff = dedup.inbox_memory_cutoff(time.time(), self.memory_s)
        waiting = "conversion_id NOT IN (SELECT conversion_id FROM pending)"

        def op(conn: sqlite3.Connection) -> int:
            gone = conn.execute(
                f"DELETE FROM seen WHERE accepted_at < ? AND {waiting}", (cutoff,)
            ).rowcount
            conn.execute(f"DELETE FROM claims WHERE accepted_at < ? AND {waiting}", (cutoff,))
            return int(gone)

        return await self._call(op)

    async def stats(self) -> InboxStats:
        oldest = self._read().execute("SELECT min(accepted_at) FROM pending").fetchone()[0]
        age = None if oldest is None else max(0.0, time.time() - oldest)
        return InboxStats(self._depth, age, self.capacity)

    @property
    def depth(self) -> int:
        return self._depth

    async def close(self) -> None:
        """Commit what is queued, then close the file and release it."""
        self._closed = True
        self._wake.set()
        try:
            if self._queue and (self._committer is None or self._committer.done()):
                self._start_committer()
            if self._committer is not None:
                await asyncio.gather(self._committer, return_exceptions=True)
            self._fsync.shutdown()
            self._conn.close()
            self._reader.close()
        finally:
            self._lock.close()  # releases the lock
            self.part.forget()


def _remembered(row: tuple[str, int | None] | None) -> Remembered | None:
    """A `seen` row (its is_duplicate 0, 1 or NULL) as what the inbox remembers."""
    if row is None:
        return None
    conversion_id, is_duplicate = row
    return Remembered(conversion_id, None if is_duplicate is None else bool(is_duplicate))


def read_stats(path: Path) -> InboxStats:
    """Depth and oldest entry's age of an inbox file, read-only (for `relay inbox`)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        depth, oldest = conn.execute("SELECT count(*), min(accepted_at) FROM pending").fetchone()
    finally:
        conn.close()
    age = None if oldest is None else max(0.0, time.time() - oldest)
    return InboxStats(int(depth), age, 0)
