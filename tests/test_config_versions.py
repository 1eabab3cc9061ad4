"""Configuration row versions come from ClickHouse, not from the writing host's clock: a
write that follows another wins even when the earlier writer's clock ran ahead."""

import time

from relay.domain.models import Network
from relay.store.config import ConfigStore
from relay.store.pool import ClickHouse
from relay.store.rows import utc_now

DAY_NS = 86_400 * 10**9


def _ahead_writer_setting(store: ClickHouse, key: str, value: str) -> int:
    """A row as written by a replica whose clock runs a day ahead (what the release before
    this one did: each host's clock was the version)."""
    version = time.time_ns() + DAY_NS
    store.insert(
        "workspace_settings", [[key, value, version]], column_names=["key", "value", "version"]
    )
    return version


def test_a_later_write_wins_over_a_writer_whose_clock_ran_ahead(store: ClickHouse) -> None:
    config = ConfigStore(store)
    config.put_setting("timezone", "UTC")
    skewed = _ahead_writer_setting(store, "timezone", "from the fast host")
    config.put_setting("timezone", "Europe/Paris")  # after it, from a host with a true clock
    assert config.get_setting("timezone") == "Europe/Paris"
    newest = store.query("SELECT max(version) FROM workspace_settings").result_rows[0][0]
    assert newest == skewed + 1


def test_a_delete_after_a_skewed_write_deletes(store: ClickHouse) -> None:
    config = ConfigStore(store)
    now = utc_now()
    network = Network(id="net_skew", name="n", created_at=now, updated_at=now)
    config.save(network)
    columns = ["id", "name", "created_at", "updated_at", "version"]
    ahead = [["net_skew", "renamed by the fast host", now, now, time.time_ns() + DAY_NS]]
    store.insert("networks", ahead, column_names=columns)
    assert (config.get(Network, "net_skew") or network).name == "renamed by the fast host"
    config.delete("networks", "net_skew")
    assert config.get(Network, "net_skew") is None


def test_versions_of_a_row_grow_with_every_write(store: ClickHouse) -> None:
    config = ConfigStore(store)
    seen = []
    for value in range(5):
        config.put_setting("k", str(value))
        seen.append(store.query("SELECT max(version) FROM workspace_settings").result_rows[0][0])
    assert seen == sorted(set(seen))
    assert config.get_setting("k") == "4"
