"""Relay's API behind a real uvicorn on a free port of 127.0.0.1, in the test's event loop,
for tests about what happens on the wire (bodies that never arrive, chunked uploads)."""

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from relay.runtime import Runtime


class _Server(uvicorn.Server):
    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        # pytest owns the signals; uvicorn would re-raise a captured SIGINT on exit.
        yield


def api_over(runtime: Runtime) -> FastAPI:
    """The API over an already open runtime (its lifespan would open another)."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Runtime]:
        yield runtime

    app = create_app(opened)
    app.state.runtime = runtime
    return app


@asynccontextmanager
async def listening(app: Any, **options: Any) -> AsyncIterator[tuple[str, int]]:
    """`app` behind uvicorn (`options`: uvicorn's Config options) on a free port of
    127.0.0.1 until the block ends; yields its address."""
    # IPPROTO_TCP, as `relay up` binds it: asyncio then sets TCP_NODELAY on each accepted
    # connection (a protocol 0 socket would add delayed ACKs' 40 ms to every answer).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(app, lifespan="off", **options))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn only sets a flag
                await asyncio.sleep(0.01)
        yield sock.getsockname()
    finally:
        server.should_exit = True
        await task
        sock.close()


@asynccontextmanager
async def serving(runtime: Runtime) -> AsyncIterator[str]:
    """The API listening until the block ends; yields its base URL."""
    async with listening(api_over(runtime), log_level="warning") as (host, port):
        yield f"http://{host}:{port}"
