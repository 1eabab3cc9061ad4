"""`relay up | api | worker | migrate | inbox`: the embedded stack, one distributed role, or
the state of the API's inbox."""

import argparse
import asyncio
import fcntl
import gc
import logging
import os
import signal
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from relay.devserver import DevServer, DevServerGaveUp, PortInUse
from relay.inbox import read_stats
from relay.log_redaction import install_access_log_redaction
from relay.runtime import Runtime, open_runtime
from relay.secrets import MissingSecret, resolve_secrets
from relay.settings import Settings
from relay.store.database import apply_migrations, open_clickhouse
from relay.worker import relay_worker

log = logging.getLogger("relay")
IO_THREADS = 32


class DataDirInUse(RuntimeError):
    """Another embedded Relay owns the data dir."""


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handling: it would re-raise SIGINT once the API stops,
    cancelling the worker's drain and the dev server's shutdown. Relay owns the signals."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_until_signal(server: uvicorn.Server) -> None:
    """Serve until SIGINT/SIGTERM; a second signal skips the graceful wait."""

    def stop() -> None:
        server.force_exit = server.should_exit
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        await server.serve()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _uvicorn(app: FastAPI, settings: Settings) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="info",
        proxy_headers=False,
        lifespan="on",
    )
    install_access_log_redaction()
    return _Server(config)


@asynccontextmanager
async def _already_open(runtime: Runtime) -> AsyncIterator[Runtime]:
    yield runtime


def _banner(settings: Settings, ui_url: str | None, admin_token: str) -> str:
    api_url = settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
    lines = [
        "Relay is up.",
        f"  API:          {api_url}   (OpenAPI: {api_url}/docs)",
        f"  Temporal UI:  {ui_url or 'external cluster'}",
        f"  Admin token:  {admin_token}",
        f"  Data dir:     {settings.data_dir.resolve()}",
        "Ctrl-C stops everything; the next start reuses the same data.",
    ]
    return "\n".join(lines)


@contextmanager
def _data_dir_lock(data_dir: Path) -> Iterator[None]:
    """One `relay up` per data dir: the in-process engine and SQLite allow one owner."""
    data_dir.mkdir(parents=True, exist_ok=True)
    with (data_dir / "relay.lock").open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "unknown"
            raise DataDirInUse(
                f"another relay up (pid {owner}) is using {data_dir.resolve()}; stop it or "
                "set RELAY_DATA_DIR to another directory"
            ) from None
        handle.truncate(0)
        handle.write(str(os.getpid()))
        handle.flush()
        yield


def _settle_heap() -> None:
    """Move what start-up allocated out of the collector's view: full collections then walk
    only what requests allocate."""
    gc.collect()
    gc.freeze()


def _io_threads() -> None:
    """Blocking ClickHouse calls run off the event loop; asyncio's default pool (cores + 4
    threads) is too small for the API and the worker's activities together."""
    executor = ThreadPoolExecutor(max_workers=IO_THREADS, thread_name_prefix="relay-io")
    asyncio.get_running_loop().set_default_executor(executor)


async def run_up(settings: Settings) -> None:
    """Embedded: dev server child + in-process ClickHouse + API and worker in this process."""
    _io_threads()
    with _data_dir_lock(settings.data_dir):
        try:
            await _run_up(settings)
        except DevServerGaveUp as exc:  # logged when it happened; this is the last word
            raise SystemExit(f"relay up: {exc}") from None


async def _run_up(settings: Settings) -> None:
    secrets = resolve_secrets(settings, embedded=True)
    devserver: DevServer | None = None
    supervisor: asyncio.Task[None] | None = None
    address = settings.temporal_address
    if address is None:
        devserver = DevServer(
            settings.data_dir,
            settings.temporal_port,
            settings.temporal_ui_port,
            settings.temporal_namespace,
        )
        log.info("starting the Temporal dev server (%s)", devserver.db_file)
        await devserver.start()
        address = devserver.address
        # Restarts it with backoff if it exits; raises DevServerGaveUp if that keeps failing.
        supervisor = asyncio.create_task(devserver.supervise())
    try:
        async with (
            open_runtime(
                settings, address, secrets.keys, secrets.admin_token, embedded=True
            ) as runtime,
            relay_worker(
                runtime.temporal,
                settings,
                runtime.clickhouse,
                secrets.keys,
                config=runtime.config_cache,  # one cache: admin writes refresh it at once
                clicks=runtime.clicks,  # clicks taken here are found here
            ) as worker,
        ):
            server = _uvicorn(create_app(lambda: _already_open(runtime)), settings)
            worker_task = asyncio.create_task(worker.run())
            # A dead worker, or a dev server that cannot be brought back, must not leave the
            # API accepting postbacks nobody delivers.
            for task in (worker_task, supervisor):
                if task is not None:
                    task.add_done_callback(lambda _: setattr(server, "should_exit", True))
            print(
                _banner(settings, devserver.ui_url if devserver else None, runtime.admin_token),
                flush=True,
            )
            _settle_heap()
            try:
                await _serve_until_signal(server)
            finally:
                await worker.shutdown()
                await asyncio.gather(worker_task, return_exceptions=True)
    finally:
        if supervisor is not None:
            supervisor.cancel()  # an intentional stop is not a crash: no restart
        if devserver:
            devserver.stop()
    if supervisor is not None:
        (outcome,) = await asyncio.gather(supervisor, return_exceptions=True)
        if isinstance(outcome, Exception):  # DevServerGaveUp, or a bug: not a cancellation
            raise outcome


def _require_distributed(settings: Settings, role: str) -> str:
    """The Temporal address; distributed roles need a Temporal and a ClickHouse server (the
    in-process engine allows one owner per data dir, and only `relay up` takes its lock)."""
    if not settings.temporal_address:
        raise MissingSecret(f"relay {role} needs RELAY_TEMPORAL_ADDRESS")
    if not settings.clickhouse_dsn.startswith(("http://", "https://")):
        raise MissingSecret(f"relay {role} needs RELAY_CLICKHOUSE_URL=http(s)://... (a server)")
    return settings.temporal_address


async def run_api(settings: Settings) -> None:
    """Distributed: the HTTP API alone, against an existing Temporal and ClickHouse."""
    address = _require_distributed(settings, "api")
    _io_threads()
    secrets = resolve_secrets(settings, embedded=False)
    app = create_app(lambda: open_runtime(settings, address, secrets.keys, secrets.admin_token))
    await _serve_until_signal(_uvicorn(app, settings))


async def run_worker(settings: Settings) -> None:
    """Distributed: a worker alone; SIGINT/SIGTERM drain it gracefully."""
    address = _require_distributed(settings, "worker")
    _io_threads()
    secrets = resolve_secrets(settings, embedded=False)
    async with (
        open_runtime(settings, address, secrets.keys, secrets.admin_token) as rt,
        relay_worker(rt.temporal, settings, rt.clickhouse, secrets.keys) as worker,
    ):
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        task = asyncio.create_task(worker.run())
        log.info("worker polling task queue %s", settings.task_queue)
        await stop.wait()
        await worker.shutdown()
        await asyncio.gather(task, return_exceptions=True)


def run_inbox(settings: Settings) -> None:
    """Depth and oldest entry's age of this API's inbox, read-only: works while it runs."""
    path = settings.inbox_file
    if not path.exists():
        print(f"no inbox at {path.resolve()} (set RELAY_DATA_DIR or RELAY_INBOX_PATH)")
        return
    stats = read_stats(path)
    oldest = "" if stats.oldest_age_s is None else f"; the oldest is {stats.oldest_age_s:.1f} s old"
    print(f"{stats.depth} postbacks waiting to be forwarded in {path.resolve()}{oldest}")


def run_migrate(settings: Settings) -> None:
    client = open_clickhouse(settings.clickhouse_dsn, settings.clickhouse_database)
    try:
        applied = apply_migrations(client)
        print("applied: " + ", ".join(applied) if applied else "schema is up to date")
    finally:
        client.close()


def _run(main: Coroutine[Any, Any, None]) -> None:
    """On uvloop where it is installed: the API answers about half as fast again."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="relay", description=__doc__)
    parser.add_argument("command", choices=["up", "api", "worker", "migrate", "inbox"])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every request URL at INFO; outbound postback URLs may carry secrets.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    settings = Settings()
    try:
        if args.command == "migrate":
            run_migrate(settings)
        elif args.command == "inbox":
            run_inbox(settings)
        else:
            runner = {"up": run_up, "api": run_api, "worker": run_worker}[args.command]
            _run(runner(settings))
    except (MissingSecret, DataDirInUse, PortInUse) as exc:
        raise SystemExit(f"relay {args.command}: {exc}") from None
    except KeyboardInterrupt:
        pass
