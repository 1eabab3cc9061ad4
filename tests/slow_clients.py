"""`python -m tests.slow_clients HOST PORT KEY ADMIN_TOKEN COUNT DRIP_S GIVE_UP_S`: slow
clients (slowloris) in a process of their own, as they would be on other machines, so
their cost is not counted in the server's loop.

COUNT connections each send part of a request at once (heads half sent; bodies half sent
on the postback and on an admin route FastAPI parses), then a byte every DRIP_S seconds
(each at its own phase), until the server closes them or GIVE_UP_S passes. Prints `open`
once all are open and sending, then, when all are done, a JSON list of [opened, closed]
per connection (time.monotonic(), comparable across processes; closed is null if the
server never closed it)."""

import asyncio
import json
import random
import sys
import time
from contextlib import suppress


def first_bytes(key: str, admin_token: str, count: int) -> list[bytes]:
    head = "POST {path} HTTP/1.1\r\nHost: relay\r\n{more}Content-Length: 4000\r\n\r\n{body}"
    admin = f"Authorization: Bearer {admin_token}\r\nContent-Type: application/json\r\n"
    kinds = [
        f"GET /postback?key={key}&click_id=slow HTTP/1.1\r\nHost: relay\r\nX-Slow: ".encode(),
        head.format(path=f"/postback?key={key}", more="", body="click_id=").encode(),
        head.format(path="/api/networks", more=admin, body='{"name": "').encode(),
    ]
    return [kinds[i % len(kinds)] for i in range(count)]


class _Opened:
    """Set once `count` connections are open and have sent their first bytes."""

    def __init__(self, count: int) -> None:
        self.left = count
        self.all = asyncio.Event()

    def one(self) -> None:
        self.left -= 1
        if self.left == 0:
            self.all.set()


async def _client(
    address: tuple[str, int], first: bytes, drip_s: float, give_up_s: float, opened: _Opened
) -> tuple[float, float | None]:
    try:  # a connection that fails to open is counted too: the gather raises its error
        reader, writer = await asyncio.open_connection(*address)
        writer.write(first)
        await writer.drain()
        started = time.monotonic()
    finally:
        opened.one()

    async def drip() -> None:
        await asyncio.sleep(random.uniform(0, drip_s))
        with suppress(OSError):
            while True:
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(drip_s)

    dripping = asyncio.create_task(drip())
    try:
        async with asyncio.timeout(give_up_s):
            with suppress(ConnectionResetError):  # closed while our bytes still arrived
                while await reader.read(4096):
                    pass
        return started, time.monotonic()
    except TimeoutError:
        return started, None
    finally:
        dripping.cancel()
        writer.close()


async def main(argv: list[str]) -> None:
    host, port, key, token, count, drip_s, give_up_s = argv
    opened = _Opened(int(count))
    clients = [
        asyncio.create_task(
            _client((host, int(port)), first, float(drip_s), float(give_up_s), opened)
        )
        for first in first_bytes(key, token, int(count))
    ]
    await opened.all.wait()  # a client failing to open fails the gather below
    print("open", flush=True)
    print(json.dumps(await asyncio.gather(*clients)), flush=True)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
