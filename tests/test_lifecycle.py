"""`relay up`'s process lifecycle: its dev server dies with it, and its stop is bounded."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from relay.core.crypto import KeyRing
from relay.process.devserver import DevServer
from tests.embedded import (
    EmbeddedRelay,
    child_pids,
    devserver_pid,
    free_port,
    port_open,
    wait_for,
)
from tests.platform_server import PlatformServer

# `relay up` with a short stop budget: RELAY_WORKER_SHUTDOWN_GRACE_S (1 s) + 2 s.
SHORT_BUDGET_S = 3.0
SHORT_STOP = """
import relay.process.cli
relay.process.cli.STOP_MARGIN_S = 2.0
relay.process.cli.main(["up"])
"""


def _running(pid: int) -> bool:
    """Whether `pid` runs: a zombie (dead, not reaped) does not, once its other threads,
    which hold its sockets, are gone too."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z" or len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def _ready(relay: EmbeddedRelay) -> bool:
    assert relay.process is not None and relay.process.poll() is None, "relay up exited"
    try:
        return httpx.get(f"{relay.url}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _start_short_stop(relay: EmbeddedRelay) -> subprocess.Popen[bytes]:
    env = {**relay.env, "RELAY_WORKER_SHUTDOWN_GRACE_S": "1"}
    with (relay.data_dir / "relay-up.log").open("ab") as log_file:
        relay.process = subprocess.Popen(
            [sys.executable, "-c", SHORT_STOP], env=env, stdout=log_file, stderr=log_file
        )
    wait_for(lambda: _ready(relay), 90, "relay up to be ready")
    return relay.process


def _log(relay: EmbeddedRelay) -> str:
    return (relay.data_dir / "relay-up.log").read_text()


def test_a_killed_relay_up_takes_its_dev_server_along_and_starts_again_at_once(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    relay = EmbeddedRelay(tmp_path, platforms.base_url)
    relay.start()
    try:
        assert relay.process is not None
        # The supervisor's restart forks from the event loop's thread too: its parent-death
        # signal fires when relay up dies, not when some other thread ends.
        first, parent = devserver_pid(relay), relay.process.pid
        os.kill(first, signal.SIGKILL)
        wait_for(
            lambda: child_pids(parent, "temporal") not in ([], [first]),
            30,
            "the supervisor to restart the dev server",
        )
        restarted = devserver_pid(relay)
        wait_for(lambda: _ready(relay), 30, "relay up to be ready again")

        relay.process.kill()
        relay.process.wait()
        wait_for(lambda: not _running(restarted), 2, "the dev server to die with relay up")
        assert not port_open(relay.temporal_port) and not port_open(relay.ui_port)

        relay.start()  # at once: the ports are free and nobody else is on the database
        assert "still runs on" not in _log(relay)
        again = devserver_pid(relay)
        assert relay.interrupt() == 0
        assert not _running(again)
        assert not (tmp_path / "temporal.pid").exists()
    finally:
        if relay.process and relay.process.poll() is None:
            relay.kill()


async def test_a_dev_server_left_running_on_the_data_dir_is_killed_before_the_start(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    relay = EmbeddedRelay(tmp_path, platforms.base_url)
    # Left by an earlier start that died without taking it along (as on a system without a
    # parent-death signal): same database, same ports, named by the pid file.
    left = DevServer(tmp_path, relay.temporal_port, relay.ui_port)
    await left.start()
    orphan = left.pid
    assert orphan is not None and (tmp_path / "temporal.pid").read_text().split() == [str(orphan)]
    try:
        relay.start()
        assert not _running(orphan)
        assert f"(pid {orphan}) still runs on {tmp_path / 'temporal.sqlite'}" in _log(relay)
        assert devserver_pid(relay) != orphan
        assert relay.interrupt() == 0
    finally:
        left.kill()  # reaps it
        if relay.process and relay.process.poll() is None:
            relay.kill()


def test_ctrl_c_during_a_stall_exits_at_the_deadline_and_stops_the_dev_server(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    relay = EmbeddedRelay(tmp_path, platforms.base_url)
    process = _start_short_stop(relay)
    try:
        # A real stall: Temporal stops answering. Unbounded, the worker's shutdown waits 30 s
        # for its RPC and the paused server ignores SIGTERM for another 10 s.
        paused = devserver_pid(relay)
        os.kill(paused, signal.SIGSTOP)
        started = time.monotonic()
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=SHORT_BUDGET_S + 10)
        took = time.monotonic() - started
        assert code == 1
        assert SHORT_BUDGET_S - 0.5 < took < SHORT_BUDGET_S + 5, took  # unbounded: 40 s
        assert not _running(paused), "the paused dev server outlived relay up"
        log = _log(relay)
        assert "SIGINT: stopping relay up (within 3 s; Ctrl-C again to stop at once)" in log
        assert "relay up: the stop took longer than 3 s; exiting now, abandoning" in log
        assert "draining the Temporal worker" in log
        assert f"the Temporal dev server (pid {paused}) was killed" in log

        relay.start()  # on the same data: nothing is left holding it
        assert relay.interrupt() == 0
    finally:
        if relay.process and relay.process.poll() is None:
            relay.kill()


def test_a_second_ctrl_c_exits_at_once(tmp_path: Path, platforms: PlatformServer) -> None:
    relay = EmbeddedRelay(tmp_path, platforms.base_url)
    relay.start()
    try:
        assert relay.process is not None
        paused = devserver_pid(relay)
        os.kill(paused, signal.SIGSTOP)  # the stop would take the whole budget (25 s)
        relay.process.send_signal(signal.SIGINT)
        wait_for(lambda: "SIGINT: stopping relay up" in _log(relay), 10, "the first Ctrl-C")
        started = time.monotonic()
        relay.process.send_signal(signal.SIGINT)
        assert relay.process.wait(timeout=10) == 1
        assert time.monotonic() - started < 5  # the budget is 25 s
        assert not _running(paused)
        assert "relay up: a second SIGINT; exiting now" in _log(relay)
    finally:
        if relay.process and relay.process.poll() is None:
            relay.kill()


def _relay(
    *args: str, env: dict[str, str], timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    """`relay ARGS` to its end, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "relay", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def _bare_env(tmp_path: Path, **settings: str) -> dict[str, str]:
    """The environment without the caller's RELAY_ settings, plus free Temporal ports."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
    env.update(
        RELAY_DATA_DIR=str(tmp_path / "env-data"),
        RELAY_HTTP_PORT=str(free_port()),
        RELAY_TEMPORAL_PORT=str(free_port()),
        RELAY_TEMPORAL_UI_PORT=str(free_port()),
    )
    env.update(settings)
    return env


def _held_port() -> socket.socket:
    """A loopback port something else listens on."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    return holder


def test_a_taken_http_port_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    with _held_port() as holder:
        port = holder.getsockname()[1]
        data_dir = tmp_path / "flag-data"
        # The flags win over RELAY_HTTP_PORT (free) and RELAY_DATA_DIR.
        up = _relay("up", "--port", str(port), "--data-dir", str(data_dir), env=_bare_env(tmp_path))
        distributed = {
            "RELAY_TEMPORAL_ADDRESS": "127.0.0.1:1",
            "RELAY_CLICKHOUSE_URL": "http://127.0.0.1:1",
            "RELAY_ENCRYPTION_KEY": KeyRing.generate_spec("t"),
            "RELAY_ADMIN_TOKEN": "x" * 40,
            "RELAY_HTTP_PORT": str(port),
        }
        api = _relay("api", env=_bare_env(tmp_path, **distributed))
    for command, done in (("up", up), ("api", api)):
        assert done.returncode != 0
        assert done.stderr.splitlines() == [
            f"relay {command}: port {port} on 127.0.0.1 is in use (RELAY_HTTP_PORT / --port): "
            "stop what holds it or choose another port"
        ], done.stderr
        assert "Relay is up." not in done.stdout
    # Refused before anything heavy: no admin token generated, no dev server database.
    assert sorted(p.name for p in data_dir.iterdir()) == ["relay.lock"]
    assert not (tmp_path / "env-data").exists()


def test_a_first_start_that_fails_still_prints_the_admin_token_it_generated(
    tmp_path: Path,
) -> None:
    # Fails late: after the token is generated and ClickHouse migrated, at Temporal (a port
    # nobody listens on).
    nobody = f"127.0.0.1:{free_port()}"
    env = _bare_env(tmp_path, RELAY_TEMPORAL_ADDRESS=nobody)
    first = _relay("up", env=env)
    token = json.loads((tmp_path / "env-data" / "secrets.json").read_text())["admin_token"]
    again = _relay("up", env=env)
    assert first.returncode != 0 and "Relay is up." not in first.stdout
    assert f"relay up: admin token: {token}   (generated now, kept in" in first.stderr
    assert f"relay up: cannot connect to Temporal at {nobody}" in first.stderr
    assert "Traceback" not in first.stderr
    # Shown once: the next start reads it from the file and does not print it.
    assert again.returncode != 0 and token not in again.stdout + again.stderr
    assert f"relay up: cannot connect to Temporal at {nobody}" in again.stderr


def test_each_taken_temporal_port_is_named_before_the_http_port(tmp_path: Path) -> None:
    with _held_port() as temporal, _held_port() as http:
        port = temporal.getsockname()[1]
        env = _bare_env(
            tmp_path, RELAY_TEMPORAL_PORT=str(port), RELAY_HTTP_PORT=str(http.getsockname()[1])
        )
        done = _relay("up", env=env)
    assert done.returncode != 0
    assert done.stderr.splitlines() == [
        f"relay up: port {port} is already in use; set RELAY_TEMPORAL_PORT to another port"
    ], done.stderr
    assert not (tmp_path / "env-data" / "secrets.json").exists()


def test_relay_up_flags_take_precedence_and_migrate_meanwhile_is_refused(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    port, data_dir = free_port(), tmp_path / "flag-data"
    env = _bare_env(
        tmp_path,
        RELAY_ADMIN_TOKEN="lifecycle-admin-token",
        RELAY_META_BASE_URL=platforms.base_url,
        RELAY_TIKTOK_BASE_URL=platforms.base_url,
    )
    log_path = tmp_path / "relay-up.log"
    flags = ["--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)]
    with log_path.open("ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "relay", "up", *flags],
            env=env,
            stdout=log_file,
            stderr=log_file,
        )
    try:

        def ready() -> bool:
            assert process.poll() is None, log_path.read_text()
            try:
                return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 90, "relay up to be ready on the --port")
        assert not port_open(int(env["RELAY_HTTP_PORT"]))
        assert (data_dir / "clickhouse").is_dir() and not (tmp_path / "env-data").exists()
        assert f"Data dir:     {data_dir}" in log_path.read_text()

        migrate = _relay("migrate", "--data-dir", str(data_dir), env=env)
        assert migrate.returncode != 0
        assert migrate.stderr.splitlines() == [
            f"relay migrate: the data dir {data_dir} is in use by a running relay up "
            f"(pid {process.pid}); `relay up` applies the migrations itself: stop it before "
            "`relay migrate` (RELAY_DATA_DIR / --data-dir)"
        ], migrate.stderr
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=40) == 0
        # Once it stopped, migrate runs.
        after = _relay("migrate", "--data-dir", str(data_dir), env=env)
        assert after.returncode == 0, after.stderr
        assert "schema is up to date" in after.stdout
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
