"""Group-committed inserts: rows queued by many callers reach ClickHouse as one insert.

A single-row insert makes a part of its own (5-7 ms each in chdb, and a merge later); a
burst of conversions and attempt logs would make thousands. One writer thread per table
takes whatever is queued, inserts it in one statement, and only then resolves each caller's
future: a caller learns its row is stored when it is, and an insert that fails fails every
caller of that batch, who retries (`activities.attempts.store_submit`). An insert costs about
7 ms of CPU in chdb whether it holds 1 row or 50 (measured), plus the merges of its part
later, so a busy writer lingers for more rows to join the batch: it inserts at most once per
linger, and an idle one (no insert within the last linger) inserts at once, so a lone row
waits for nothing.
"""

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

log = logging.getLogger(__name__)
MAX_BATCH_ROWS = 2_000

Insert = Callable[[str, list[list[Any]], list[str]], None]


class _TableWriter:
    """The queue and writer thread of one table; rows must share one column list."""

    def __init__(self, insert: Insert, table: str, columns: list[str], linger_s: float) -> None:
        self._insert = insert
        self._linger_s = linger_s
        self._table = table
        self._columns = columns
        self._pending: list[tuple[list[Any], Future[None]]] = []
        self._wake = threading.Condition()
        self._closed = False
        self._last_insert = 0.0  # monotonic time the last insert began
        self._thread = threading.Thread(target=self._run, name=f"ch-batch-{table}", daemon=True)
        self._thread.start()

    def submit(self, row: dict[str, Any]) -> "Future[None]":
        if list(row) != self._columns:
            raise ValueError(f"row columns differ from {self._table}'s batch columns")
        future: Future[None] = Future()
        with self._wake:
            if self._closed:
                raise RuntimeError(f"the {self._table} writer is closed")
            self._pending.append((list(row.values()), future))
            self._wake.notify()
        return future

    def _take(self) -> list[tuple[list[Any], Future[None]]]:
        with self._wake:
            while not self._pending and not self._closed:
                self._wake.wait()
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
        while True:
            batch = self._take()
            if not batch:
                return  # closed and drained
            self._last_insert = time.monotonic()
            try:
                self._insert(self._table, [row for row, _ in batch], self._columns)
            except BaseException as exc:  # every caller of the batch learns why
                for _, future in batch:
                    future.set_exception(exc)
                continue
            for _, future in batch:
                future.set_result(None)

    def close(self) -> None:
        """Insert what is queued, then stop."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join(timeout=30)


class BatchInserter:
    """Per-table group commit through `insert`; `submit` returns when queued."""

    def __init__(
        self, insert: Insert, linger_s: float = 0.0, prompt_tables: frozenset[str] = frozenset()
    ) -> None:
        self._insert = insert
        self._linger_s = linger_s
        self._prompt = prompt_tables  # a person waits on these: no lingering
        self._writers: dict[tuple[str, tuple[str, ...]], _TableWriter] = {}
        self._lock = threading.Lock()

    def submit(self, table: str, row: dict[str, Any]) -> "Future[None]":
        key = (table, tuple(row))
        with self._lock:
            writer = self._writers.get(key)
            if writer is None:
                linger = 0.0 if table in self._prompt else self._linger_s
                writer = _TableWriter(self._insert, table, list(row), linger)
                self._writers[key] = writer
        return writer.submit(row)

    def insert(self, table: str, row: dict[str, Any]) -> None:
        """Blocking: queue the row and wait until its batch is stored."""
        self.submit(table, row).result()

    def close(self) -> None:
        with self._lock:
            writers, self._writers = list(self._writers.values()), {}
        for writer in writers:
            writer.close()
