"""Relay's API behind a real uvicorn on a free port of 127.0.0.1, in the test's event loop,
for tests about what happens on the wire (bodies that never arrive, chunked uploads)."""

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

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
async def serving(runtime: Runtime) -> AsyncIterator[str]:
    """The API listening until the block ends; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(api_over(runtime), lifespan="off", log_level="warning")
    server = _Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        async with asyncio.timeout(10):
            while not server.started:  # noqa: ASYNC110 - uvicorn only sets a flag
                await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()
