"""`relay up | api | worker | migrate | redeliver | inbox | status | version | help`: the
embedded stack, one distributed role, a redelivery, the API's inbox or a running Relay's state."""

import asyncio
import gc
import logging
import os
import selectors
import signal
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.routes.metrics import metrics_app
from relay.core.crypto import KeyRing
from relay.core.log_redaction import install_access_log_redaction
from relay.core.logs import configure_logging
from relay.core.settings import Settings
from relay.core.supervision import PARTS
from relay.ingest.inbox import InboxInUse, ensure_free, read_stats
from relay.process.banner import banner, origin
from relay.process.cli_checks import (
    CannotListen,
    DataDirInUse,
    bind_http,
    check_temporal_ports,
    data_dir_lock,
)
from relay.process.cli_help import build_parser, relay_version, settings_overrides, show_help
from relay.process.cli_redeliver import run_redeliver
from relay.process.cli_status import run_status
from relay.process.embedded import EmbeddedMissing, PortInUse, require_embedded
from relay.process.http_limits import raise_fd_limit, server_options
from relay.process.secrets import MissingSecret, Secrets, resolve_secrets
from relay.process.worker import relay_worker
from relay.process.worker_process import WorkerFailed, serve_worker
from relay.runtime import Runtime, open_runtime
from relay.store.database import SCHEMA_ERRORS, apply_migrations, check_schema, open_clickhouse
from relay.store.migration_lock import break_lock
from relay.store.retention import apply_retention
from relay.temporal import search_attributes
from relay.temporal.setup import TemporalUnreachable, connect_temporal

if TYPE_CHECKING:
    from relay.process.devserver import DevServer

log = logging.getLogger("relay")
IO_THREADS = 32
# `relay up` stops within RELAY_WORKER_SHUTDOWN_GRACE_S plus this after SIGINT/SIGTERM: the
# worker drains for up to the grace; this margin is for the rest of a healthy stop (the API's
# requests, the inbox, ClickHouse's queued rows, the dev server's own ~1 s) to finish.
STOP_MARGIN_S = 15.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Server(uvicorn.Server):
    """Uvicorn without its own signal handling: it would re-raise SIGINT once the API stops,
    cancelling the worker's drain and the dev server's shutdown. Relay owns the signals."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve_until_signal(server: uvicorn.Server, listener: socket.socket) -> None:
    """Serve until SIGINT/SIGTERM; a second signal skips the graceful wait."""

    def stop() -> None:
        server.force_exit = server.should_exit
        server.should_exit = True

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    try:
        await server.serve(sockets=[listener])
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _no_python_handler(signum: int, frame: FrameType | None) -> None:
    """Installed so the interpreter's C-level handler writes the signal to the wakeup fd."""


class _BoundedStop:
    """`relay up`'s stop, bounded in time.

    The first SIGINT/SIGTERM starts the graceful stop (during start-up: cancels it): the API
    stops (its requests finish, the inbox closes), the worker drains for up to
    RELAY_WORKER_SHUTDOWN_GRACE_S, ClickHouse closes, the dev server stops. A watchdog thread
    allows all that `budget_s` (the grace plus STOP_MARGIN_S) from the signal, or from the
    start of a stop nobody asked for (the worker or the dev server died). Past it, or at a
    second signal, it kills the dev server, logs what it abandons and exits 1 with os._exit:
    threads stuck in a hung ClickHouse call or disk cannot hold the process (nor can
    asyncio.run's wait for its executor, nor the interpreter's for its threads; the watchdog
    stays armed until the process is gone). Nothing answered is lost: the inbox commits each
    postback (fsync) before answering it, a row not yet in ClickHouse belongs to an activity
    Temporal runs again, and the dev server's SQLite keeps what it committed through a kill.

    The watchdog reads the signals from the interpreter's wakeup fd, which its C-level
    handler writes at once: it acts even while the event loop's thread is blocked."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.phase = "starting"  # what a stop would wait for: logged if it is abandoned
        self.devserver: DevServer | None = None
        self.cancelled_start = False
        self.announced = False  # the banner was printed
        self._server: uvicorn.Server | None = None
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._read, selectors.EVENT_READ)

    def install(self) -> None:
        """Take SIGINT and SIGTERM for the rest of the process's life (main thread only)."""
        for sig in STOP_SIGNALS:
            signal.signal(sig, _no_python_handler)
        signal.set_wakeup_fd(self._write, warn_on_full_buffer=False)
        threading.Thread(target=self._watch, name="relay-stop-watchdog", daemon=True).start()

    def begin(self) -> None:
        """A stop began without a signal (or after one): start the clock if not started."""
        with suppress(BlockingIOError):  # full of signals the watchdog has yet to read
            os.write(self._write, b"\0")

    async def serve(self, server: uvicorn.Server, listener: socket.socket) -> None:
        """Serve on `listener` until a signal (or a done callback) sets `should_exit`."""
        self._server = server
        self.phase = "stopping the API (its requests in flight, the forwarder, the inbox)"
        await server.serve(sockets=[listener])

    def _request_stop(self, name: str) -> None:
        """On the event loop: the first signal."""
        again = "Ctrl-C" if name == "SIGINT" else name
        log.warning(
            "%s: stopping relay up (within %.0f s; %s again to stop at once)",
            name,
            self.budget_s,
            again,
        )
        if self._server is not None:
            self._server.should_exit = True
        elif self._task is not None and not self._task.done():
            self.cancelled_start = True
            self._task.cancel()  # still starting

    def _watch(self) -> None:
        deadline: float | None = None
        signals = 0
        while True:
            wait = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            if not self._selector.select(wait):
                self._abandon(f"the stop took longer than {self.budget_s:.0f} s")
            try:
                received = os.read(self._read, 512)
            except BlockingIOError:
                continue
            if deadline is None:
                deadline = time.monotonic() + self.budget_s
            for number in received:
                if number not in STOP_SIGNALS:
                    continue
                name = signal.Signals(number).name
                signals += 1
                if signals > 1:
                    self._abandon(f"a second {name}")
                # Logged on the loop: this thread never waits on a log handler's lock.
                with suppress(RuntimeError):  # the loop is closed: exiting anyway
                    self._loop.call_soon_threadsafe(self._request_stop, name)

    def _abandon(self, why: str) -> None:
        """Kill the dev server, say what is left behind, and exit 1 now."""
        phase, busy = self.phase, _busy_threads()  # before the kill unblocks any of them
        try:
            stuck = PARTS.stuck()
        except Exception:  # the exit must not depend on it
            stuck = {}
        killed = self.devserver.kill() if self.devserver is not None else None
        message = (
            f"relay up: {why}; exiting now, abandoning what was still running: {phase}"
            + (f"; parts not making progress: {stuck}" if stuck else "")
            + (f"; threads in Relay's code: {'; '.join(busy)}" if busy else "")
            + (f"; the Temporal dev server (pid {killed}) was killed" if killed else "")
            + ". Postbacks answered are in the inbox; the next start goes on from there."
        )
        # Logged from a helper thread: a log handler stuck on a full pipe must not hold us.
        writer = threading.Thread(target=_log_and_flush, args=(message,), daemon=True)
        writer.start()
        writer.join(timeout=2.0)
        os._exit(1)


_SOURCE_ROOT = Path(__file__).resolve().parents[1]  # where relay/, api/, ... are
_PACKAGES = ("relay", "api", "activities", "workflows")


def _ours(filename: str) -> Path | None:
    """The path of a frame's file relative to the source root, if it is Relay's own code."""
    path = Path(filename)
    if not path.is_relative_to(_SOURCE_ROOT):
        return None
    relative = path.relative_to(_SOURCE_ROOT)
    return relative if relative.parts[0] in _PACKAGES else None


def _busy_threads(limit: int = 12) -> list[str]:
    """'thread at file:line (function)' for each other thread whose stack is in Relay's own
    code (idle pool threads are not), at its innermost such frame: what the stop waits on."""
    here = threading.get_ident()
    names = {t.ident: t.name for t in threading.enumerate()}
    found = []
    for ident, frame in sys._current_frames().items():
        at: FrameType | None = frame
        while at is not None and _ours(at.f_code.co_filename) is None:
            at = at.f_back
        if ident == here or at is None:
            continue
        where = _ours(at.f_code.co_filename)
        if where == Path("relay", "cli.py"):
            continue  # only here: the event loop's thread, waiting for something to do
        found.append(f"{names.get(ident, ident)} at {where}:{at.f_lineno} ({at.f_code.co_name})")
    return sorted(found)[:limit]


def _log_and_flush(message: str) -> None:
    log.error("%s", message)
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):
            stream.flush()


def _uvicorn(app: FastAPI, settings: Settings) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_level="info",
        proxy_headers=False,
        lifespan="on",
        # JSON logs: uvicorn's loggers go through the root logger's JSON handler.
        log_config=None if settings.log_format == "json" else uvicorn.config.LOGGING_CONFIG,
        # Slow clients hold a socket for a bounded time; connections are capped.
        **server_options(settings),
    )
    raise_fd_limit(settings.http_max_connections)
    install_access_log_redaction()
    return _Server(config)


@asynccontextmanager
async def _already_open(runtime: Runtime) -> AsyncIterator[Runtime]:
    yield runtime


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
    # Here, not at the top: the distributed roles run without the embedded extra.
    from relay.process.devserver import DevServerGaveUp

    _io_threads()
    stop = _BoundedStop(settings.worker_shutdown_grace + STOP_MARGIN_S)
    stop.install()
    with data_dir_lock(settings.data_dir):
        check_temporal_ports(settings)  # each port taken named before the API's
        with _http_listener(settings) as listener:
            try:
                # After the port check: a start refused there generates no admin token.
                secrets = resolve_secrets(settings, embedded=True)
                try:
                    await _run_up(settings, stop, secrets, listener)
                finally:
                    if not stop.announced:
                        _show_generated_token(secrets)
            except DevServerGaveUp as exc:  # logged when it happened; this is the last word
                raise SystemExit(f"relay up: {exc}") from None
            except asyncio.CancelledError:
                # A signal during start-up cancelled it (and everything started is stopped).
                task = asyncio.current_task()
                if not stop.cancelled_start or task is None or task.uncancel() > 0:
                    raise
            finally:
                stop.begin()  # from here on, only the interpreter's exit is left
                stop.phase = "exiting (waiting for threads to finish)"


@contextmanager
def _http_listener(settings: Settings) -> Iterator[socket.socket]:
    """The API's socket, bound before anything heavy starts (CannotListen if the port is
    taken) and held until the end: nothing else can take the port meanwhile."""
    listener = bind_http(settings.http_host, settings.http_port)
    try:
        yield listener
    finally:
        listener.close()


def _show_generated_token(secrets: Secrets) -> None:
    """A start that failed before its banner still shows the admin token it generated:
    the next start reads it from the file and shows only where it is."""
    if secrets.origin == "generated":
        print(f"relay up: admin token: {secrets.admin_token_shown()}", file=sys.stderr, flush=True)


async def _run_up(
    settings: Settings, stop: _BoundedStop, secrets: Secrets, listener: socket.socket
) -> None:
    from relay.process.devserver import DevServer

    devserver: DevServer | None = None
    supervisor: asyncio.Task[None] | None = None
    address = settings.temporal_address
    grace = settings.worker_shutdown_grace
    try:
        if address is None:
            devserver = stop.devserver = DevServer(
                settings.data_dir,
                settings.temporal_port,
                settings.temporal_ui_port,
                settings.temporal_namespace,
                ui_codec_endpoint=f"{origin(settings)}/ui/codec",
            )
            log.info("starting the Temporal dev server (%s)", devserver.db_file)
            await devserver.start()
            address = devserver.address
            # Restarts it with backoff if it exits; raises DevServerGaveUp if that keeps
            # failing.
            supervisor = asyncio.create_task(devserver.supervise())
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
            ui = f"{origin(settings)}/ui/temporal/" if devserver else None
            print(banner(settings, ui, secrets.admin_token_shown()), flush=True)
            stop.announced = True
            _settle_heap()
            try:
                await stop.serve(server, listener)
            finally:
                stop.begin()
                stop.phase = f"draining the Temporal worker (grace {grace:.0f} s)"
                await worker.shutdown()
                await asyncio.gather(worker_task, return_exceptions=True)
                stop.phase = "closing ClickHouse (writing the rows queued for it)"
    finally:
        stop.begin()
        stop.phase = "stopping the Temporal dev server"
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
    with _http_listener(settings) as listener:  # before the slower checks
        _check_schema(settings)  # before serving: the lifespan would fail with a traceback
        ensure_free(settings.inbox_file)  # likewise: a second API on this inbox is refused
        app = create_app(lambda: open_runtime(settings, address, secrets.keys, secrets.admin_token))
        await _serve_until_signal(_uvicorn(app, settings), listener)


async def run_worker(settings: Settings) -> None:
    """Distributed: a worker alone; SIGINT/SIGTERM drain it, a fatal failure exits non-zero."""
    address = _require_distributed(settings, "worker")
    _io_threads()
    secrets = resolve_secrets(settings, embedded=False)
    async with (
        open_runtime(settings, address, secrets.keys, secrets.admin_token) as rt,
        relay_worker(
            rt.temporal, settings, rt.clickhouse, secrets.keys, config=rt.config_cache
        ) as worker,
    ):
        metrics = _metrics_listener(rt)
        serving = asyncio.create_task(metrics.serve()) if metrics is not None else None
        try:
            await serve_worker(worker, rt.temporal, settings)
        finally:
            if metrics is not None and serving is not None:
                metrics.should_exit = True
                await asyncio.gather(serving, return_exceptions=True)


def _metrics_listener(runtime: Runtime) -> uvicorn.Server | None:
    """`RELAY_METRICS_PORT`: the worker's /metrics on RELAY_HTTP_HOST."""
    host, port = runtime.settings.http_host, runtime.settings.metrics_port
    if port is None:
        return None
    app = metrics_app(runtime)
    return _Server(uvicorn.Config(app, host=host, port=port, lifespan="off", log_config=None))


def run_inbox(settings: Settings) -> None:
    """Depth and oldest entry's age of this API's inbox, read-only: works while it runs."""
    path = settings.inbox_file
    if not path.exists():
        print(f"no inbox at {path.resolve()} (set RELAY_DATA_DIR or RELAY_INBOX_PATH)")
        return
    stats = read_stats(path)
    oldest = "" if stats.oldest_age_s is None else f"; the oldest is {stats.oldest_age_s:.1f} s old"
    print(f"{stats.depth} postbacks waiting to be forwarded in {path.resolve()}{oldest}")


def _check_schema(settings: Settings) -> None:
    client = open_clickhouse(settings.clickhouse_dsn, settings.clickhouse_database, pool_size=1)
    try:
        check_schema(client)
    finally:
        client.close()


def run_migrate(settings: Settings, unlock: bool = False) -> None:
    """The single migration applier of a distributed install (the API and the worker only
    check the schema): ClickHouse's schema under the migration lock, then (with
    RELAY_TEMPORAL_ADDRESS) the Temporal namespace's search attributes; `relay up`'s own dev
    server registers them itself. `unlock`: clear a lock a crashed applier left, nothing else.
    On the in-process engine, refused (DataDirInUse) while `relay up` holds the data dir."""
    if settings.clickhouse_dsn.startswith("chdb:"):
        with data_dir_lock(settings.data_dir, "relay migrate"):
            _migrate(settings, unlock)
    else:
        _migrate(settings, unlock)
    if settings.temporal_address and not unlock:
        _run(_register_search_attributes(settings, settings.temporal_address))


def _migrate(settings: Settings, unlock: bool) -> None:
    client = open_clickhouse(settings.clickhouse_dsn, settings.clickhouse_database)
    try:
        if unlock:
            holder = break_lock(client)
            print(f"migration lock cleared (held by {holder})" if holder else "no migration lock")
            return
        applied = apply_migrations(client)
        print("applied: " + ", ".join(applied) if applied else "schema is up to date")
        days = settings.click_pii_retention_days, settings.delivery_pii_retention_days
        if altered := apply_retention(client, *days):
            print("personal data retention re-stated in: " + ", ".join(altered))
    finally:
        client.close()


async def _register_search_attributes(settings: Settings, address: str) -> None:
    # Operator calls carry no payloads: a throwaway key ring, so migrate needs no secrets.
    temporal = await connect_temporal(settings, address, KeyRing.parse(KeyRing.generate_spec("m")))
    namespace = settings.temporal_namespace
    try:
        added = await search_attributes.register(temporal, namespace)
    except search_attributes.SearchAttributesRefused as exc:
        # Relay still runs without them (conversions cannot be searched by them).
        print(f"search attributes not registered: {exc}", file=sys.stderr)
        return
    names = ", ".join(added) if added else "none missing"
    print(f"search attributes in namespace {namespace}: added {names}")


def _run(main: Coroutine[Any, Any, None]) -> None:
    """On asyncio's own loop, not uvloop. Under `relay up` the worker's threads (the SDK's
    core, workflow activations, ClickHouse) take the GIL often; uvloop takes it again for every
    callback, and accepting connections then fell behind by seconds: in a burst of new
    connections, 2-6% of the first answers took 1-4 s (bench/relay_up.py phase (d)). asyncio's
    loop accepts every waiting connection in one pass."""
    asyncio.run(main)


def _exit_skipping_teardown() -> None:
    """Exit 0 without the interpreter's teardown: after a Temporal client call the SDK's
    Rust threads can abort it ("PyGILState_Release ... finalizing", SIGABRT), and a
    `relay migrate` job that did its work would report failure (temporalio/sdk-python#300)."""
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser(__doc__)
    args = parser.parse_args(argv)
    if args.command == "help":
        show_help(parser, args.topic)
    if args.command == "version":
        print(f"relay {relay_version()}")
        return
    # Flags (`relay up --port ...`) over the environment.
    settings = Settings(**settings_overrides(args))
    configure_logging(settings.log_format)
    # Whatever Relay creates (data dir, inbox, databases, logs, the dev server's files) is
    # readable by its own user only.
    os.umask(0o077)
    try:
        require_embedded(settings, args.command)
    except EmbeddedMissing as exc:
        raise SystemExit(f"relay {args.command}: {exc}") from None
    try:
        if args.command == "migrate":
            run_migrate(settings, args.unlock)
            _exit_skipping_teardown()
        elif args.command == "inbox":
            run_inbox(settings)
        elif args.command == "redeliver":
            raise SystemExit(run_redeliver(args, settings))
        elif args.command == "status":
            raise SystemExit(run_status(args, settings))
        else:
            runner = {"up": run_up, "api": run_api, "worker": run_worker}[args.command]
            _run(runner(settings))
    except (
        MissingSecret,
        DataDirInUse,
        CannotListen,
        PortInUse,
        TemporalUnreachable,
        WorkerFailed,
        InboxInUse,
        *SCHEMA_ERRORS,
    ) as exc:
        raise SystemExit(f"relay {args.command}: {exc}") from None
    except KeyboardInterrupt:
        pass
