"""Small helpers shared by the store modules: UTC times and row dictionaries."""

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from relay.store.pool import ClickHouse


def utc_now() -> datetime:
    """The current time, timezone-aware UTC, at millisecond precision like the columns."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def as_utc(value: datetime) -> datetime:
    """ClickHouse engines may return naive datetimes; every stored time is UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_version_lock = threading.Lock()
_last = [0]


def next_version() -> int:
    """Version for ReplacingMergeTree rows: later writes win. The wall clock in nanoseconds,
    never repeated or going back within the process (a clock step back must not let an older
    write win over a newer one)."""
    with _version_lock:
        _last[0] = max(time.time_ns(), _last[0] + 1)
        return _last[0]


def select_dicts(
    client: ClickHouse, sql: str, parameters: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """Run a bound query and return rows as dictionaries, datetimes made UTC-aware."""
    result = client.query(sql, parameters=parameters or {})
    rows: list[dict[str, Any]] = []
    for row in result.named_results():
        rows.append({k: as_utc(v) if isinstance(v, datetime) else v for k, v in row.items()})
    return rows


def insert_dicts(client: ClickHouse, table: str, rows: Sequence[dict[str, Any]]) -> None:
    """Insert rows given as dictionaries sharing the same keys."""
    if not rows:
        return
    columns = list(rows[0])
    client.insert(table, [[row[c] for c in columns] for row in rows], column_names=columns)
