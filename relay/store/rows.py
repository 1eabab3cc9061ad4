"""Small helpers shared by the store modules: UTC times and row dictionaries."""

import weakref
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


def version_sql(table: str, id_column: str = "id") -> str:
    """SQL for the version of a new version of one row of a configuration table
    (ReplacingMergeTree(version), keyed by `id_column`), the row's key bound as `version_of`:
    later writes win, and no Relay host's clock is involved. ClickHouse computes it in the
    write itself: one more than the highest version stored for that row, or the server's
    clock in nanoseconds if that is higher (so versions keep reading as write times and
    continue those written before, which came from each Relay host's clock).

    With several writers on several hosts: a write that starts after another write of the
    same row finished reads that one's version, so it gets a higher one, whatever any clock
    says (a row written by a host whose clock ran ahead, or a server clock stepping back, only
    makes the `max + 1` term win). Two writes of one row that overlap in time have no order to
    keep; each gets a valid version and ReplacingMergeTree keeps one. The lookup goes by the
    table's sort key, inside the INSERT: no extra round trip (measured: as fast as before).
    On a replicated cluster, a replica that has not yet received the row's latest version can
    hand out a lower one: write configuration through one replica, or with insert_quorum.
    `table` and `id_column` must be Relay's own names (identifiers are not bound)."""
    return (
        "greatest(toUInt64(toUnixTimestamp64Nano(now64(9))), "
        f"(SELECT max(version) FROM {table} WHERE {id_column} = {{version_of:String}}) + 1)"
    )


_types: "weakref.WeakKeyDictionary[ClickHouse, dict[str, dict[str, str]]]" = (
    weakref.WeakKeyDictionary()
)


def _column_types(client: ClickHouse, table: str) -> dict[str, str]:
    """The table's column types (read once per client and table: the schema is migrated
    before a process writes, and only by `relay migrate` or `relay up`'s start)."""
    tables = _types.setdefault(client, {})
    if table not in tables:
        rows = client.query(
            "SELECT name, type FROM system.columns "
            "WHERE database = currentDatabase() AND table = {t:String}",
            parameters={"t": table},
        ).result_rows
        tables[table] = {str(name): str(kind) for name, kind in rows}
    return tables[table]


def insert_versioned(
    client: ClickHouse, table: str, row: dict[str, Any], id_column: str = "id"
) -> None:
    """Insert a new version of one configuration row, its version from `version_sql`, in
    one statement (the values bound as typed parameters)."""
    types = _column_types(client, table)
    columns = list(row)
    values = ", ".join(f"{{{c}:{types[c]}}}" for c in columns)
    client.command(
        f"INSERT INTO {table} ({', '.join(columns)}, version) "
        f"SELECT {values}, {version_sql(table, id_column)}",
        parameters={**row, "version_of": row[id_column]},
    )


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
