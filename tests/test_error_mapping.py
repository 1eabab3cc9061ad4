"""The postback, served ahead of FastAPI (`api.gate.Direct`), and FastAPI's routes answer
an exception alike: both through `api.errors.error_response`. The app's middleware stack is
Starlette's own, built from `add_middleware` (architecture issue 19, item 9)."""

import inspect
import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from types import SimpleNamespace

import httpx
import pytest
from clickhouse_connect.driver.exceptions import ClickHouseError
from fastapi import FastAPI
from starlette.middleware.errors import ServerErrorMiddleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.requests import ClientDisconnect

import api.app
import api.gate
from api.app import PageHeaders, create_app
from api.gate import DirectRoutes, RequestGate
from api.routes import postbacks
from api.routes.codec import CodecCors
from relay.core.errors import RelayError
from relay.core.metrics import REGISTRY
from relay.core.rate_limit import TooManyFailures
from relay.core.settings import Settings
from relay.ingest.accept import RetryLater
from relay.runtime import Runtime


def _relay_errors(cls: type[RelayError] = RelayError) -> Iterator[type[RelayError]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _relay_errors(sub)


def _instance(cls: type[RelayError]) -> RelayError:
    if issubclass(cls, RetryLater):
        return cls("the inbox is full; resend after 7 s", 7)
    if issubclass(cls, TooManyFailures):
        return cls("the key is wrong; retry after 9 s", "key", 9)
    return cls(f"a {cls.__name__}", "param")


EXCEPTIONS: dict[str, Exception] = {
    **{cls.__name__: _instance(cls) for cls in _relay_errors()},
    "store: OSError": OSError(28, "No space left on device"),
    "store: ClickHouseError": ClickHouseError("Code: 241. Memory limit exceeded"),
    "unexpected": RuntimeError("secret detail of an unexpected failure"),
    "client gone": ClientDisconnect(),
}


@asynccontextmanager
async def _no_runtime() -> AsyncIterator[Runtime]:
    raise AssertionError("the tests set the runtime themselves")
    yield


def _app_raising(exc: Exception, monkeypatch: pytest.MonkeyPatch) -> FastAPI:
    """The app, its postback raising `exc` once its parameters are read, and a route of
    FastAPI's (`/routed`) raising it too."""

    def parse_postback(raw: dict[str, str]) -> None:
        raise exc

    async def routed() -> None:
        raise exc

    monkeypatch.setattr(postbacks, "parse_postback", parse_postback)
    app = create_app(_no_runtime)
    app.add_api_route("/routed", routed)
    app.state.runtime = SimpleNamespace(settings=Settings(), admin_token="a" * 40, intake=object())
    return app


def _refused(status: int) -> float:
    labels = {"outcome": "refused", "status": str(status)}
    return REGISTRY.get_sample_value("relay_postbacks_total", labels) or 0.0


def _gone(route: str) -> float:
    return REGISTRY.get_sample_value("relay_http_clients_gone_total", {"route": route}) or 0.0


@pytest.mark.parametrize("name", EXCEPTIONS)
async def test_the_postback_and_a_fastapi_route_answer_an_exception_alike(
    name: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    exc = EXCEPTIONS[name]
    app = _app_raising(exc, monkeypatch)
    # FastAPI re-raises an unexpected error after answering, for the server to log.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as http:
        routed = await http.get("/routed", params={"key": "k", "click_id": "c1"})
        status = routed.status_code
        refused, gone = _refused(status), _gone("/postback")
        direct = await http.get("/postback", params={"key": "k", "click_id": "c1"})

    assert (direct.status_code, direct.headers.raw, direct.content) == (
        status,
        routed.headers.raw,
        routed.content,
    )
    if isinstance(exc, ClientDisconnect):
        # Counted by route, as a client gone; not a refusal.
        assert (status, _gone("/postback") - gone, _refused(status) - refused) == (499, 1, 0)
        assert _gone("/routed") >= 1
        return
    # Only the direct route counts refusals: it served the postback.
    assert _refused(status) - refused == 1
    body = direct.json()["error"]
    if isinstance(exc, RelayError):
        assert (status, body["code"]) == (exc.status_code, exc.code)
    elif name.startswith("store"):
        assert (status, direct.headers["retry-after"], body["code"]) == (503, "5", "unavailable")
    else:
        assert (status, body["code"]) == (500, "internal_error")
        assert "secret detail" not in direct.text
        logged = [r for r in caplog.records if r.getMessage().startswith("unexpected error")]
        # The direct route logs its traceback; FastAPI's route leaves it to the server,
        # which logs what Starlette re-raises (once either way).
        assert [r.exc_info is not None for r in logged] == [True]


def test_starlette_builds_the_middleware_stack() -> None:
    for module in (api.app, api.gate):
        assert "middleware_stack" not in inspect.getsource(module)
    app = create_app(_no_runtime)
    assert app.middleware_stack is None  # built by Starlette on the first request
    built = app.build_middleware_stack()
    layers = []
    node: object = built
    while node is not None:
        layers.append(type(node))
        node = getattr(node, "app", None)
    assert layers[0] is ServerErrorMiddleware
    # The direct routes run first of Relay's middleware, before the gate and the router.
    relays = (DirectRoutes, PageHeaders, RequestGate, CodecCors, ExceptionMiddleware)
    order = [layers.index(cls) for cls in relays]
    assert order == sorted(order)


async def test_an_unexpected_error_is_logged_once_per_answer_on_the_postback(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    app = _app_raising(RuntimeError("boom"), monkeypatch)
    transport = httpx.ASGITransport(app=app)  # the direct route does not re-raise
    with caplog.at_level(logging.ERROR, logger="api.errors"):
        async with httpx.AsyncClient(transport=transport, base_url="http://relay.test") as http:
            response = await http.post("/postback", data={"key": "k", "click_id": "c1"})
    assert response.status_code == 500
    assert len(caplog.records) == 1
