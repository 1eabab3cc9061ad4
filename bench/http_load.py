"""A lean HTTP/1.1 keep-alive client on asyncio streams, and the burst sender built on it.

httpx costs about a millisecond of CPU per request, which on 2 cores would be taken from the
server under test; this client parses just what the bench needs (status, headers, a
Content-Length or chunked body). One connection per sender task: in flight = connections.
"""

import asyncio
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

BROWSER_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1"


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float
    connect_s: float | None = None  # time to open the connection, when this request opened one


class Connection:
    """One keep-alive connection to 127.0.0.1:port, reopened after an error or a close."""

    def __init__(self, port: int, headers: dict[str, str] | None = None) -> None:
        self.port = port
        self.headers = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        self.connect_s: float | None = None

    async def get(self, target: str, timeout_s: float) -> Answer:
        started = time.perf_counter()
        self.connect_s = None
        try:
            async with asyncio.timeout(timeout_s):
                status, headers, body = await self._exchange(target)
        except BaseException:
            self.close()
            raise
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, headers, body, time.perf_counter() - started, self.connect_s)

    async def _exchange(self, target: str) -> tuple[int, dict[str, str], bytes]:
        if self._streams is None:
            opening = time.perf_counter()
            self._streams = await asyncio.open_connection("127.0.0.1", self.port)
            self.connect_s = time.perf_counter() - opening
        reader, writer = self._streams
        request = f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n{self.headers}\r\n"
        writer.write(request.encode())
        await writer.drain()
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(head[0].split()[1])
        headers = {}
        for line in head[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = b""
            while size := int((await reader.readuntil(b"\r\n")).split(b";")[0], 16):
                body += (await reader.readexactly(size + 2))[:-2]
            await reader.readuntil(b"\r\n")
        else:
            body = await reader.readexactly(int(headers.get("content-length", "0")))
        return status, headers, body

    def close(self) -> None:
        if self._streams is not None:
            self._streams[1].close()
            self._streams = None


async def clicks(port: int, campaign_id: str, count: int, concurrency: int = 50) -> list[str]:
    """Follow the tracking link `count` times; the click IDs from the 302 Locations."""
    found: list[str] = []

    async def one(conn: Connection, remaining: list[int]) -> None:
        while remaining[0] > 0:
            remaining[0] -= 1
            answer = await conn.get(f"/c/{campaign_id}?fbclid=IwAR0bench&ttclid=E.C.P.b", 60)
            if answer.status != 302:
                raise RuntimeError(f"click: {answer.status} {answer.body[:200]!r}")
            query = urlsplit(answer.headers["location"]).query
            found.append(parse_qs(query)["cid"][0])
        conn.close()

    remaining = [count]
    # What a browser sends; Meta requires the user agent for a website event.
    browser = {"User-Agent": BROWSER_UA, "X-Geo-Country": "US"}
    await asyncio.gather(*(one(Connection(port, browser), remaining) for _ in range(concurrency)))
    return found


@dataclass
class Burst:
    """What a burst's senders saw. A postback is final once answered 200 (accepted/existing)
    or a 4xx/5xx other than 503; 503s, timeouts and connection errors are resent."""

    total: int
    answered: int = 0  # 200 with status accepted or existing
    statuses: Counter[str] = field(default_factory=Counter)  # final answers: "200 accepted", ...
    resent_503: int = 0
    resent_timeout: int = 0
    resent_error: int = 0
    failed: int = 0  # final answers other than 200 accepted/existing
    within_1s: int = 0  # answered 200 on the first attempt within 1 s
    max_latency_s: float = 0.0  # the slowest single attempt (a timeout counts as its timeout)
    latencies: list[float] = field(default_factory=list)  # every attempt, seconds
    slow: list[tuple[float, float | None]] = field(default_factory=list)  # (s, connect s) > 1 s
    conversion_ids: set[str] = field(default_factory=set)
    seconds: float = 0.0  # first send until the last postback was final (or gave up)

    @property
    def unanswered(self) -> int:
        return self.total - self.answered - self.failed

    def percentile_ms(self, p: float) -> float:
        ordered = sorted(self.latencies) or [0.0]
        return 1000 * ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


async def burst(
    port: int,
    targets: list[str],
    concurrency: int,
    timeout_s: float,
    give_up_at: float,
    on_answer: Callable[[Burst], None] = lambda _: None,
    into: Burst | None = None,
) -> Burst:
    """Send every target with `concurrency` connections; resend as a network would (after
    Retry-After on 503, after 1 s on a timeout or error) until final or `give_up_at`
    (time.monotonic()). With `into`, add to that result (its `seconds` become this call's)."""
    result = into or Burst(0)
    result.total += len(targets)
    queue: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
    for target in targets:
        queue.put_nowait((target, 1))
    open_count = [len(targets)]
    all_final = asyncio.Event()
    loop = asyncio.get_running_loop()

    def final(answer: Answer, attempt: int) -> None:
        body = _json(answer.body)
        body = body if isinstance(body, dict) else {}
        status = body.get("status")
        result.statuses[f"{answer.status} {status or ''}".strip()] += 1
        if answer.status == 200 and status in ("accepted", "existing"):
            result.answered += 1
            result.conversion_ids.add(str(body.get("conversion_id")))
            result.within_1s += attempt == 1 and answer.seconds <= 1.0
        else:
            result.failed += 1
        open_count[0] -= 1
        if open_count[0] == 0:
            all_final.set()
        on_answer(result)

    def resend(target: str, attempt: int, delay_s: float) -> None:
        loop.call_later(delay_s, queue.put_nowait, (target, attempt + 1))

    async def sender() -> None:
        conn = Connection(port)
        try:
            await send_all(conn)
        finally:
            conn.close()

    async def send_all(conn: Connection) -> None:
        while True:
            target, attempt = await queue.get()
            try:
                answer = await conn.get(target, timeout_s)
            except TimeoutError:
                result.resent_timeout += 1
                result.latencies.append(timeout_s)
                result.max_latency_s = max(result.max_latency_s, timeout_s)
                resend(target, attempt, 1.0)
                continue
            except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                result.resent_error += 1
                resend(target, attempt, 1.0)
                continue
            result.latencies.append(answer.seconds)
            if answer.seconds > 1.0:
                result.slow.append((answer.seconds, answer.connect_s))
            result.max_latency_s = max(result.max_latency_s, answer.seconds)
            if answer.status == 503:
                result.resent_503 += 1
                resend(target, attempt, _retry_after(answer.headers))
            else:
                final(answer, attempt)

    started = time.perf_counter()
    tasks = [asyncio.create_task(sender()) for _ in range(concurrency)]
    if not targets:
        all_final.set()
    try:
        await asyncio.wait_for(all_final.wait(), max(0.0, give_up_at - time.monotonic()))
    except TimeoutError:
        pass  # reported as unanswered
    finally:
        result.seconds = time.perf_counter() - started
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return result


def _retry_after(headers: dict[str, str]) -> float:
    try:
        return min(60.0, max(0.1, float(headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None
