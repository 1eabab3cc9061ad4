"""One migration applier at a time, on any ClickHouse: a table created as a mutex.

Taking the lock is `CREATE TABLE schema_migrations_lock` without IF NOT EXISTS, in Relay's
database. ClickHouse serializes DDL on one table name (a per-name guard in the database; in a
Replicated database the DDL log in Keeper orders them), so when several appliers race exactly
one CREATE succeeds and every other fails with TABLE_ALREADY_EXISTS: the lock cannot be taken
twice, whatever the hosts' clocks. The table holds no data (Null engine); its comment says who
holds it (a random token, process and host) and ClickHouse records when it was created.
Releasing it is `DROP TABLE ... SYNC`, after checking the comment is still ours.

A loser waits, trying again every 0.2 s, then gives up with MigrationLockHeld naming the
holder. After the holder finished, the next applier finds every migration recorded and
applies nothing.

A stale lock: an applier that crashed (SIGKILL, lost host) while applying leaves the table.
Nothing can tell a crashed applier from a slow one (a MATERIALIZE COLUMN on a large table can
take minutes), so the lock is never broken automatically. Once sure no `relay migrate` runs,
clear it with `relay migrate --unlock` (or `DROP TABLE <database>.schema_migrations_lock`);
the interrupted migration is not recorded and is applied again (migrations are written to be
re-runnable: IF NOT EXISTS, ADD COLUMN IF NOT EXISTS...).
"""

import logging
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

from clickhouse_connect.driver.exceptions import DatabaseError

from relay.store.pool import ClickHouse

log = logging.getLogger(__name__)
LOCK_TABLE = "schema_migrations_lock"
LOCK_WAIT_S = 600.0  # a waiting `relay migrate` gives up after this
_POLL_S = 0.2
_SAY_EVERY_S = 30.0  # while waiting, say so this often


class MigrationLockHeld(RuntimeError):
    """Another applier holds the migration lock (or a crashed one left it)."""


def _holder(client: ClickHouse) -> tuple[str, datetime] | None:
    """The lock's comment and when ClickHouse created it; None when free."""
    rows = client.query(
        "SELECT comment, metadata_modification_time FROM system.tables "
        "WHERE database = currentDatabase() AND name = {t:String}",
        parameters={"t": LOCK_TABLE},
    ).result_rows
    if not rows:
        return None
    comment, since = rows[0]
    return str(comment), since


def _try_create(client: ClickHouse, comment: str) -> bool:
    literal = "'" + comment.replace("\\", "\\\\").replace("'", "\\'") + "'"
    try:
        client.command(f"CREATE TABLE {LOCK_TABLE} (holder String) ENGINE = Null COMMENT {literal}")
    except DatabaseError as exc:
        if "TABLE_ALREADY_EXISTS" in str(exc) or "Code: 57." in str(exc):
            return False
        raise
    return True


@contextmanager
def migration_lock(client: ClickHouse, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """Hold the migration lock for the block; wait up to `wait_s` for another holder."""
    started = datetime.now(UTC).isoformat(timespec="seconds")
    comment = f"{uuid.uuid4().hex} pid {os.getpid()} on {socket.gethostname()} from {started}"
    deadline = time.monotonic() + wait_s
    said_at = 0.0
    while not _try_create(client, comment):
        now = time.monotonic()
        if now >= deadline or now - said_at >= _SAY_EVERY_S:
            holder = _holder(client)
            held = f"{holder[0]} (created {holder[1]} server time)" if holder else "gone now"
        if now - said_at >= _SAY_EVERY_S and now < deadline:
            said_at = now
            log.warning(
                "waiting for the migration lock %s, held by %s; giving up in %.0f s. If no "
                "`relay migrate` is running (one crashed), clear it with `relay migrate "
                "--unlock`",
                LOCK_TABLE,
                held,
                deadline - now,
            )
        if now >= deadline:
            raise MigrationLockHeld(
                f"another migration applier holds the lock {LOCK_TABLE}: {held}. If no "
                "`relay migrate` is running (one crashed), clear it with `relay migrate "
                "--unlock` and run `relay migrate` again"
            )
        time.sleep(_POLL_S)
    try:
        yield
    finally:
        holder = _holder(client)
        if holder is not None and holder[0] == comment:  # not cleared and taken by another
            client.command(f"DROP TABLE IF EXISTS {LOCK_TABLE} SYNC")


def break_lock(client: ClickHouse) -> str | None:
    """Clear a stale lock; who held it, or None if nobody did."""
    holder = _holder(client)
    client.command(f"DROP TABLE IF EXISTS {LOCK_TABLE} SYNC")
    return None if holder is None else f"{holder[0]} (created {holder[1]} server time)"
