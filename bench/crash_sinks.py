"""The three destinations of `bench.crash_run`, in a process of their own (own GIL, so the
bench's senders never slow an answer down): the Meta/TikTok stand-in
(`tests.platform_server`) on one port and a traffic source's postback endpoint on another.

The postback endpoint answers `GET /cb?cid=...` 200 `OK` and counts each call by its `cid`
(the outbound template is `.../cb?cid={conversion_id}`). `GET /_crash/received` on that port
answers what every destination received so far, per event (JSON):

    {"meta": {"received": {event_id: copies}, "accepted": {event_id: copies},
              "repeats": {event_id: [wall times of its copies]} (events received twice or more),
              "refused_requests": n, "refused_examples": [first five: status, problems]},
     "tiktok": {...}, "postback": {"received": {cid: copies}, ...},
     "last_at": wall time of the last request to any destination}

`received` counts every request that carried the event (the destination saw it, whatever it
answered); `accepted` only those answered 200 without a validation problem.

Run: `python -m bench.crash_sinks --platform-port P --source-port Q --token PIXEL=TOKEN ...`
(the pixel's token goes to both platforms); it serves until SIGTERM.
"""

import argparse
import json
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.platform_server import PLATFORMS, PlatformServer, event_ids

RECEIVED_PATH = "/_crash/received"
CALLBACK_PATH = "/cb"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 1024  # a restarted Relay fires its backlog at once


class Sinks:
    def __init__(self, platforms: PlatformServer, pixels: set[str]) -> None:
        self.platforms = platforms
        self.pixels = pixels
        self.lock = threading.Lock()
        self.postbacks: dict[str, list[float]] = {}  # cid: arrival times
        self.postback_last_at = 0.0

    def record_postback(self, cid: str) -> None:
        with self.lock:
            self.postback_last_at = time.time()
            self.postbacks.setdefault(cid, []).append(self.postback_last_at)

    def received(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        last_at = 0.0
        for platform in PLATFORMS:
            received: Counter[str] = Counter()
            accepted: Counter[str] = Counter()
            times: dict[str, list[float]] = {}
            refused = 0
            examples: list[str] = []
            for request in self.platforms.requests_for(platform):
                if request.pixel_id not in self.pixels:
                    continue
                last_at = max(last_at, request.received_at)
                ok = request.status == 200 and not request.problems
                refused += not ok
                if not ok and len(examples) < 5:
                    examples.append(f"{request.status} {'; '.join(request.problems)[:300]}")
                for event_id in event_ids(request.body):
                    received[event_id] += 1
                    accepted[event_id] += ok
                    times.setdefault(event_id, []).append(request.received_at)
            found[platform] = {
                "received": dict(received),
                "accepted": {e: n for e, n in accepted.items() if n},
                "repeats": {e: sorted(t) for e, t in times.items() if len(t) > 1},
                "refused_requests": refused,
                "refused_examples": examples,
            }
        with self.lock:
            postbacks = {cid: list(t) for cid, t in self.postbacks.items()}
            last_at = max(last_at, self.postback_last_at)
        counts = {cid: len(t) for cid, t in postbacks.items()}
        found["postback"] = {
            "received": counts,
            "accepted": counts,
            "repeats": {cid: t for cid, t in postbacks.items() if len(t) > 1},
            "refused_requests": 0,
            "refused_examples": [],
        }
        found["last_at"] = last_at or None
        return found


def serve(sinks: Sinks, port: int) -> _Server:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            split = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            if split.path == RECEIVED_PATH:
                self._answer(200, json.dumps(sinks.received()).encode(), "application/json")
            elif split.path == CALLBACK_PATH:
                sinks.record_postback(parse_qs(split.query).get("cid", [""])[-1])
                self._answer(200, b"OK", "text/plain")
            else:
                self._answer(404, b"no such endpoint", "text/plain")

        do_POST = do_GET

        def _answer(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return _Server(("127.0.0.1", port), Handler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--platform-port", type=int, required=True)
    parser.add_argument("--source-port", type=int, required=True)
    parser.add_argument("--token", action="append", default=[], help="PIXEL=TOKEN")
    args = parser.parse_args()
    platforms = PlatformServer(port=args.platform_port)
    pixels = set()
    for item in args.token:
        pixel, _, token = item.partition("=")
        pixels.add(pixel)
        for platform in PLATFORMS:
            platforms.expect_token(platform, pixel, token)
    platforms.start()
    server = serve(Sinks(platforms, pixels), args.source_port)
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        platforms.stop()


if __name__ == "__main__":
    main()
