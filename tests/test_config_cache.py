"""The configuration cache when another process wrote: a lookup that misses waits for a
check of the store rather than answering from the snapshot that check replaces."""

import threading
import time
from concurrent.futures import ThreadPoolExecutor

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
