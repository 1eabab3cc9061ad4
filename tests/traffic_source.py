"""A traffic source's postback endpoint on loopback: records every call, answers as scripted."""

import json
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class SourceCall:
    method: str
    path: str
    query: dict[str, list[str]]
    raw_query: str
    body: Any


Answer = tuple[int, dict[str, str], bytes | None]
CHUNK = 64 * 1024


class TrafficSource:
    """`script(status, ...)` queues answers (FIFO); with none queued it answers 200 OK.
    A long scripted body goes out in paced chunks; `body_bytes_sent` counts what the
    client took before it hung up."""

    def __init__(self) -> None:
        self.calls: list[SourceCall] = []
        self.body_bytes_sent = 0
        self._answers: deque[Answer] = deque()
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                split = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                with owner._lock:
                    owner.calls.append(
                        SourceCall(
                            self.command,
                            split.path,
                            parse_qs(split.query),
                            split.query,
                            json.loads(raw) if raw else None,
                        )
                    )
                    status, headers, body = (
                        owner._answers.popleft() if owner._answers else (200, {}, None)
                    )
                payload = body or (b"OK" if status < 400 else b"upstream says no")
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    for start in range(0, len(payload), CHUNK):
                        self.wfile.write(payload[start : start + CHUNK])
                        self.wfile.flush()
                        owner.body_bytes_sent += len(payload[start : start + CHUNK])
                        time.sleep(0.01 if len(payload) > CHUNK else 0)
                except OSError:  # the client stopped reading and closed the connection
                    pass

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(
        self, *answers: int | tuple[int, dict[str, str]] | tuple[int, dict[str, str], bytes]
    ) -> None:
        with self._lock:
            for answer in answers:
                if isinstance(answer, int):
                    self._answers.append((answer, {}, None))
                elif len(answer) == 2:
                    self._answers.append((answer[0], answer[1], None))
                else:
                    self._answers.append(answer)

    def __enter__(self) -> "TrafficSource":
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
