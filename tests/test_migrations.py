"""Migrations with many replicas: one applier at a time (a lock held in ClickHouse), checksums
of applied migrations, statements split outside quotes and comments, and the roles that check
the schema instead of applying it."""

import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from subprocess import CompletedProcess

import pytest

from relay.core.crypto import KeyRing
from relay.store.database import (
    Migration,
    MigrationChanged,
    SchemaMismatch,
    apply_migrations,
    check_schema,
    migration,
    migration_files,
    open_clickhouse,
)
from relay.store.migration_lock import MigrationLockHeld, break_lock, migration_lock
from relay.store.pool import ClickHouse
from relay.store.sql_split import split_statements
from tests.embedded import free_port


@pytest.fixture
def database(clickhouse_location: tuple[str, str]) -> Iterator[tuple[str, str]]:
    """DSN and name of a fresh database on the session's engine, dropped afterwards."""
    dsn, _ = clickhouse_location
    name = f"relay_migrations_{uuid.uuid4().hex[:8]}"
    yield dsn, name
    client = open_clickhouse(dsn, name, pool_size=1)
    client.command(f"DROP DATABASE {name}")
    client.close()


@pytest.fixture
def store(database: tuple[str, str]) -> Iterator[ClickHouse]:
    client = open_clickhouse(*database, pool_size=2)
    yield client
    client.close()


def _recorded(store: ClickHouse) -> list[tuple[int, int]]:
    """Per version, how many rows record it (FINAL not used: a second apply would show)."""
    rows = store.query(
        "SELECT version, count() FROM schema_migrations GROUP BY version ORDER BY version"
    ).result_rows
    return [(int(v), int(n)) for v, n in rows]


# Statement splitting


def test_a_semicolon_splits_only_outside_quotes_and_comments() -> None:
    sql = """
    -- a comment; with a semicolon
    CREATE TABLE t (s String DEFAULT 'a;b', "we;ird" String, `back;tick` String);
    /* block; comment /* nested; */ still; comment */
    ALTER TABLE t MODIFY COLUMN s COMMENT 'it''s; here\\'s; more'; -- trailing; comment
    SELECT '--not a comment;', "/*not;a comment*/"
    ;;
    """
    assert split_statements(sql) == [
        "CREATE TABLE t (s String DEFAULT 'a;b', \"we;ird\" String, `back;tick` String)",
        "ALTER TABLE t MODIFY COLUMN s COMMENT 'it''s; here\\'s; more'",
        "SELECT '--not a comment;', \"/*not;a comment*/\"",
    ]


def test_comments_and_blanks_alone_are_no_statement() -> None:
    assert split_statements("-- only a comment;\n /* and; this */ ; \n") == []
    assert split_statements("SELECT 1 -- no semicolon at the end") == ["SELECT 1"]


def test_every_shipped_migration_splits_into_statements_clickhouse_runs(
    store: ClickHouse,
) -> None:
    # Applying them all on a fresh database runs each statement once.
    names = [m.name for m in migration_files()]
    assert apply_migrations(store) == names
    assert _recorded(store) == [(m.version, 1) for m in migration_files()]


def test_a_migration_with_a_semicolon_in_a_literal_applies(store: ClickHouse) -> None:
    extra = migration(
        "0099_semicolons.sql",
        b"-- a comment; that the old splitter kept whole\n"
        b"CREATE TABLE semis (s String DEFAULT 'a;b') ENGINE = MergeTree ORDER BY s;\n"
        b"INSERT INTO semis VALUES ('x;y');\n",
    )
    assert apply_migrations(store, [*migration_files(), extra])[-1] == "0099_semicolons.sql"
    assert store.query("SELECT s FROM semis").result_rows == [("x;y",)]


# One applier at a time


def test_concurrent_appliers_apply_each_migration_once(database: tuple[str, str]) -> None:
    appliers = [open_clickhouse(*database, pool_size=1) for _ in range(3)]
    start = threading.Barrier(len(appliers))
    results: list[list[str]] = []
    errors: list[BaseException] = []

    def apply(client: ClickHouse) -> None:
        start.wait()
        try:
            results.append(apply_migrations(client, lock_wait_s=120))
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=apply, args=(c,)) for c in appliers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=180)
    try:
        assert errors == []
        names = [m.name for m in migration_files()]
        # One applier applied everything; the others waited, then found nothing to do.
        assert sorted(results, key=len) == [[], [], names]
        assert _recorded(appliers[0]) == [(m.version, 1) for m in migration_files()]
        tables = appliers[0].query("SHOW TABLES").result_rows
        assert ("schema_migrations_lock",) not in tables  # released
    finally:
        for client in appliers:
            client.close()


def test_a_held_lock_stops_the_applier_naming_the_holder_and_the_fix(
    database: tuple[str, str], store: ClickHouse, caplog: pytest.LogCaptureFixture
) -> None:
    other = open_clickhouse(*database, pool_size=1)
    try:
        with migration_lock(other):  # a `relay migrate` crashed while holding it, say
            with pytest.raises(MigrationLockHeld) as held:
                apply_migrations(store, lock_wait_s=0.5)
            # The wait is not silent: it says who holds the lock and how to clear it.
            waiting = [r.getMessage() for r in caplog.records if "waiting for" in r.getMessage()]
            assert waiting and "pid" in waiting[0] and "relay migrate --unlock" in waiting[0]
            message = str(held.value)
            assert "schema_migrations_lock" in message and "pid" in message
            assert "relay migrate --unlock" in message
            assert "pid" in (break_lock(store) or "")
        assert break_lock(store) is None
        assert apply_migrations(store) == [m.name for m in migration_files()]
    finally:
        other.close()


# Checksums


def test_a_changed_migration_file_stops_apply_and_check_naming_it(store: ClickHouse) -> None:
    apply_migrations(store)
    files = migration_files()
    edited = replace(files[2], checksum=migration(files[2].name, b"-- edited\n").checksum)
    changed: list[Migration] = [*files[:2], edited, *files[3:]]
    for call in (apply_migrations, check_schema):
        with pytest.raises(MigrationChanged) as stopped:
            call(store, changed)
        assert "migration 0003_pixel_fires.sql changed after it was applied" in str(stopped.value)
    check_schema(store)  # the shipped files are fine


def test_migrations_recorded_before_checksums_get_them_on_the_next_apply(
    store: ClickHouse,
) -> None:
    # A data dir migrated by the release before checksums: the table without the column.
    store.command(
        "CREATE TABLE schema_migrations "
        "(version UInt32, name String, applied_at DateTime64(3, 'UTC')) "
        "ENGINE = ReplacingMergeTree ORDER BY version"
    )
    files = migration_files()
    for file in files:
        for statement in split_statements(file.sql):
            store.command(statement)
    store.insert(
        "schema_migrations",
        [[m.version, m.name, "2025-01-01 00:00:00"] for m in files],
        column_names=["version", "name", "applied_at"],
    )
    with pytest.raises(SchemaMismatch, match="relay migrate"):
        check_schema(store)  # a role cannot tell: `relay migrate` records them first

    assert apply_migrations(store) == []
    rows = store.query(
        "SELECT version, checksum, toYear(applied_at) FROM schema_migrations FINAL ORDER BY 1"
    ).result_rows
    assert rows == [(m.version, m.checksum, 2025) for m in files]
    check_schema(store)


# Durability: an acknowledged insert, and a merge, is on disk (0010_fsync_parts.sql)

FSYNC_SETTINGS = (
    "fsync_after_insert = 1",
    "fsync_part_directory = 1",
    "min_rows_to_fsync_after_merge = 1",
)
FSYNCED_TABLES = {
    "clicks",
    "conversions",
    "pixel_fires",
    "postback_attempts",
    "delivery_states",
    "networks",
    "campaigns",
    "pixels",
    "custom_conversions",
    "outbound_postbacks",
    "workspace_settings",
}


def test_every_table_relay_writes_fsyncs_its_parts(store: ClickHouse) -> None:
    apply_migrations(store)
    rows = store.query(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() "
        "AND engine LIKE '%MergeTree' AND name != 'schema_migrations'"
    ).result_rows
    engines = {str(name): str(engine) for name, engine in rows}
    # A table added later fsyncs too: its CREATE states the settings (see 0010).
    assert set(engines) == FSYNCED_TABLES
    for table, engine in engines.items():
        missing = [s for s in FSYNC_SETTINGS if s not in engine]
        assert missing == [], f"{table}: {engine}"


# The roles check instead of applying


def test_the_check_refuses_a_schema_behind_or_ahead_of_the_release(store: ClickHouse) -> None:
    files = migration_files()
    with pytest.raises(SchemaMismatch, match=r"no Relay schema.*relay migrate"):
        check_schema(store)
    apply_migrations(store, files[:-1])
    with pytest.raises(SchemaMismatch, match=f"behind.*{files[-1].name}.*relay migrate"):
        check_schema(store)
    apply_migrations(store)
    check_schema(store)
    with pytest.raises(SchemaMismatch, match=f"ahead.*{files[-1].name}"):
        check_schema(store, files[:-1])
    with pytest.raises(SchemaMismatch, match="ahead"):
        apply_migrations(store, files[:-1])  # an older `relay migrate` changes nothing


# As a user runs them: `relay migrate` applies, `relay api` and `relay worker` refuse until then

# The roles as shipped, except that no ClickHouse server installs on the test machines: an
# in-process engine stands in for it (the roles refuse chdb otherwise).
ROLE = """
import sys
import relay.process.cli as cli
cli._require_distributed = lambda settings, role: settings.temporal_address
cli.main([sys.argv[1]])
"""


def _relay(args: list[str], env: dict[str, str], role: bool = False) -> "CompletedProcess[str]":
    command = (
        [sys.executable, "-c", ROLE, *args] if role else [sys.executable, "-m", "relay", *args]
    )
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)


def test_the_roles_refuse_an_unmigrated_database_until_relay_migrate_ran(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "RELAY_CLICKHOUSE_URL": f"chdb://{tmp_path / 'clickhouse'}",
        "RELAY_DATA_DIR": str(tmp_path),
        "RELAY_ENCRYPTION_KEY": KeyRing.generate_spec("k1"),
        "RELAY_ADMIN_TOKEN": "migrations-test-admin-token-of-32-characters",
    }
    roles = {**env, "RELAY_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}"}  # nothing there
    for role in ("api", "worker"):
        refused = _relay([role], roles, role=True)
        assert refused.returncode == 1, refused.stderr
        assert f"relay {role}: the ClickHouse database has no Relay schema" in refused.stderr
        assert "run `relay migrate`" in refused.stderr

    migrated = _relay(["migrate"], env)
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.startswith("applied: 0001_configuration.sql")
    assert _relay(["migrate"], env).stdout.startswith("schema is up to date")
    assert _relay(["migrate", "--unlock"], env).stdout.strip() == "no migration lock"

    # The schema passes the check now: the worker goes on to Temporal (absent here).
    started = _relay(["worker"], roles, role=True)
    assert "relay worker: cannot connect to Temporal" in started.stderr, started.stderr
