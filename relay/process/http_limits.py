"""What one client may cost the API's HTTP server: a socket for a bounded time, never the
event loop and never unbounded memory.

Uvicorn bounds only idle keep-alive connections (`timeout_keep_alive`); a client that sends
its request a byte every few seconds (slowloris) would hold its connection for ever, and
httptools buffers a request head of any size. `LimitedProtocol` is uvicorn's httptools
protocol with, per connection:

- a head deadline: the request line and headers must be in within
  `RELAY_HTTP_HEAD_TIMEOUT_S` of the connection (or of the request's first byte on a
  keep-alive connection), and weigh at most `MAX_HEAD_BYTES`; else 408 (431) and close;
- a body deadline: the body must be in within `RELAY_HTTP_BODY_TIMEOUT_S` of the head; else
  the connection is closed, and the route reading it sees the client gone (not an error);
- a connection cap, `RELAY_HTTP_MAX_CONNECTIONS`: past it, an idle keep-alive connection
  is closed to make room, or, if none is idle, the new one is answered 503 and closed.

Each deadline is one timer per connection, armed and cancelled by the parser's callbacks.
"""

import asyncio
import logging
import resource
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from relay.core.http_metrics import CONNECTIONS_CLOSED
from relay.core.settings import Settings

log = logging.getLogger(__name__)

MAX_HEAD_BYTES = 64 * 1024  # a request line and headers; long postback query strings fit
_CAPACITY_WARNING_EVERY_S = 60.0
# Descriptors the process needs besides the API's connections (stores, Temporal, files).
_OTHER_FDS = 1024


@dataclass(frozen=True)
class Limits:
    max_connections: int
    head_timeout_s: float
    body_timeout_s: float

    @classmethod
    def of(cls, settings: Settings) -> "Limits":
        return cls(
            settings.http_max_connections,
            settings.http_head_timeout_s,
            settings.http_body_timeout_s,
        )


def _answer(status: bytes, extra: bytes = b"") -> bytes:
    """A whole response with no body that closes the connection."""
    head = b"HTTP/1.1 " + status + b"\r\ncontent-length: 0\r\nconnection: close\r\n"
    return head + extra + b"\r\n"


_TIMED_OUT = _answer(b"408 Request Timeout")
_HEAD_TOO_LARGE = _answer(b"431 Request Header Fields Too Large")
_FULL = _answer(b"503 Service Unavailable", b"retry-after: 1\r\n")


class LimitedProtocol(HttpToolsProtocol):
    """Uvicorn's httptools protocol with the deadlines and the cap; `limits` is set on the
    subclass `protocol_class` makes."""

    limits: ClassVar[Limits]
    _last_capacity_warning: ClassVar[float] = 0.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._reading: str | None = None  # "head", "body", or None between requests
        self._head_bytes = 0

    # Connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections and not self._make_room():
            self._close("over_capacity", _FULL)
            self._warn_full()
            return
        self._read("head", self.limits.head_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_deadline()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._reading == "head":
            self._head_bytes += len(data)
        super().data_received(data)
        if (
            self._reading == "head"
            and self._head_bytes > MAX_HEAD_BYTES
            and not self.transport.is_closing()
        ):
            self._close("head_too_large", _HEAD_TOO_LARGE)

    # Parser callbacks

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._reading != "head":  # a new connection's deadline runs from its start
            self._read("head", self.limits.head_timeout_s)

    def on_headers_complete(self) -> None:
        self._read("body", self.limits.body_timeout_s)
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._cancel_deadline()
        self._reading = None
        super().on_message_complete()

    # Deadlines

    def _read(self, part: str, timeout_s: float) -> None:
        self._cancel_deadline()
        self._reading, self._head_bytes = part, 0
        self._deadline = self.loop.call_later(timeout_s, self._timed_out)

    def _cancel_deadline(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self._reading == "head":
            self._close("head_timeout", _TIMED_OUT)
        else:
            # The route may be reading the body or answering already: no answer of ours.
            # It sees the client gone.
            self._close("body_timeout", b"")

    def _close(self, reason: str, answer: bytes) -> None:
        CONNECTIONS_CLOSED.labels(reason).inc()
        log.debug("closing the connection from %s: %s", self.client, reason)
        self._cancel_deadline()
        if answer:
            self.transport.write(answer)
        self.transport.close()

    # The cap

    def _make_room(self) -> bool:
        """Close an idle keep-alive connection; False when none is idle. Runs only at the
        cap: one pass over the connections."""
        open_now = 0
        idle: HttpToolsProtocol | None = None
        for other in self.connections:
            if not isinstance(other, HttpToolsProtocol) or other.transport.is_closing():
                continue
            open_now += 1
            if other is not self and other.timeout_keep_alive_task is not None:
                idle = other
        if open_now <= self.limits.max_connections:
            return True  # the excess is closing already
        if idle is None:
            return False
        CONNECTIONS_CLOSED.labels("idle_evicted").inc()
        idle.timeout_keep_alive_handler()
        return True

    def _warn_full(self) -> None:
        now = time.monotonic()
        cls = type(self)
        if now - cls._last_capacity_warning >= _CAPACITY_WARNING_EVERY_S:
            cls._last_capacity_warning = now
            log.warning(
                "%d connections open (RELAY_HTTP_MAX_CONNECTIONS): new ones are answered 503 "
                "until some close (relay_http_connections_closed_total counts them)",
                self.limits.max_connections,
            )


def protocol_class(limits: Limits) -> type[LimitedProtocol]:
    return type("RelayHttpProtocol", (LimitedProtocol,), {"limits": limits})


def server_options(settings: Settings) -> dict[str, Any]:
    """Uvicorn's `Config` options for the limits: the protocol and the keep-alive."""
    return {
        "http": protocol_class(Limits.of(settings)),
        "timeout_keep_alive": settings.http_keep_alive_s,
    }


def raise_fd_limit(max_connections: int) -> None:
    """Raise the soft limit on open descriptors so the cap, not EMFILE, bounds the
    connections (accept would fail and log for each); warn if the hard limit is too low."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = max_connections + _OTHER_FDS
    if soft != resource.RLIM_INFINITY and soft < wanted:
        raised = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        if raised < wanted:
            log.warning(
                "the open files limit (%d) is below RELAY_HTTP_MAX_CONNECTIONS (%d) plus %d: "
                "connections past it fail to be accepted; raise `ulimit -n`",
                raised,
                max_connections,
                _OTHER_FDS,
            )
