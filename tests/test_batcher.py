"""Group commit: an idle writer inserts a lone row at once; a busy one batches. A writer
survives what goes wrong around it (cancelled callers, failing inserts, errors in its own
loop, its thread dying), reports its health in PARTS, and `close` never hangs on it."""

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import CancelledError, Future
from typing import Any

import pytest

from relay.core.supervision import PARTS
from relay.store import batcher as batcher_module
from relay.store.batcher import MAX_RETRY_WAIT_S, BatchInserter, part_name, retry_wait

pytestmark = pytest.mark.unit

Rows = list[list[Any]]


class Recorder:
    def __init__(self) -> None:
        self.batches: list[int] = []
        self.rows: Rows = []
        self.lock = threading.Lock()

    def insert(self, table: str, rows: Rows, columns: list[str]) -> None:
        with self.lock:
            self.batches.append(len(rows))
            self.rows.extend(rows)

    def written(self) -> list[Any]:
        with self.lock:
            return sorted(row[0] for row in self.rows)


class Gated(Recorder):
    """An insert that blocks until the gate opens (a stalled ClickHouse)."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = threading.Event()
        self.gate = threading.Event()

    def insert(self, table: str, rows: Rows, columns: list[str]) -> None:
        self.entered.set()
        assert self.gate.wait(timeout=10), "the test never opened the gate"
        super().insert(table, rows, columns)


class Flaky(Recorder):
    """An insert that raises `error` the first `failures` times, recording start times."""

    def __init__(self, failures: int, error: Exception) -> None:
        super().__init__()
        self.failures = failures
        self.error = error
        self.started: list[float] = []

    def insert(self, table: str, rows: Rows, columns: list[str]) -> None:
        with self.lock:
            self.started.append(time.monotonic())
            failing = len(self.started) <= self.failures
        if failing:
            raise self.error
        super().insert(table, rows, columns)


def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def writer_threads(batcher: BatchInserter) -> list[threading.Thread]:
    return [writer._thread for writer in batcher._writers.values()]


def once_something_is_queued(writer: Any) -> None:
    """Block the writer thread until a row is queued (so `submit` has seen it alive)."""
    eventually(lambda: bool(writer._pending))


def quick(failures: int) -> float:
    return 0.01


@pytest.fixture
def batcher_factory() -> Iterator[Callable[..., BatchInserter]]:
    made: list[BatchInserter] = []

    def make(insert: Callable[[str, Rows, list[str]], None], **kwargs: Any) -> BatchInserter:
        made.append(BatchInserter(insert, **kwargs))
        return made[-1]

    yield make
    for batcher in made:
        batcher.close(timeout=2)


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


def test_cancelled_callers_do_not_stop_the_writer_and_their_rows_are_written(
    batcher_factory: Callable[..., BatchInserter],
) -> None:
    gated = Gated()
    batcher = batcher_factory(gated.insert)
    in_insert = batcher.submit("cancel_t", {"a": 0})
    assert gated.entered.wait(timeout=5)
    in_insert.cancel()  # its caller gives up while the insert runs
    queued = batcher.submit("cancel_t", {"a": 1})
    assert queued.cancel()  # this one gives up before its batch is taken
    gated.gate.set()
    later = [batcher.submit("cancel_t", {"a": i}) for i in range(2, 5)]
    for future in later:
        future.result(timeout=5)
    eventually(lambda: gated.written() == [0, 1, 2, 3, 4])
    assert all(thread.is_alive() for thread in writer_threads(batcher))
    assert queued.cancelled()


async def test_an_activity_that_times_out_waiting_does_not_stop_the_writer(
    batcher_factory: Callable[..., BatchInserter],
) -> None:
    """The production path: `asyncio.wrap_future` cancels the future on a timeout."""
    gated = Gated()
    batcher = batcher_factory(gated.insert)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(asyncio.wrap_future(batcher.submit("wrap_t", {"a": 0})), 0.2)
    gated.gate.set()
    await asyncio.wait_for(asyncio.wrap_future(batcher.submit("wrap_t", {"a": 1})), 5)
    assert gated.written() == [0, 1]
    assert all(thread.is_alive() for thread in writer_threads(batcher))


def test_failed_inserts_fail_their_callers_and_the_writer_recovers(
    batcher_factory: Callable[..., BatchInserter],
) -> None:
    error = OSError("No space left on device: 'alice@example.com'")
    flaky = Flaky(failures=3, error=error)
    batcher = batcher_factory(flaky.insert, wait=quick)
    name = part_name("flaky_t")
    for i in range(3):
        with pytest.raises(OSError) as raised:
            batcher.submit("flaky_t", {"a": i}).result(timeout=5)
        assert raised.value is error  # the caller learns why, and retries itself
        eventually(lambda: name in PARTS.stuck())
        reason = PARTS.stuck()[name]
        assert "OSError" in reason and "No space left on device" in reason
        assert "alice" not in reason  # rows hold personal data
    batcher.submit("flaky_t", {"a": 3}).result(timeout=5)
    eventually(lambda: name not in PARTS.stuck())
    assert [s.ready for s in PARTS.states() if s.name == name] == [True]
    later = [batcher.submit("flaky_t", {"a": i}) for i in range(4, 10)]
    for future in later:
        future.result(timeout=5)
    assert flaky.written() == list(range(3, 10))
    batcher.close()
    assert name not in {s.name for s in PARTS.states()}  # closed on purpose: forgotten


def test_a_failing_writer_backs_off_but_fails_its_callers_at_once(
    batcher_factory: Callable[..., BatchInserter],
) -> None:
    # The callers of a failed insert learn it at once, not after the (here 30 s) backoff.
    stalled = batcher_factory(Flaky(failures=1, error=OSError("refused")).insert, wait=_30s)
    with pytest.raises(OSError, match="refused"):
        stalled.submit("prompt_t", {"a": 0}).result(timeout=10)
    # No insert is tried during the backoff: rows queued meanwhile wait for its end.
    flaky = Flaky(failures=1, error=OSError("refused"))
    batcher = batcher_factory(flaky.insert, wait=lambda failures: 1.0)
    with pytest.raises(OSError, match="refused"):
        batcher.submit("backoff_t", {"a": 0}).result(timeout=10)
    batcher.submit("backoff_t", {"a": 1}).result(timeout=10)
    assert flaky.started[1] - flaky.started[0] >= 0.95
    assert flaky.written() == [1]
    # The default wait grows with failures in a row, capped so that recovery is prompt.
    waits = [retry_wait(n) for n in range(1, 100)]
    assert waits == sorted(waits) and waits[0] < waits[-1] == MAX_RETRY_WAIT_S <= 5.0


def _30s(failures: int) -> float:
    return 30.0


def test_an_error_outside_the_insert_does_not_stop_the_writer(
    batcher_factory: Callable[..., BatchInserter], monkeypatch: pytest.MonkeyPatch
) -> None:
    take = batcher_module._TableWriter._take
    raised = threading.Event()

    def take_once_broken(self: Any) -> Any:
        if not raised.is_set():
            once_something_is_queued(self)
            raised.set()
            raise RuntimeError("a bug in the loop")
        return take(self)

    monkeypatch.setattr(batcher_module._TableWriter, "_take", take_once_broken)
    recorder = Recorder()
    batcher = batcher_factory(recorder.insert, wait=quick)
    first = batcher.submit("loop_t", {"a": 0})
    first.result(timeout=5)
    assert raised.is_set()
    batcher.submit("loop_t", {"a": 1}).result(timeout=5)
    assert recorder.written() == [0, 1]
    assert all(thread.is_alive() for thread in writer_threads(batcher))
    eventually(lambda: part_name("loop_t") not in PARTS.stuck())


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_dead_writer_thread_is_restarted_by_submit(
    batcher_factory: Callable[..., BatchInserter], monkeypatch: pytest.MonkeyPatch
) -> None:
    take = batcher_module._TableWriter._take
    killed = threading.Event()

    def take_once_fatal(self: Any) -> Any:
        if not killed.is_set():
            once_something_is_queued(self)
            killed.set()
            raise SystemExit  # not an Exception: the loop does not catch it
        return take(self)

    monkeypatch.setattr(batcher_module._TableWriter, "_take", take_once_fatal)
    recorder = Recorder()
    batcher = batcher_factory(recorder.insert, wait=quick)
    first = batcher.submit("dead_t", {"a": 0})
    eventually(lambda: killed.is_set() and not any(t.is_alive() for t in writer_threads(batcher)))
    assert not first.done()  # queued, with nobody to write it
    batcher.submit("dead_t", {"a": 1}).result(timeout=5)
    first.result(timeout=5)
    assert recorder.written() == [0, 1]


def test_close_gives_up_on_a_hung_insert_and_says_what_was_not_written(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gated = Gated()
    batcher = BatchInserter(gated.insert)
    try:
        batcher.submit("hung_t", {"a": 0})
        assert gated.entered.wait(timeout=5)
        queued = [batcher.submit("hung_t", {"a": i}) for i in (1, 2)]
        started = time.monotonic()
        with caplog.at_level(logging.ERROR, logger=batcher_module.__name__):
            batcher.close(timeout=0.3)
        assert time.monotonic() - started < 2.0
        for future in queued:
            with pytest.raises(RuntimeError, match="closed before the row was written"):
                future.result(timeout=0)
        assert "2 rows not written, and 1 more in an insert still running" in caplog.text
        assert part_name("hung_t") not in {s.name for s in PARTS.states()}
    finally:
        gated.gate.set()


def test_close_writes_what_is_queued_without_waiting_out_a_backoff() -> None:
    flaky = Flaky(failures=1, error=OSError("refused"))
    batcher = BatchInserter(flaky.insert, wait=lambda failures: 30.0)
    with pytest.raises(OSError, match="refused"):
        batcher.submit("drain_t", {"a": 0}).result(timeout=5)
    queued = batcher.submit("drain_t", {"a": 1})  # waits for the 30 s backoff
    started = time.monotonic()
    batcher.close(timeout=5)
    assert time.monotonic() - started < 2.0
    queued.result(timeout=0)
    assert flaky.written() == [1]


def test_a_cancelled_future_is_not_resolved() -> None:
    """What the writer does with a future whose caller went away: nothing, and no error."""
    future: Future[None] = Future()
    assert future.cancel()
    batcher_module._settle(future, None)
    batcher_module._settle(future, OSError("late"))
    with pytest.raises(CancelledError):
        future.result(timeout=0)
