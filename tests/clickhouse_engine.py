"""The engine side of `tests.clickhouse_http`: ClickHouse statements run on chdb handles.

One process owns the data dir and opens chdb handles on it (chdb's `connect`, one engine
per process, any number of handles). A handle runs one statement at a time and keeps
session state (`USE`, `SET`), so an HTTP session (`session_id`) gets a handle of its own,
kept until it has been idle for its `session_timeout`; requests without a session lease an
idle handle from a shared pool. Per-request settings (query parameters) are applied with
`SET` on the handle and reset to DEFAULT when a later request on it no longer sends them:
clients send the same settings with every request, so this costs nothing after the first.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import chdb

# "Code: 60. DB::Exception: ... (UNKNOWN_TABLE)": the code, as ClickHouse puts it first.
_CODE = re.compile(r"Code: (\d+)\.")
_SETTING_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TRAILING_FORMAT = re.compile(r"\bFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_USE = re.compile(r"^\s*USE\s+`?([A-Za-z_][A-Za-z0-9_]*)`?\s*;?\s*$", re.IGNORECASE)
# An insert whose data follows the statement in the body: the data starts after the
# format name and one whitespace character.
_INSERT_DATA = re.compile(
    rb"^\s*INSERT\s+INTO\s+(?P<target>.+?)\s+FORMAT\s+(?P<format>\w+)[ \t]*(?:\r?\n|\s)?",
    re.IGNORECASE | re.DOTALL,
)
_INSERT_SETTINGS = re.compile(r"\s+SETTINGS\s+", re.IGNORECASE)
INSERT_HEAD_BYTES = 64 * 1024


class QueryError(Exception):
    """ClickHouse refused the statement: its code and its own message."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass
class Statement:
    """One request's work: the SQL (or an insert's target and data) and its context."""

    sql: bytes  # the whole text, query parameter and body joined
    database: str | None = None
    settings: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)  # `param_x` without `param_`
    default_format: str = "TabSeparated"


@dataclass
class Outcome:
    """What the statement produced: a body in `format` (None: no result set) and counts."""

    body: bytes
    format: str | None
    summary: dict[str, str]


class _Handle:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.current_db = "default"  # what the handle's USE state is now
        self.session_db = "default"  # what the session chose with USE
        self.applied: dict[str, str] = {}  # settings SET from request parameters
        self.last_used = time.monotonic()


def _connect(path: str) -> Any:
    """A new chdb handle on the process's engine (the first call opens the engine)."""
    return chdb.connect(path)  # type: ignore[no-untyped-call]


def _error(exc: Exception) -> QueryError:
    text = str(exc)
    start = text.find("Code: ")
    message = text[start:].strip() if start >= 0 else text.strip()
    found = _CODE.search(message)
    return QueryError(int(found.group(1)) if found else 1001, message)  # 1001: STD_EXCEPTION


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _summary(result: Any, written: bool) -> dict[str, str]:
    rows, size = str(result.rows_read()), str(result.bytes_read())
    summary = {
        "read_rows": "0" if written else rows,
        "read_bytes": "0" if written else size,
        "written_rows": rows if written else "0",
        "written_bytes": size if written else "0",
        "total_rows_to_read": "0",
        "result_rows": "0" if written else rows,
        "result_bytes": "0",
        "elapsed_ns": str(int(result.elapsed() * 1e9)),
    }
    return summary


class Engine:
    """chdb handles on one data dir, pooled for requests and kept per session."""

    def __init__(self, path: str) -> None:
        self.path = os.path.realpath(path)
        self._first = _Handle(_connect(self.path))  # opens the engine; kept open
        self._idle: list[_Handle] = []
        self._sessions: dict[str, _Handle] = {}
        self._timeouts: dict[str, float] = {}
        self._lock = threading.Lock()
        version = self._first.conn.query("SELECT version(), timezone()", "TabSeparated")
        self.version, self.timezone = version.bytes().decode().strip().split("\t")

    def close(self) -> None:
        with self._lock:
            handles = [*self._idle, *self._sessions.values(), self._first]
            self._idle.clear()
            self._sessions.clear()
        for handle in handles:
            with handle.lock:
                handle.conn.close()

    @contextmanager
    def handle(
        self, session_id: str | None, session_timeout_s: float, check: bool = False
    ) -> Iterator[_Handle]:
        """An idle pooled handle, or the session's own (one statement at a time, as a
        ClickHouse session: a concurrent request gets SESSION_IS_LOCKED)."""
        self._expire_sessions()
        if session_id is None:
            with self._lock:
                handle = self._idle.pop() if self._idle else None
            handle = handle or _Handle(_connect(self.path))
            try:
                with handle.lock:
                    handle.session_db = "default"  # no session: nothing carries over
                    yield handle
            finally:
                with self._lock:
                    self._idle.append(handle)
            return
        with self._lock:
            handle = self._sessions.get(session_id)
            if handle is None and check:
                raise QueryError(
                    372,
                    f"Code: 372. DB::Exception: Session {session_id} not "
                    "found. (SESSION_NOT_FOUND)",
                )
            if handle is None:
                handle = self._sessions[session_id] = _Handle(_connect(self.path))
            self._timeouts[session_id] = session_timeout_s
        if not handle.lock.acquire(blocking=False):
            raise QueryError(
                373,
                f"Code: 373. DB::Exception: Session {session_id} is locked "
                "by a concurrent client. (SESSION_IS_LOCKED)",
            )
        try:
            yield handle
        finally:
            handle.last_used = time.monotonic()
            handle.lock.release()

    def _expire_sessions(self) -> None:
        now = time.monotonic()
        with self._lock:
            expired = [
                sid
                for sid, handle in self._sessions.items()
                if now - handle.last_used > self._timeouts.get(sid, 60.0)
                and not handle.lock.locked()
            ]
            closing = [self._sessions.pop(sid) for sid in expired]
            for sid in expired:
                self._timeouts.pop(sid, None)
        for handle in closing:
            with handle.lock:
                handle.conn.close()

    def execute(self, handle: _Handle, statement: Statement) -> Outcome:
        """Run one statement on a handle the caller holds."""
        self._prepare(handle, statement)
        insert = _INSERT_DATA.match(statement.sql[:INSERT_HEAD_BYTES])
        if insert is not None:
            data = statement.sql[insert.end() :]
            target = insert.group("target").decode("utf-8", errors="strict")
            return self._insert(handle, target, insert.group("format").decode(), data)
        try:
            sql = statement.sql.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise QueryError(
                27,
                f"Code: 27. DB::Exception: the query is not UTF-8: {exc}. "
                "(CANNOT_PARSE_INPUT_ASSERTION_FAILED)",
            ) from None
        named = _TRAILING_FORMAT.search(sql)
        if named is not None:
            result = self._run(handle, sql, named.group(1), statement.params)
            return Outcome(result.bytes() or b"", named.group(1), _summary(result, False))
        fmt = statement.default_format
        # Run TabSeparated with names: a statement with a result set writes at least the
        # names line, one without writes nothing (the X-ClickHouse-Format header says which).
        tsv = fmt in ("TabSeparated", "TSV")
        result = self._run(handle, sql, "TabSeparatedWithNames" if tsv else fmt, statement.params)
        body = result.bytes() or b""
        used = _USE.match(sql)
        if used is not None:
            handle.session_db = handle.current_db = used.group(1)
        if not body:
            return Outcome(b"", None, _summary(result, False))
        if tsv:
            body = body[body.find(b"\n") + 1 :]
        return Outcome(body, fmt, _summary(result, False))

    def _prepare(self, handle: _Handle, statement: Statement) -> None:
        """The database and settings this request asks for, set on the handle."""
        database = statement.database or handle.session_db
        if database != handle.current_db:
            self._run(handle, f"USE `{database}`", "TabSeparated", {})
            handle.current_db = database
        wanted = statement.settings
        for name in [n for n in handle.applied if n not in wanted]:
            self._run(handle, f"SET {name} = DEFAULT", "TabSeparated", {})
            del handle.applied[name]
        for name, value in wanted.items():
            if handle.applied.get(name) == value:
                continue
            if not _SETTING_NAME.match(name):
                raise QueryError(
                    115, f"Code: 115. DB::Exception: Unknown setting '{name}'. (UNKNOWN_SETTING)"
                )
            self._run(handle, f"SET {name} = {_quote(value)}", "TabSeparated", {})
            handle.applied[name] = value

    def _insert(self, handle: _Handle, target: str, fmt: str, data: bytes) -> Outcome:
        """`INSERT INTO t (cols) FORMAT F` + data: the data through a file, as chdb reads
        inserted data (`FROM INFILE`); a SETTINGS clause moves after the file."""
        parts = _INSERT_SETTINGS.split(target, maxsplit=1)
        clause = f" SETTINGS {parts[1]}" if len(parts) == 2 else ""
        if not data.strip():
            return Outcome(b"", None, {"written_rows": "0", "written_bytes": "0"})
        with tempfile.NamedTemporaryFile(suffix=".data") as file:
            file.write(data)
            file.flush()
            sql = f"INSERT INTO {parts[0]} FROM INFILE {_quote(file.name)}{clause} FORMAT {fmt}"
            result = self._run(handle, sql, "TabSeparated", {})
        return Outcome(b"", None, _summary(result, True))

    @staticmethod
    def _run(handle: _Handle, sql: str, fmt: str, params: Mapping[str, str]) -> Any:
        try:
            return handle.conn.query(sql, fmt, params=dict(params))
        except Exception as exc:  # chdb raises its own error type for every refusal
            raise _error(exc) from None
