"""Bodies are capped and admin auth comes before the body (issue 10, item 4)."""

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from tests.harness import ADMIN_TOKEN, Relay
from tests.served import serving


async def _exchange(base_url: str, head: str, body: bytes, timeout_s: float = 5) -> tuple[int, Any]:
    """Send a raw request (head, then body) and read the answer's status and JSON body.

    `Content-Length` may promise more than `body`: the answer must not wait for the rest."""
    host, port = base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(head.encode("latin-1") + b"\r\n" + body)
        await writer.drain()
        async with asyncio.timeout(timeout_s):
            lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
            content = await reader.readexactly(int(headers["content-length"]))
        return int(lines[0].split()[1]), json.loads(content)
    finally:
        writer.close()


def _head(path: str, *headers: str) -> str:
    return "".join(f"{line}\r\n" for line in (f"POST {path} HTTP/1.1", "Host: relay", *headers))


def _error(answer: Any, code: str, param: str | None) -> None:
    assert set(answer) == {"error"} and set(answer["error"]) == {"code", "message", "param"}
    assert (answer["error"]["code"], answer["error"]["param"]) == (code, param), answer


async def test_admin_body_without_the_token_is_refused_before_it_is_read(relay: Relay) -> None:
    sixty_mb = "Content-Length: 66060288"
    async with serving(relay.runtime) as url:
        for auth in ((), ("Authorization: Bearer wrong",), ("Authorization: Basic x",)):
            head = _head("/api/networks", "Content-Type: application/json", sixty_mb, *auth)
            status, answer = await _exchange(url, head, b'{"name": "')
            assert status == 401
            _error(answer, "unauthorized", "Authorization")
        # With the token, the declared length alone is refused, again without reading.
        admin = f"Authorization: Bearer {ADMIN_TOKEN}"
        status, answer = await _exchange(url, _head("/api/networks", sixty_mb, admin), b"{")
        assert status == 413
        _error(answer, "body_too_large", "body")


async def test_a_chunked_body_is_counted_as_it_arrives(relay: Relay) -> None:
    chunk = b"x" * (64 * 1024)
    chunked = b"".join(b"%x\r\n%b\r\n" % (len(chunk), chunk) for _ in range(16))
    chunked += b"1\r\nx\r\n0\r\n\r\n"  # one byte over 1 MB in all
    admin = f"Authorization: Bearer {ADMIN_TOKEN}"
    async with serving(relay.runtime) as url:
        head = _head("/api/networks", "Transfer-Encoding: chunked", admin)
        status, answer = await _exchange(url, head, chunked)
        assert status == 413
        _error(answer, "body_too_large", "body")
        # Without the token the first chunk is not even read.
        head = _head("/api/networks", "Transfer-Encoding: chunked")
        status, answer = await _exchange(url, head, b"")
        assert status == 401


async def test_the_postback_keeps_its_16_kb_cap_on_a_streamed_body(relay: Relay) -> None:
    async def body() -> AsyncIterator[bytes]:
        for _ in range(17):
            yield b"x" * 1024

    response = await relay.http.post("/postback", content=body())
    assert response.status_code == 413
    _error(response.json(), "body_too_large", "body")
