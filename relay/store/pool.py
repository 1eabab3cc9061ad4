"""A few ClickHouse clients shared by every thread of the process.

A clickhouse-connect chdb client runs one query at a time (a lock per engine handle), so
with the API and the worker in one process a single client serializes everything. Several
handles on the same engine run side by side (2.0-2.2x queries/s with 4 handles on 2 cores,
measured); over HTTP the extra clients are just extra connections.
"""

import queue
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import ClickHouseError
from clickhouse_connect.driver.query import QueryResult

from relay.store.batcher import BatchInserter


class ClickHouse:
    """The three calls Relay's stores make, each on an idle client of the pool."""

    def __init__(self, clients: Sequence[Client], batch_linger_s: float = 0.0) -> None:
        if not clients:
            raise ValueError("a pool needs at least one client")
        self._clients = list(clients)
        self._idle: queue.SimpleQueue[Client] = queue.SimpleQueue()
        for client in self._clients:
            self._idle.put(client)
        self._batcher: BatchInserter | None = None
        self._batch_linger_s = batch_linger_s
        self._batcher_lock = threading.Lock()

    @property
    def size(self) -> int:
        return len(self._clients)

    @contextmanager
    def _lease(self) -> Iterator[Client]:
        client = self._idle.get()
        try:
            yield client
        finally:
            self._idle.put(client)

    def query(self, sql: str, parameters: dict[str, Any] | None = None) -> QueryResult:
        """A bound query; the result is fully read before the client goes back."""
        with self._lease() as client:
            result = client.query(sql, parameters=parameters or {})
            # Over HTTP, blocks after the first are read lazily: read them while leased.
            _ = result.result_rows
            return result

    def command(self, sql: str, parameters: dict[str, Any] | None = None) -> Any:
        with self._lease() as client:
            return client.command(sql, parameters=parameters or {})

    def insert(self, table: str, rows: Sequence[Sequence[Any]], column_names: list[str]) -> None:
        with self._lease() as client:
            client.insert(table, rows, column_names=column_names)

    def submit_batched(self, table: str, row: dict[str, Any]) -> "Future[None]":
        """Queue one row for a group commit with the rows others queue for the same table
        meanwhile; the future resolves once the batch holding it is stored."""
        with self._batcher_lock:
            if self._batcher is None:
                # Through self.insert, so the batch leases a client like any other call.
                self._batcher = BatchInserter(
                    lambda t, r, c: self.insert(t, r, c),
                    self._batch_linger_s,
                    frozenset({"clicks"}),  # a visitor waits for the redirect
                )
            batcher = self._batcher
        return batcher.submit(table, row)

    def insert_batched(self, table: str, row: dict[str, Any]) -> None:
        """Blocking `submit_batched`."""
        self.submit_batched(table, row).result()

    def close(self) -> None:
        with self._batcher_lock:
            batcher, self._batcher = self._batcher, None
        if batcher is not None:
            batcher.close()
        for client in self._clients:
            client.close()


# What a store call raises when ClickHouse itself is unavailable or refuses the query.
STORE_ERRORS: tuple[type[Exception], ...] = (ClickHouseError, OSError)
