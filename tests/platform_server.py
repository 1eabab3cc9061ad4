"""A local stand-in for the Meta Conversions API and the TikTok Events API.

Tests point ``RELAY_META_BASE_URL`` and ``RELAY_TIKTOK_BASE_URL`` at
:attr:`PlatformServer.base_url`. The server validates each request as the platform would
(rules in ``tests/platform_rules.py``), records it, and answers the platform's own success or
error body. Tests can queue scripted answers per pixel (errors, throttling, slow answers) to
drive Relay's retry paths.

Access tokens are bound to pixels, as an account's token is on the real platforms: a test
registers each pixel's token with :meth:`PlatformServer.expect_token` when it creates the
pixel (``tests.harness.Relay.pixel`` does), and a request for a pixel with any other token,
or for a pixel without one, is refused as the platform refuses a bad token: Meta HTTP 400
with error code 190 (OAuthException), TikTok HTTP 200 with code 40105.

It is a real threaded HTTP server on loopback, so sync code, async code and worker threads
all reach it the same way, and one slow answer never holds up another request.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import secrets
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

from tests import platform_rules
from tests.platform_rules import Problem

META_EVENTS_PATH = re.compile(r"/v\d+\.\d+/(?P<pixel>[^/]+)/events/?")
TIKTOK_EVENT_TRACK_PATH = "/open_api/v1.3/event/track/"
TIKTOK_PIXEL_TRACK_PATH = "/open_api/v1.3/pixel/track/"
PLATFORMS = ("meta", "tiktok")
_TIKTOK_RULES: dict[str, Callable[[Any, str | None, str | None, float], list[Problem]]] = {
    TIKTOK_EVENT_TRACK_PATH: platform_rules.tiktok_event_problems,
    TIKTOK_PIXEL_TRACK_PATH: platform_rules.tiktok_pixel_problems,
}

_META_MESSAGES = {
    1: "An unknown error occurred",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    17: "(#17) User request limit reached",
    100: "Invalid parameter",
    190: "Invalid OAuth access token - Cannot parse access token",
    613: "(#613) Calls to this api have exceeded the rate limit.",
}
_TIKTOK_MESSAGES = {
    40001: "No permission to operate this resource.",
    40002: "Invalid request parameters.",
    40100: "Too many requests. Please retry in some time.",
    40105: "Access token is incorrect or has been revoked.",
    50000: "System error. Please retry later.",
}


@dataclass
class RecordedRequest:
    """One request the server received, with what it answered."""

    platform: str  # "meta" | "tiktok" ("unknown" for a 404)
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case keys
    body: Any  # parsed JSON; a Meta form body becomes a dict with ``data`` decoded
    pixel_id: str  # Meta: from the path; TikTok: event_source_id (2.0) or pixel_code (legacy)
    received_at: float
    status: int
    response: Any
    problems: list[str]  # empty when the platform would accept the request


@dataclass
class Scripted:
    """One programmed answer. ``status=200`` with ``body=None`` keeps the normal answer,
    so a scripted delay or header can ride on it; any other status with ``body=None``
    answers that platform's usual error body for the status. A ``str`` body is sent as
    text, e.g. a proxy's HTML error page."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


ACCEPTED_PATH = "/_stand-in/accepted"


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    # Handler threads idle on keep-alive sockets until their client closes; stop() must
    # not wait for them.
    block_on_close = False
    # socketserver's default listen backlog is 5: a burst of new connections overflowed
    # it, and each overflow cost the sender a 1 s SYN retransmit.
    request_queue_size = 1024
    owner: PlatformServer


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as the platforms do, so client pools are exercised.
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        cast(_HTTPServer, self.server).owner._serve(self)

    do_GET = do_POST

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: test output is for the tests, requests are in ``requests_for``."""


class PlatformServer:
    """Fake Meta and TikTok endpoints on one loopback port; usable as a context manager."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._address = (host, port)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._recorded: list[RecordedRequest] = []
        self._scripts: defaultdict[tuple[str, str], deque[Scripted]] = defaultdict(deque)
        self._tokens: dict[tuple[str, str], str] = {}

    def start(self) -> None:
        """Bind the port (port 0 picks a free one) and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("PlatformServer is already started")
        self._stopping.clear()
        self._httpd = _HTTPServer(self._address, _Handler)
        self._httpd.owner = self
        # A short poll keeps stop() fast; the default half second adds up across tests.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="platform-server",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving; scripted delays still sleeping are cut short."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def __enter__(self) -> PlatformServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``, the base URL of both platforms."""
        if self._httpd is None:
            raise RuntimeError("PlatformServer is not started")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, platform: str, pixel_id: str, *answers: Scripted) -> None:
        """Queue answers for one pixel, used one per request in order, then normal behaviour."""
        if platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {PLATFORMS}, not {platform!r}")
        with self._lock:
            self._scripts[(platform, pixel_id)].extend(answers)

    def expect_token(self, platform: str, pixel_id: str, token: str) -> None:
        """Bind a pixel to the access token it accepts, replacing any earlier one."""
        if platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {PLATFORMS}, not {platform!r}")
        with self._lock:
            self._tokens[(platform, pixel_id)] = token

    def expected_token(self, platform: str, pixel_id: str) -> str | None:
        """The token a pixel accepts; None if none is bound (then every token is refused)."""
        with self._lock:
            return self._tokens.get((platform, pixel_id))

    def requests_for(
        self, platform: str | None = None, pixel_id: str | None = None
    ) -> list[RecordedRequest]:
        """Recorded requests, oldest first, optionally narrowed to a platform and pixel."""
        with self._lock:
            return [
                r
                for r in self._recorded
                if (platform is None or r.platform == platform)
                and (pixel_id is None or r.pixel_id == pixel_id)
            ]

    def accepted(self, platform: str | None, pixel_id: str | None) -> dict[str, Any]:
        """What a pixel accepted: requests, distinct event IDs, and when the last arrived
        (also `GET /_stand-in/accepted?platform=&pixel=`, for a bench that runs the stand-in
        as its own process and must not poll the Relay it measures)."""
        taken = [r for r in self.requests_for(platform, pixel_id) if r.status == 200]
        taken = [r for r in taken if not r.problems]
        events = {event for r in taken for event in event_ids(r.body)}
        last = max((r.received_at for r in taken), default=None)
        return {"requests": len(taken), "events": len(events), "last_at": last}

    def clear(self) -> None:
        """Forget recorded requests and unused scripted answers (tokens stay bound)."""
        with self._lock:
            self._recorded.clear()
            self._scripts.clear()

    @staticmethod
    def meta_error(
        code: int,
        message: str | None = None,
        subcode: int | None = None,
        is_transient: bool = False,
        error_type: str = "OAuthException",
    ) -> dict[str, Any]:
        """A Graph API error body, shaped like Meta's (``{"error": {...}}``)."""
        text = message or _META_MESSAGES.get(code, "An unknown error occurred")
        error: dict[str, Any] = {
            "message": text,
            "type": error_type,
            "code": code,
            "is_transient": is_transient,
            "fbtrace_id": _fbtrace_id(),
        }
        if subcode is not None:
            error["error_subcode"] = subcode
            # CAPI parameter errors carry a user-facing title and message as well.
            error["error_user_title"] = "Server-side API parameter error"
            error["error_user_msg"] = text
        return {"error": error}

    @staticmethod
    def tiktok_error(code: int, message: str | None = None) -> dict[str, Any]:
        """A TikTok Business API envelope with a non-zero ``code``."""
        text = message or _TIKTOK_MESSAGES.get(code, "Request failed.")
        return {"code": code, "message": text, "request_id": _tiktok_request_id(), "data": {}}

    def _serve(self, handler: _Handler) -> None:
        if self._stopping.is_set():
            # A kept-alive connection outlived stop(); drop it instead of answering.
            handler.close_connection = True
            return
        received_at = time.time()
        url = urlsplit(handler.path)
        query = {key: values[-1] for key, values in parse_qs(url.query).items()}
        if handler.command == "GET" and url.path == ACCEPTED_PATH:
            _write(handler, Scripted(200, self.accepted(query.get("platform"), query.get("pixel"))))
            return
        headers = {key.lower(): value for key, value in handler.headers.items()}
        raw = handler.rfile.read(int(headers.get("content-length") or 0))
        platform, pixel_id, body, problems, answer = _route(
            handler.command, url.path, query, headers, raw, received_at, self.expected_token
        )
        if platform in PLATFORMS:
            answer = self._scripted_answer(platform, pixel_id, answer)
        recorded = RecordedRequest(
            platform=platform,
            method=handler.command,
            path=url.path,
            query=query,
            headers=headers,
            body=body,
            pixel_id=pixel_id,
            received_at=received_at,
            status=answer.status,
            response=answer.body,
            problems=[problem.text for problem in problems],
        )
        # Recorded before any delay so a test can see the request arrived while it waits.
        with self._lock:
            self._recorded.append(recorded)
        if answer.delay_s and self._stopping.wait(answer.delay_s):
            handler.close_connection = True
            return
        _write(handler, answer)

    def _scripted_answer(self, platform: str, pixel_id: str, normal: Scripted) -> Scripted:
        with self._lock:
            queue = self._scripts.get((platform, pixel_id))
            scripted = queue.popleft() if queue else None
        if scripted is None:
            return normal
        if scripted.body is not None:
            status, body = scripted.status, scripted.body
        elif scripted.status == 200:
            status, body = normal.status, normal.body
        else:
            status, body = scripted.status, _usual_error(platform, scripted.status)
        return Scripted(status, body, dict(scripted.headers), scripted.delay_s)


def _route(
    method: str,
    path: str,
    query: dict[str, str],
    headers: dict[str, str],
    raw: bytes,
    now: float,
    expected_token: Callable[[str, str], str | None],
) -> tuple[str, str, Any, list[Problem], Scripted]:
    """Platform, pixel, parsed body, problems and normal answer of one request."""
    meta_match = META_EVENTS_PATH.fullmatch(path)
    if method != "POST" or (meta_match is None and path not in _TIKTOK_RULES):
        return "unknown", "", None, [], Scripted(404, {"error": f"no endpoint {method} {path}"})
    if meta_match is not None:
        body = platform_rules.parse_meta_body(raw, headers.get("content-type", ""))
        token = _get_str(body, "access_token") or query.get("access_token")
        pixel = meta_match["pixel"]
        problems = platform_rules.meta_problems(body, token, expected_token("meta", pixel), now)
        return "meta", pixel, body, problems, _meta_answer(body, problems)
    body = platform_rules.parse_json(raw)
    pixel_key = "event_source_id" if path == TIKTOK_EVENT_TRACK_PATH else "pixel_code"
    pixel = _get_str(body, pixel_key) or ""
    bound = expected_token("tiktok", pixel)
    problems = _TIKTOK_RULES[path](body, headers.get("access-token"), bound, now)
    if problems:
        answer = Scripted(200, PlatformServer.tiktok_error(problems[0].code, problems[0].text))
    else:
        answer = Scripted(
            200, {"code": 0, "message": "OK", "request_id": _tiktok_request_id(), "data": {}}
        )
    return "tiktok", pixel, body, problems, answer


def _meta_answer(body: Any, problems: list[Problem]) -> Scripted:
    if problems:
        first = problems[0]
        return Scripted(400, PlatformServer.meta_error(first.code, first.text, first.subcode))
    received = len(body["data"])
    return Scripted(200, {"events_received": received, "messages": [], "fbtrace_id": _fbtrace_id()})


def _get_str(body: Any, key: str) -> str | None:
    value = body.get(key) if isinstance(body, dict) else None
    return value if isinstance(value, str) else None


def _usual_error(platform: str, status: int) -> dict[str, Any]:
    """The error body a platform typically sends with an HTTP status."""
    if platform == "meta":
        if status == 429:
            return PlatformServer.meta_error(4, is_transient=True)
        if status >= 500:
            return PlatformServer.meta_error(2, is_transient=True)
        return PlatformServer.meta_error(100)
    if status == 429:
        return PlatformServer.tiktok_error(40100)
    if status >= 500:
        return PlatformServer.tiktok_error(50000)
    return PlatformServer.tiktok_error(40002)


def event_ids(body: Any) -> list[str]:
    """The event IDs a Meta or TikTok body carries (legacy TikTok: one at the top)."""
    if not isinstance(body, dict):
        return []
    data = body.get("data")
    items: list[Any] = data if isinstance(data, list) else [body]
    return [str(i["event_id"]) for i in items if isinstance(i, dict) and i.get("event_id")]


def _write(handler: _Handler, answer: Scripted) -> None:
    if isinstance(answer.body, str):
        payload, content_type = answer.body.encode(), "text/plain; charset=utf-8"
    else:
        payload, content_type = json.dumps(answer.body).encode(), "application/json"
    try:
        handler.send_response(answer.status)
        for name, value in {"Content-Type": content_type, **answer.headers}.items():
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)
    except (BrokenPipeError, ConnectionResetError):
        # The client gave up (a scripted delay outlasted its timeout); nothing to answer.
        handler.close_connection = True


def _fbtrace_id() -> str:
    return secrets.token_urlsafe(8)


def _tiktok_request_id() -> str:
    return time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(8).upper()


def main() -> None:
    """Serve the stand-in on a fixed port, for trying Relay by hand without real accounts."""
    parser = argparse.ArgumentParser(description="Local Meta/TikTok stand-in on loopback.")
    parser.add_argument("--port", type=int, default=9999)
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="PIXEL_ID=TOKEN",
        help="the access token a pixel (Meta or TikTok) accepts; repeat for each pixel",
    )
    args = parser.parse_args()
    bindings = [binding.partition("=") for binding in args.token]
    if any(not pixel or not sep or not token for pixel, sep, token in bindings):
        parser.error("--token takes PIXEL_ID=TOKEN")
    with PlatformServer(port=args.port) as server:
        for pixel, _, token in bindings:
            for platform in PLATFORMS:
                server.expect_token(platform, pixel, token)
        print(f"Meta and TikTok stand-in listening on {server.base_url} (Ctrl-C stops)")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
