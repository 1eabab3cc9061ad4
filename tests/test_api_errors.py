"""Bodies are capped and admin auth comes before the body; every error, whoever raises it,
answers in Relay's one shape; the OpenAPI documents that shape (issue 10, items 4 and 5)."""

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from relay.runtime import Runtime
from relay.store.database import open_clickhouse
from relay.store.pool import ClickHouse
from tests.harness import ADMIN_TOKEN, Relay
from tests.served import api_over, serving


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


async def test_deeply_nested_json_is_a_clear_4xx(relay: Relay) -> None:
    deep = b'{"click_id": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    headers = {"Content-Type": "application/json"}
    postback = await relay.http.post("/postback", content=deep, headers=headers)
    assert postback.status_code == 400
    _error(postback.json(), "invalid_parameter", "body")
    admin = await relay.http.post(
        "/api/networks", content=b"[" * 100_000, headers={**headers, **relay.admin}
    )
    assert admin.status_code == 400
    _error(admin.json(), "bad_request", "body")


async def test_framework_errors_use_the_one_shape(relay: Relay) -> None:
    missing = await relay.http.get("/nope")
    assert missing.status_code == 404
    _error(missing.json(), "not_found", None)
    wrong_method = await relay.http.delete("/api/networks", headers=relay.admin)
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["allow"]
    _error(wrong_method.json(), "method_not_allowed", None)
    malformed = await relay.http.post(
        "/api/networks",
        content=b'{"name": ',
        headers={"Content-Type": "application/json", **relay.admin},
    )
    assert malformed.status_code == 422
    _error(malformed.json(), "invalid_parameter", "body")
    invalid = await relay.http.post("/api/networks", json={}, headers=relay.admin)
    assert invalid.status_code == 422
    _error(invalid.json(), "invalid_parameter", "name")


@pytest.mark.parametrize("path", ["/api/conversions", "/api/pixel-logs", "/api/postback-logs"])
@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("until", "0755-08-26T07:45:28Z"),
        ("since", "1899-12-31T23:00:00-05:00"),
        ("until", "9999-12-31T23:59:59"),
        ("since", "0001-01-01T00:00:00+01:00"),
    ],
)
async def test_times_clickhouse_cannot_hold_are_refused(
    relay: Relay, path: str, param: str, value: str
) -> None:
    response = await relay.http.get(path, params={param: value}, headers=relay.admin)
    assert response.status_code == 422
    _error(response.json(), "invalid_parameter", param)
    assert "1900-01-02" in response.json()["error"]["message"]


@pytest.fixture
async def unmigrated(
    relay: Relay, clickhouse_location: tuple[str, str]
) -> AsyncIterator[ClickHouse]:
    """A ClickHouse database without Relay's tables: every read of it fails."""
    dsn, _ = clickhouse_location
    database = f"relay_empty_{uuid.uuid4().hex[:8]}"
    client = open_clickhouse(dsn, database, pool_size=1)
    yield client
    client.command(f"DROP DATABASE {database}")
    client.close()


async def test_store_errors_on_the_reading_routes_are_503(
    relay: Relay, unmigrated: ClickHouse
) -> None:
    current = relay.runtime
    broken = Runtime(current.settings, unmigrated, current.temporal, current.keys, ADMIN_TOKEN)
    transport = httpx.ASGITransport(app=api_over(broken))
    async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as http:
        for path in ("/api/conversions", "/api/pixel-logs", "/api/conversions/conv_x"):
            response = await http.get(path, headers=relay.admin)
            assert response.status_code == 503, path
            _error(response.json(), "unavailable", None)


async def test_the_openapi_documents_each_error_status_in_the_one_shape(relay: Relay) -> None:
    schema = (await relay.http.get("/openapi.json")).json()
    assert "HTTPValidationError" not in json.dumps(schema)
    error = {"$ref": "#/components/schemas/ErrorOut"}
    for path, item in schema["paths"].items():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if status[0] in "45" and (path, status) != ("/readyz", "503"):
                    assert response["content"]["application/json"]["schema"] == error
    assert set(schema["components"]["schemas"]["ErrorOut"]["properties"]) == {"error"}

    def statuses(path: str, method: str) -> set[str]:
        return set(schema["paths"][path][method]["responses"])

    # 429: too many wrong admin tokens from one address (issue 18).
    assert statuses("/api/networks", "post") == {"201", "400", "401", "413", "422", "429", "503"}
    assert statuses("/api/networks/{network_id}", "delete") == {"204", "401", "404", "429", "503"}
    assert statuses("/api/pixel-logs", "get") == {"200", "401", "422", "429", "503"}
    assert statuses("/api/event-id", "get") == {"200", "400"}
    assert statuses("/healthz", "get") == {"200"}


class _BrokenIntake:
    """Fails the way no handler expects: the postback's path must still answer in shape."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError("secret detail of an unexpected failure")


async def test_an_unexpected_error_on_the_postback_is_a_500_in_the_one_shape(
    relay: Relay, caplog: pytest.LogCaptureFixture
) -> None:
    current = relay.runtime
    broken = Runtime(
        current.settings, current.clickhouse, current.temporal, current.keys, ADMIN_TOKEN
    )
    broken.intake = _BrokenIntake()  # type: ignore[assignment]
    transport = httpx.ASGITransport(app=api_over(broken), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as http:
        key = (await relay.network())["postback_key"]
        response = await http.get("/postback", params={"key": key, "click_id": "c1"})
    assert response.status_code == 500
    _error(response.json(), "internal_error", None)
    assert "secret detail" not in response.text
    assert "secret detail" in caplog.text  # logged with its traceback, for the operator
