"""The configuration cache when another process wrote: a lookup that misses waits for a
check of the store rather than answering from the snapshot that check replaces."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from relay.domain.models import Campaign
from relay.store.config import ConfigStore
from relay.store.config_cache import ConfigCache
from relay.store.pool import ClickHouse
from relay.store.rows import utc_now


def test_concurrent_misses_all_see_what_another_process_wrote(clickhouse: ClickHouse) -> None:
    cache = ConfigCache(ConfigStore(clickhouse), refresh_s=0.05)
    cache.snapshot()
    now = utc_now()
    campaign = Campaign(
        id=f"cmp_cache_{time.time_ns()}",
        name="written elsewhere",
        offer_url="https://offer.example/",
        currency="USD",
        created_at=now,
        updated_at=now,
    )
    ConfigStore(clickhouse).save(campaign)  # another process: this cache is not told
    time.sleep(0.1)  # past the miss's rate limit
    start = threading.Barrier(10)

    def look_up() -> bool:
        start.wait()
        return campaign.id in cache.reload_on_miss().campaigns

    with ThreadPoolExecutor(10) as pool:
        found = list(pool.map(lambda _: look_up(), range(10)))
    assert found == [True] * 10


def _campaign(name: str) -> Campaign:
    now = utc_now()
    return Campaign(
        id=f"cmp_cache_{time.time_ns()}",
        name=name,
        offer_url="https://offer.example/",
        currency="USD",
        created_at=now,
        updated_at=now,
    )


class _SlowStore(ConfigStore):
    """The real store, whose reads of the pixels table can be held or made to fail."""

    def __init__(self, clickhouse: ClickHouse) -> None:
        super().__init__(clickhouse)
        self.reading = threading.Event()
        self.release = threading.Event()
        self.hold = False
        self.fail = False

    def pixels_with_tokens(self) -> list[Any]:
        if self.fail:
            raise OSError("store down")
        if self.hold:
            self.reading.set()
            self.release.wait(10)
        return super().pixels_with_tokens()


def test_a_read_while_a_reload_runs_waits_for_it(clickhouse: ClickHouse) -> None:
    """A write, then a reload (slow), then a read while the reload runs: the read waits for
    the reload and sees the write. (It used to take the snapshot from before the write: a
    token fixed a moment before a redelivery was sent as it was, issue 22 #3.)"""
    store = _SlowStore(clickhouse)
    cache = ConfigCache(store, refresh_s=60, sole_writer=True)
    cache.snapshot()
    written = _campaign("written just before")
    ConfigStore(clickhouse, on_change=cache.invalidate).save(written)
    store.hold = True
    with ThreadPoolExecutor(2) as pool:
        reload = pool.submit(cache.snapshot)  # reads the tables, held before returning
        assert store.reading.wait(10)
        store.hold = False
        during = pool.submit(cache.snapshot)
        time.sleep(0.2)
        store.release.set()
        assert written.id in reload.result(10).campaigns
        assert written.id in during.result(10).campaigns
    written_later = _campaign("written after")
    ConfigStore(clickhouse, on_change=cache.invalidate).save(written_later)
    assert written_later.id in cache.snapshot().campaigns


def test_a_reload_the_store_fails_is_tried_again_by_the_next_read(clickhouse: ClickHouse) -> None:
    store = _SlowStore(clickhouse)
    cache = ConfigCache(store, refresh_s=60, sole_writer=True)
    cache.snapshot()
    written = _campaign("written before the outage")
    ConfigStore(clickhouse, on_change=cache.invalidate).save(written)
    store.fail = True
    with pytest.raises(OSError):
        cache.snapshot()
    store.fail = False  # the store is back: nothing was marked current meanwhile
    assert written.id in cache.snapshot().campaigns
