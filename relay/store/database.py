"""Opening ClickHouse and applying the numbered migrations.

The DSN alone picks the engine: `chdb:///dir` runs ClickHouse in-process, `http(s)://` talks
to a server. Everything else in Relay talks to the returned clickhouse-connect client.
"""

import logging
import re
from datetime import UTC, datetime
from importlib import resources

import clickhouse_connect

from relay.store.pool import ClickHouse

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def open_clickhouse(
    dsn: str, database: str, pool_size: int = 4, batch_linger_s: float = 0.0
) -> ClickHouse:
    """Connect, create `database` if missing, and return a pool of clients bound to it."""
    if not _DATABASE_NAME.match(database):
        raise ValueError(f"invalid ClickHouse database name {database!r}")
    bootstrap = clickhouse_connect.get_client(dsn=dsn)
    # The name was validated above: identifiers cannot be bound as parameters.
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    bootstrap.database = database
    clients = [bootstrap]
    clients += [
        clickhouse_connect.get_client(dsn=dsn, database=database) for _ in range(pool_size - 1)
    ]
    return ClickHouse(clients, batch_linger_s)


def _migration_files() -> list[tuple[int, str, str]]:
    folder = resources.files("relay.store") / "migrations"
    found: list[tuple[int, str, str]] = []
    for entry in folder.iterdir():
        match = _MIGRATION_NAME.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.name, entry.read_text("utf-8")))
    return sorted(found)


def _statements(sql: str) -> list[str]:
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    return [stmt.strip() for stmt in "\n".join(lines).split(";") if stmt.strip()]


def apply_migrations(client: ClickHouse) -> list[str]:
    """Apply every migration not yet recorded; return the names applied now."""
    client.command(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    done = {row[0] for row in client.query("SELECT version FROM schema_migrations").result_rows}
    applied: list[str] = []
    for version, name, sql in _migration_files():
        if version in done:
            continue
        for statement in _statements(sql):
            client.command(statement)
        client.insert(
            "schema_migrations",
            [[version, name, datetime.now(UTC)]],
            column_names=["version", "name", "applied_at"],
        )
        log.info("applied migration %s", name)
        applied.append(name)
    return applied
