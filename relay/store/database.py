"""Opening ClickHouse, applying the numbered migrations, and checking the applied schema.

The DSN alone picks the engine: `chdb:///dir` runs ClickHouse in-process, `http(s)://` talks
to a server. Everything else in Relay talks to the returned clickhouse-connect client.

Who applies migrations: `relay migrate`, once per release before the replicas start (the
compose file's relay-migrate job), and the embedded `relay up` at every start (one process).
`relay api` and `relay worker` only check (`check_schema`) and refuse to start on a schema
that is behind, ahead or unknown, naming `relay migrate`. Appliers take the migration lock
(relay/store/migration_lock.py), so two `relay migrate` run at once apply each migration once.

`schema_migrations` records per version the file's name and the sha256 of its bytes. A
recorded migration whose file changed stops both the applier and the check, naming the file:
a released migration is never edited, a change goes in a new file with the next number.
Rows recorded before checksums existed have an empty checksum; the next applier fills in the
file's current checksum (it cannot know the older bytes; the check accepts them until then).
"""

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

import clickhouse_connect
from clickhouse_connect.driver.client import Client

from relay.store.migration_lock import LOCK_WAIT_S, MigrationLockHeld, migration_lock
from relay.store.pool import ClickHouse
from relay.store.sql_split import split_statements

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_DATABASE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A server that accepts connections and never answers (paused, overloaded) holds a call this
# long, not clickhouse-connect's default 300 s: the call fails, its caller retries, and the
# pool's clients and threads are not all held by one stall. Longer than any query Relay runs
# (the console's heaviest take about 1 s at 1M conversions).
SERVER_TIMEOUT_S = 30


def _client(dsn: str, database: str | None = None) -> Client:
    if dsn.startswith(("http://", "https://")):
        return clickhouse_connect.get_client(
            dsn=dsn, database=database, send_receive_timeout=SERVER_TIMEOUT_S
        )
    return clickhouse_connect.get_client(dsn=dsn, database=database)


def open_clickhouse(
    dsn: str, database: str, pool_size: int = 4, batch_linger_s: float = 0.0
) -> ClickHouse:
    """Connect, create `database` if missing, and return a pool of clients bound to it."""
    if not _DATABASE_NAME.match(database):
        raise ValueError(f"invalid ClickHouse database name {database!r}")
    bootstrap = _client(dsn)
    # The name was validated above: identifiers cannot be bound as parameters.
    bootstrap.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    bootstrap.database = database
    clients = [bootstrap]
    clients += [_client(dsn, database=database) for _ in range(pool_size - 1)]
    return ClickHouse(clients, batch_linger_s)


class SchemaMismatch(RuntimeError):
    """The applied schema is not the one this release's migrations make."""


class MigrationChanged(SchemaMismatch):
    """An applied migration's file differs from what was applied."""


# What stops `relay migrate`, `relay up` or a role on a schema problem.
SCHEMA_ERRORS = (SchemaMismatch, MigrationLockHeld)
_RUN_MIGRATE = "run `relay migrate` (once, before starting the API and worker replicas)"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    checksum: str  # sha256 of the file's bytes, hex


def migration(name: str, content: bytes) -> Migration:
    """A migration from its file name (`0001_some_name.sql`) and bytes."""
    match = _MIGRATION_NAME.match(name)
    if not match:
        raise ValueError(f"not a migration file name: {name}")
    checksum = hashlib.sha256(content).hexdigest()
    return Migration(int(match.group(1)), name, content.decode("utf-8"), checksum)


def migration_files() -> list[Migration]:
    """This release's migrations, by version."""
    folder = resources.files("relay.store") / "migrations"
    entries = [e for e in folder.iterdir() if _MIGRATION_NAME.match(e.name)]
    found = [migration(e.name, e.read_bytes()) for e in entries]
    return sorted(found, key=lambda m: m.version)


def _applied(client: ClickHouse) -> dict[int, tuple[str, str]] | None:
    """Recorded migrations: version -> (name, checksum); None without a migrations table
    with checksums (a database never migrated, or migrated by a release before them)."""
    columns = client.query(
        "SELECT name FROM system.columns WHERE database = currentDatabase() "
        "AND table = 'schema_migrations'"
    ).result_rows
    if ("checksum",) not in columns:
        return None
    rows = client.query("SELECT version, name, checksum FROM schema_migrations FINAL").result_rows
    return {int(v): (str(name), str(checksum)) for v, name, checksum in rows}


def _verify(applied: dict[int, tuple[str, str]], files: list[Migration]) -> None:
    """Raise if an applied migration is unknown to this release or its file changed."""
    known = {m.version: m for m in files}
    unknown = sorted(v for v in applied if v not in known)
    if unknown:
        names = ", ".join(applied[v][0] for v in unknown)
        raise SchemaMismatch(
            f"the ClickHouse schema is ahead of this release: it has migrations {names}, "
            "which this release does not have (a newer Relay applied them); run that release"
        )
    for version, (name, checksum) in sorted(applied.items()):
        file = known[version]
        if name != file.name or (checksum and checksum != file.checksum):
            raise MigrationChanged(
                f"migration {file.name} changed after it was applied (applied: {name}, "
                f"sha256 {checksum[:12] or 'unrecorded'}...; file now: sha256 "
                f"{file.checksum[:12]}...). Restore relay/store/migrations/{file.name} as "
                "released; put schema changes in a new migration with the next number"
            )


def check_schema(client: ClickHouse, files: list[Migration] | None = None) -> None:
    """For `relay api` and `relay worker`, which never apply: raise SchemaMismatch unless
    every migration of this release is applied, unchanged, and no other is."""
    files = migration_files() if files is None else files
    applied = _applied(client)
    if applied is None:
        raise SchemaMismatch(
            "the ClickHouse database has no Relay schema (or one from before migration "
            f"checksums): {_RUN_MIGRATE}"
        )
    _verify(applied, files)
    missing = [m.name for m in files if m.version not in applied]
    if missing:
        raise SchemaMismatch(
            "the ClickHouse schema is behind this release: migrations "
            f"{', '.join(missing)} are not applied; {_RUN_MIGRATE}"
        )
    if any(not checksum for _, checksum in applied.values()):
        log.warning("migrations recorded without checksums: %s to record them", _RUN_MIGRATE)


def _record(client: ClickHouse, rows: list[tuple[Migration, datetime]]) -> None:
    client.insert(
        "schema_migrations",
        [[m.version, m.name, at, m.checksum] for m, at in rows],
        column_names=["version", "name", "applied_at", "checksum"],
    )


def _backfill_checksums(client: ClickHouse, files: list[Migration]) -> None:
    """Rows recorded before checksums get the current file's (the new row replaces the
    old one; `_verify` has checked every recorded version has its file, under its name)."""
    known = {m.version: m for m in files}
    rows = client.query(
        "SELECT version, applied_at FROM schema_migrations FINAL WHERE checksum = ''"
    ).result_rows
    if rows:
        _record(client, [(known[int(version)], at) for version, at in rows])
        log.info("recorded the checksums of %d migrations applied before checksums", len(rows))


def apply_migrations(
    client: ClickHouse, files: list[Migration] | None = None, lock_wait_s: float = LOCK_WAIT_S
) -> list[str]:
    """Under the migration lock, apply every migration not yet recorded, in order, and
    record it with its checksum; return the names applied now. Raise MigrationChanged if an
    applied migration's file changed, SchemaMismatch if the schema is ahead of this release,
    MigrationLockHeld if another applier held the lock for `lock_wait_s`."""
    files = migration_files() if files is None else files
    applied_now: list[str] = []
    with migration_lock(client, lock_wait_s):
        client.command(
            "CREATE TABLE IF NOT EXISTS schema_migrations "
            "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
            "ENGINE = ReplacingMergeTree ORDER BY version"
        )
        client.command(
            "ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS checksum String DEFAULT ''"
        )
        applied = _applied(client) or {}
        _verify(applied, files)
        _backfill_checksums(client, files)
        for file in files:
            if file.version in applied:
                continue
            for statement in split_statements(file.sql):
                client.command(statement)
            _record(client, [(file, datetime.now(UTC))])
            log.info("applied migration %s", file.name)
            applied_now.append(file.name)
    return applied_now
