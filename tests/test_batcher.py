"""Group commit: an idle writer inserts a lone row at once; a busy one batches."""

import threading
import time
from typing import Any

from relay.store.batcher import BatchInserter


class Recorder:
    def __init__(self) -> None:
        self.batches: list[int] = []
        self.lock = threading.Lock()

    def insert(self, table: str, rows: list[list[Any]], columns: list[str]) -> None:
        with self.lock:
            self.batches.append(len(rows))


def test_an_idle_writer_does_not_linger() -> None:
    recorder = Recorder()
    batcher = BatchInserter(recorder.insert, linger_s=5.0)
    try:
        started = time.monotonic()
        batcher.insert("t", {"a": 1})
        assert time.monotonic() - started < 2.0  # far below the 5 s linger
    finally:
        batcher.close()
    assert recorder.batches == [1]


def test_a_busy_writer_inserts_at_most_once_per_linger() -> None:
    recorder = Recorder()
    batcher = BatchInserter(recorder.insert, linger_s=0.3)
    try:
        batcher.insert("t", {"a": 0})  # the writer is now busy for 0.3 s
        futures = []
        for i in range(1, 41):
            futures.append(batcher.submit("t", {"a": i}))
            time.sleep(0.005)
        for future in futures:
            future.result(timeout=10)
    finally:
        batcher.close()
    assert sum(recorder.batches) == 41
    # 40 rows over about 0.2 s, inside one linger: they join one insert (or two, if the
    # machine stalls past the linger).
    assert len(recorder.batches) <= 3, recorder.batches
