"""ClickHouse's HTTP interface served from chdb, for tests and benches that need several
processes to share one ClickHouse (no modern ClickHouse server installs on these machines).

It serves the part of the protocol clickhouse-connect uses, so Relay talks to it exactly as to
a server (`RELAY_CLICKHOUSE_URL=http://user:password@127.0.0.1:PORT`):

- `POST /` (and `GET /?query=`): the SQL in the `query` parameter, the body, or both joined by
  a newline; `database`, `session_id` (+ `session_timeout`, `session_check`), `query_id`,
  `default_format`, bound parameters `param_NAME`, a multipart form body carrying `query`
  and `param_*` (clickhouse-connect's form encoding for large binds); every other parameter
  is a setting for that query;
- inserts with their data in the body (`INSERT INTO t (cols) FORMAT Native` + data, any
  format chdb reads), request bodies compressed with `Content-Encoding` gzip, deflate, lz4,
  zstd (or br when brotli is installed), chunked or with a length;
- answers: the result in the statement's `FORMAT` (else `default_format`, else TabSeparated),
  never compressed (`Accept-Encoding` is ignored: clients accept identity), with
  `X-ClickHouse-Query-Id`, `-Format` (only when there is a result set), `-Timezone`,
  `-Summary` and `-Server-Display-Name`; errors with ClickHouse's HTTP status for the code,
  `X-ClickHouse-Exception-Code` and the `Code: N. DB::Exception: ...` text;
- `GET /ping` and `GET /` answer `Ok.`; one user and password (Basic auth, the
  `X-ClickHouse-User`/`-Key` headers, or `user`/`password` parameters), else 403 with code 516.

Not served: results streamed while the query runs (each answer is computed first, as with
`wait_end_of_query=1`), progress headers, compressed answers, external data tables, the native
TCP protocol. The engine is one chdb process: no replication, no cluster, no async inserts
on the server side (`async_insert` is whatever chdb does in-process), no users or grants.

Run: `python -m tests.clickhouse_http --data-dir DIR [--port 0] [--user U --password P]`;
it prints `clickhouse-http listening on http://127.0.0.1:PORT` once ready, SIGTERM stops it.
`tests.distributed.ClickHouseHttp` runs it as a child process.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hmac
import json
import logging
import signal
import threading
import uuid
import zlib
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit

from tests.clickhouse_engine import Engine, Outcome, QueryError, Statement

log = logging.getLogger("clickhouse-http")

# Parameters that are not settings (ClickHouse's HTTP handler takes them itself).
_NOT_SETTINGS = frozenset(
    {
        *("query", "database", "default_format", "user", "password", "quota_key"),
        *("query_id", "session_id", "session_timeout", "session_check", "compress"),
        *("decompress", "buffer_size", "wait_end_of_query", "client_protocol_version"),
        *("role", "stacktrace"),
    }
)
# ClickHouse's HTTP status for an exception code (HTTPHandler's mapping, in part).
_STATUS = {
    194: 401,  # REQUIRED_PASSWORD
    **dict.fromkeys((192, 193, 516), 403),  # UNKNOWN_USER, WRONG_PASSWORD, AUTH_FAILED
    # BAD_ARGUMENTS, SYNTAX_ERROR, CANNOT_PARSE_*, TYPE_MISMATCH, ILLEGAL_TYPE, INCORRECT_DATA
    **dict.fromkeys((36, 62, 6, 26, 27, 38, 41, 72, 53, 43, 117), 400),
    # UNKNOWN_TABLE, _FUNCTION, _IDENTIFIER, _TYPE, _STORAGE, _DATABASE, _SETTING, _FORMAT
    **dict.fromkeys((60, 46, 47, 50, 56, 81, 115, 73), 404),
    48: 501,  # NOT_IMPLEMENTED
}
_CONTENT_TYPES = {
    "TabSeparated": "text/tab-separated-values; charset=UTF-8",
    "JSON": "application/json; charset=UTF-8",
    "JSONEachRow": "application/x-ndjson; charset=UTF-8",
}


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "zstd":
        from backports import zstd

        return zstd.decompress(body)
    if encoding == "lz4":
        import lz4.frame  # type: ignore[import-untyped]

        out, rest = bytearray(), body
        while rest:  # clickhouse-connect compresses each block as its own frame
            decompressor = lz4.frame.LZ4FrameDecompressor()
            out += decompressor.decompress(rest)
            rest = decompressor.unused_data
        return bytes(out)
    if encoding == "br":
        import brotli  # type: ignore[import-not-found]

        return cast(bytes, brotli.decompress(body))
    raise QueryError(
        48, f"Code: 48. DB::Exception: Unknown Content-Encoding {encoding!r}. (NOT_IMPLEMENTED)"
    )


def _form_fields(body: bytes, content_type: str) -> dict[str, str]:
    """The text fields of a multipart/form-data body (`query`, `param_*`)."""
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, str] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if part.get_filename() is not None:
            raise QueryError(
                48,
                "Code: 48. DB::Exception: external data tables are not "
                "served by this test server. (NOT_IMPLEMENTED)",
            )
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            fields[name] = payload.decode()
    return fields


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024
    engine: Engine
    credentials: tuple[str, str]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clickhouse-connect's pool expects
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _Server

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        body = self._read_body()
        if url.path in ("/ping", "/replicas_status") or (
            url.path == "/" and not body and "query" not in query
        ):
            self._answer(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            return
        query_id = query.get("query_id") or str(uuid.uuid4())
        if url.path != "/":
            self._answer(404, f"There is no handle {url.path}\n".encode(), {})
            return
        try:
            self._authenticate(query)
            statement, session = self._statement(query, body)
            timeout_s = float(query.get("session_timeout") or 60)
            with self.server.engine.handle(
                session, timeout_s, query.get("session_check") == "1"
            ) as h:
                outcome = self.server.engine.execute(h, statement)
        except QueryError as exc:
            self._refuse(exc, query_id)
            return
        self._respond(outcome, query_id)

    do_GET = do_POST

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return bytes(chunks)
                chunks += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authenticate(self, query: dict[str, str]) -> None:
        user = query.get("user") or self.headers.get("X-ClickHouse-User")
        password = query.get("password") or self.headers.get("X-ClickHouse-Key") or ""
        basic = self.headers.get("Authorization", "")
        if basic.startswith("Basic "):
            user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
        want_user, want_password = self.server.credentials
        if (user or "default") != want_user or not hmac.compare_digest(password, want_password):
            raise QueryError(
                516,
                f"Code: 516. DB::Exception: {user or 'default'}: "
                "Authentication failed: password is incorrect, or there is no "
                "user with such name. (AUTHENTICATION_FAILED)",
            )

    def _statement(self, query: dict[str, str], body: bytes) -> tuple[Statement, str | None]:
        body = _decompress(body, self.headers.get("Content-Encoding", ""))
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            query = {**query, **_form_fields(body, content_type)}
            body = b""
        text = query.get("query", "").encode()
        sql = text + b"\n" + body if text and body else text or body
        statement = Statement(
            sql,
            database=query.get("database") or self.headers.get("X-ClickHouse-Database"),
            settings={
                k: v
                for k, v in query.items()
                if k not in _NOT_SETTINGS and not k.startswith("param_")
            },
            params={k[6:]: v for k, v in query.items() if k.startswith("param_")},
            default_format=query.get("default_format")
            or self.headers.get("X-ClickHouse-Format")
            or "TabSeparated",
        )
        return statement, query.get("session_id") or None

    def _common(self, query_id: str) -> dict[str, str]:
        return {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": self.server.engine.timezone,
            "X-ClickHouse-Server-Display-Name": "chdb-http",
            "Keep-Alive": "timeout=30",
        }

    def _respond(self, outcome: Outcome, query_id: str) -> None:
        headers = self._common(query_id)
        headers["X-ClickHouse-Summary"] = json.dumps(outcome.summary)
        content_type = "text/plain; charset=UTF-8"
        if outcome.format is not None:
            headers["X-ClickHouse-Format"] = outcome.format
            content_type = _CONTENT_TYPES.get(outcome.format, "application/octet-stream")
        headers["Content-Type"] = content_type
        self._answer(200, outcome.body, headers)

    def _refuse(self, exc: QueryError, query_id: str) -> None:
        log.warning("query %s refused: %s", query_id, exc.message.splitlines()[0][:300])
        headers = self._common(query_id)
        headers["X-ClickHouse-Exception-Code"] = str(exc.code)
        headers["Content-Type"] = "text/plain; charset=UTF-8"
        text = f"{exc.message} (version {self.server.engine.version})\n"
        self._answer(_STATUS.get(exc.code, 500), text.encode(), headers)

    def _answer(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: refusals are logged once each in `_refuse`."""


def serve(data_dir: Path, host: str, port: int, user: str, password: str) -> None:
    """Serve until SIGTERM or SIGINT; print the address once listening."""
    data_dir.mkdir(parents=True, exist_ok=True)
    engine = Engine(str(data_dir))
    server = _Server((host, port), _Handler)
    server.engine, server.credentials = engine, (user, password)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    bound_host, bound_port = server.server_address[:2]
    print(f"clickhouse-http listening on http://{bound_host!s}:{bound_port}", flush=True)
    stop.wait()
    server.shutdown()
    thread.join()
    server.server_close()
    engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="ClickHouse's HTTP interface over chdb.")
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    serve(args.data_dir, args.host, args.port, args.user, args.password)


if __name__ == "__main__":
    main()
