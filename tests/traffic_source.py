"""A traffic source's postback endpoint on loopback: records every call, answers as scripted."""

import json
import threading
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


class TrafficSource:
    """`script(status, ...)` queues answers (FIFO); with none queued it answers 200 OK."""

    def __init__(self) -> None:
        self.calls: list[SourceCall] = []
        self._answers: deque[tuple[int, dict[str, str]]] = deque()
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
                    status, headers = owner._answers.popleft() if owner._answers else (200, {})
                payload = b"OK" if status < 400 else b"upstream says no"
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = _handle

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def script(self, *answers: int | tuple[int, dict[str, str]]) -> None:
        with self._lock:
            for answer in answers:
                self._answers.append(answer if isinstance(answer, tuple) else (answer, {}))

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
