"""Group-committed inserts: rows queued by many callers reach ClickHouse as one insert.

A single-row insert makes a part of its own (5-7 ms each in chdb, and a merge later); a
burst of conversions and attempt logs would make thousands. One writer thread per table
takes whatever is queued, inserts it in one statement, and only then resolves each caller's
future: a caller learns its row is stored when it is. An insert costs about 7 ms of CPU in
chdb whether it holds 1 row or 50 (measured), plus the merges of its part later, so a busy
writer lingers for more rows to join the batch: it inserts at most once per linger, and an
idle one (no insert within the last linger) inserts at once, so a lone row waits for nothing.

Failure. An insert that fails fails every caller of that batch at once, who retries
(`activities.attempts.store_submit`); the writer reports itself stuck in `PARTS` as
`clickhouse writer (<table>)` with the exception's type and first line (quoted text
removed: rows hold personal data), and waits before its next insert, 0.5 s, then 1 s
while inserts keep failing (rows queued meanwhile join that insert). The first
insert that succeeds reports it ok again. Anything else that goes wrong in the writer's loop
is logged once, reported the same way, and the loop goes on after a backoff; should the
thread die all the same, the next `submit` starts a new one.

Cancellation. A caller that stops waiting (an activity timed out or cancelled, which
cancels the future through `asyncio.wrap_future`) does not take its row back: the row is
valid, so it stays queued and is written with its batch, and resolving a future nobody
waits on is skipped. A batch's futures are marked running when it is taken, so they can no
longer be cancelled while their insert runs.

`close` inserts what is queued and stops; if an insert hangs, it gives up after its
timeout (the threads are daemons), fails the callers still queued and logs how many rows
were not written.
"""

import logging
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from contextlib import suppress
from typing import Any

from relay.core.supervision import PARTS, backoff

log = logging.getLogger(__name__)
MAX_BATCH_ROWS = 2_000
MAX_RETRY_WAIT_S = 1.0  # while inserts fail: prompt recovery matters more than quiet
CLOSE_TIMEOUT_S = 30.0

Insert = Callable[[str, list[list[Any]], list[str]], None]
RetryWait = Callable[[int], float]  # failures in a row (1-based) -> seconds to wait
_Queued = tuple[list[Any], Future[None]]


def retry_wait(failures: int) -> float:
    """The wait before the next insert after `failures` failed ones in a row."""
    return min(backoff(failures), MAX_RETRY_WAIT_S)


def part_name(table: str) -> str:
    return f"clickhouse writer ({table})"


def describe(exc: BaseException) -> str:
    """The exception's type and first line, quoted text removed (it may quote row values)."""
    first = str(exc).strip().split("\n", 1)[0]
    first = re.sub(r"'[^']*'|\"[^\"]*\"|`[^`]*`", "'…'", first)
    if len(first) > 200:
        first = first[:200] + "…"
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _claim(future: "Future[None]") -> None:
    """Mark a taken row's future running: from now on `cancel()` no longer applies to it.
    A future cancelled already stays cancelled; its row is written all the same."""
    with suppress(RuntimeError):  # running or finished already (resolved by someone else)
        future.set_running_or_notify_cancel()


def _settle(future: "Future[None]", error: BaseException | None) -> None:
    """Resolve a caller's future unless it is done already (cancelled: nobody waits)."""
    if future.done():
        return
    with suppress(InvalidStateError):  # cancelled between the check and here
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)


class _TableWriter:
    """The queue and writer thread of one table; rows must share one column list."""

    def __init__(
        self,
        insert: Insert,
        table: str,
        columns: list[str],
        linger_s: float,
        wait: RetryWait = retry_wait,
    ) -> None:
        self._insert = insert
        self._linger_s = linger_s
        self._table = table
        self._columns = columns
        self._wait = wait
        self._part = PARTS.part(part_name(table))
        self._pending: list[_Queued] = []
        self._wake = threading.Condition()
        self._closed = False
        self._last_insert = 0.0  # monotonic time the last insert began
        self._failures = 0  # failed inserts (or loop errors) in a row
        self._retry_at = 0.0  # monotonic time before which no insert is tried
        self._stuck = False  # as last reported to PARTS by this writer
        self._loop_error = ""  # the last loop error logged, until the next good insert
        self._in_flight = 0  # rows in the insert running now
        self._lost = 0  # rows whose insert failed after close: written by nobody
        self._thread = self._start()

    def _start(self) -> threading.Thread:
        thread = threading.Thread(target=self._run, name=f"ch-batch-{self._table}", daemon=True)
        thread.start()
        return thread

    def submit(self, row: dict[str, Any]) -> "Future[None]":
        if list(row) != self._columns:
            raise ValueError(f"row columns differ from {self._table}'s batch columns")
        future: Future[None] = Future()
        with self._wake:
            if self._closed:
                raise RuntimeError(f"the {self._table} writer is closed")
            if not self._thread.is_alive():
                log.error("the %s writer thread had stopped; starting a new one", self._table)
                self._thread = self._start()
            self._pending.append((list(row.values()), future))
            self._wake.notify_all()
        return future

    def _take(self) -> list[_Queued]:
        with self._wake:
            while not self._pending and not self._closed:
                self._wake.wait()
            # After a failed insert, wait out the backoff; rows queued meanwhile join.
            while not self._closed:
                left = self._retry_at - time.monotonic()
                if left <= 0:
                    break
                self._wake.wait(left)
            if self._linger_s and not self._closed:
                # Busy (an insert within the last linger): let more rows join, since an
                # insert costs about the same for 1 row or 50. Idle: insert at once.
                deadline = self._last_insert + self._linger_s
                while len(self._pending) < MAX_BATCH_ROWS and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._wake.wait(left)
            batch, self._pending = (
                self._pending[:MAX_BATCH_ROWS],
                self._pending[MAX_BATCH_ROWS:],
            )
            return batch

    def _run(self) -> None:
        """Insert batches until closed and drained; no `Exception` stops it (a BaseException
        ends the thread, and the next `submit` starts another)."""
        while True:
            batch: list[_Queued] = []
            try:
                batch = self._take()
                if not batch:
                    return  # closed and drained
                self._write(batch)
            except Exception as exc:
                if not self._loop_failed(exc, batch):
                    return
            except BaseException as exc:  # the thread dies: `submit` starts another
                for _, future in batch:
                    _settle(future, exc)
                raise

    def _write(self, batch: list[_Queued]) -> None:
        """One insert; its callers learn the outcome at once, then PARTS does."""
        for _, future in batch:
            _claim(future)
        self._last_insert = time.monotonic()
        self._in_flight = len(batch)
        try:
            self._insert(self._table, [row for row, _ in batch], self._columns)
        except BaseException as exc:  # every caller of the batch learns why
            self._in_flight = 0
            for _, future in batch:
                _settle(future, exc)
            self._insert_failed(exc, len(batch))
            return
        self._in_flight = 0
        for _, future in batch:
            _settle(future, None)
        self._failures, self._retry_at, self._loop_error = 0, 0.0, ""
        self._stuck = False
        self._part.ok()

    def _insert_failed(self, exc: BaseException, rows: int) -> None:
        self._failures += 1
        wait = self._wait(self._failures)
        with self._wake:
            self._retry_at = time.monotonic() + wait
            if self._closed:
                self._lost += rows
        self._stuck = True
        self._part.stuck(
            f"insert into {self._table} failed ({describe(exc)}); "
            f"failure {self._failures} in a row, next try in {wait:.1f} s"
        )

    def _loop_failed(self, exc: Exception, batch: list[_Queued]) -> bool:
        """An error outside the insert (a bug): logged once, the batch's callers fail, and
        the loop goes on after a backoff; once closed, the writer stops. Whether to go on."""
        for _, future in batch:
            _settle(future, exc)
        reason = f"writer loop error ({describe(exc)}); continuing"
        if reason != self._loop_error:
            self._loop_error = reason
            if self._stuck:  # PARTS logs transitions only
                log.error("%s: %s", part_name(self._table), reason, exc_info=exc)
            self._part.stuck(reason, None if self._stuck else exc)
            self._stuck = True
        self._failures += 1
        with self._wake:
            if self._closed:  # stopping anyway: `join` fails the queued callers, counts
                return False
            self._wake.wait_for(lambda: self._closed, self._wait(self._failures))
        return True

    def stop(self) -> None:
        """Ask the writer to insert what is queued and stop (`join` waits for it)."""
        with self._wake:
            self._closed = True
            self._wake.notify_all()

    def join(self, deadline: float) -> None:
        """Wait for the writer until `deadline` (monotonic); then give up on what is left:
        its callers fail, and the count of rows not written is logged."""
        self._thread.join(timeout=max(deadline - time.monotonic(), 0.0))
        hung = self._thread.is_alive()
        with self._wake:
            left, self._pending = self._pending, []
            unwritten = self._lost + len(left)
        gone = RuntimeError(f"the {self._table} writer closed before the row was written")
        for _, future in left:
            _settle(future, gone)
        if hung:
            log.error(
                "the %s writer did not stop in time: %d rows not written, and %d more in an "
                "insert still running",
                self._table,
                unwritten,
                self._in_flight,
            )
        elif unwritten:
            log.error("the %s writer stopped: %d rows not written", self._table, unwritten)
        PARTS.forget(part_name(self._table))

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Insert what is queued, then stop (giving up after `timeout`)."""
        self.stop()
        self.join(time.monotonic() + timeout)


class BatchInserter:
    """Per-table group commit through `insert`; `submit` returns when queued."""

    def __init__(
        self,
        insert: Insert,
        linger_s: float = 0.0,
        prompt_tables: frozenset[str] = frozenset(),
        wait: RetryWait = retry_wait,
    ) -> None:
        self._insert = insert
        self._linger_s = linger_s
        self._prompt = prompt_tables  # a person waits on these: no lingering
        self._wait = wait
        self._writers: dict[tuple[str, tuple[str, ...]], _TableWriter] = {}
        self._lock = threading.Lock()

    def submit(self, table: str, row: dict[str, Any]) -> "Future[None]":
        key = (table, tuple(row))
        with self._lock:
            writer = self._writers.get(key)
            if writer is None:
                linger = 0.0 if table in self._prompt else self._linger_s
                writer = _TableWriter(self._insert, table, list(row), linger, self._wait)
                self._writers[key] = writer
        return writer.submit(row)

    def insert(self, table: str, row: dict[str, Any]) -> None:
        """Blocking: queue the row and wait until its batch is stored."""
        self.submit(table, row).result()

    def close(self, timeout: float = CLOSE_TIMEOUT_S) -> None:
        """Every writer inserts what is queued and stops, all within `timeout`."""
        with self._lock:
            writers, self._writers = list(self._writers.values()), {}
        for writer in writers:
            writer.stop()
        deadline = time.monotonic() + timeout
        for writer in writers:
            writer.join(deadline)
