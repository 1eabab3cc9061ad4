"""A failed attempt's row that cannot be stored within the attempt's wait is written later
by the worker, once: retried while the store refuses, left to its own write while that is
still queued, and written again only if that write fails."""

import asyncio
import threading
from concurrent.futures import Future

import pytest

from activities import late_rows
from activities.attempts import store_within

pytestmark = pytest.mark.unit


class Store:
    """Writes that fail `refusals` times, then are stored; `hold` keeps one write queued."""

    def __init__(self, refusals: int = 0) -> None:
        self.refusals = refusals
        self.stored = 0
        self.tries = 0
        self.held: list[Future[None]] = []
        self.hold = False
        self.lock = threading.Lock()

    def submit(self) -> "Future[None]":
        future: Future[None] = Future()
        with self.lock:
            self.tries += 1
            if self.hold:
                self.held.append(future)
            elif self.refusals > 0:
                self.refusals -= 1
                future.set_exception(ConnectionError("store down"))
            else:
                self.stored += 1
                future.set_result(None)
        return future


async def _until(check: object, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.02)


async def test_a_refused_row_is_written_later_once(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(late_rows, "backoff", lambda failures: 0.05)
    store = Store(refusals=5)  # more than the wait's own tries
    assert not await store_within(store.submit, 0.3, keep=True)
    assert store.stored == 0
    await _until(lambda: store.stored == 1 and late_rows.writing() == 0)
    await asyncio.sleep(0.2)
    assert store.stored == 1


async def test_a_queued_row_is_left_to_its_write_then_retried_if_it_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(late_rows, "backoff", lambda failures: 0.05)
    store = Store()
    store.hold = True
    assert not await store_within(store.submit, 0.2, keep=True)
    assert store.tries == 1 and late_rows.writing() == 0  # nothing started meanwhile
    store.hold = False
    store.held[0].set_exception(ConnectionError("the insert failed"))
    await _until(lambda: store.stored == 1 and late_rows.writing() == 0)

    store.hold = True
    assert not await store_within(store.submit, 0.2, keep=True)
    store.hold = False
    store.held[1].set_result(None)  # its own write landed: no second one
    await asyncio.sleep(0.3)
    assert store.stored == 1 and store.tries == 3


async def test_without_keep_nothing_is_written_later() -> None:
    store = Store(refusals=30)
    assert not await store_within(store.submit, 0.3)
    tries = store.tries
    await asyncio.sleep(0.3)
    assert store.tries == tries and store.stored == 0
