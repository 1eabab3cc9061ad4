"""Relay's distributed roles as child processes, started as a user starts them: the `relay`
console script with `RELAY_` environment variables, against one shared Temporal and one
ClickHouse reached over HTTP (`tests.clickhouse_http`, run by `ClickHouseHttp`). Used by
tests and by `bench/`."""

from __future__ import annotations

import ctypes
import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import httpx

from tests.embedded import free_port

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    # A test or bench killed outright takes its children with it (SIGTERM to them).
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def relay_command() -> str:
    """The `relay` console script installed beside this Python."""
    return str(Path(sys.executable).parent / "relay")


@dataclass
class Cluster:
    """What every process of one deployment shares: the environment a user would set."""

    temporal_address: str
    clickhouse_dsn: str
    database: str
    task_queue: str
    encryption_key: str
    admin_token: str
    settings: dict[str, str] = field(default_factory=dict)  # further RELAY_ variables

    def env(self, data_dir: Path, **settings: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        return {
            **inherited,
            "RELAY_TEMPORAL_ADDRESS": self.temporal_address,
            "RELAY_CLICKHOUSE_URL": self.clickhouse_dsn,
            "RELAY_CLICKHOUSE_DATABASE": self.database,
            "RELAY_TASK_QUEUE": self.task_queue,
            "RELAY_ENCRYPTION_KEY": self.encryption_key,
            "RELAY_ADMIN_TOKEN": self.admin_token,
            "RELAY_DATA_DIR": str(data_dir),
            **self.settings,
            **settings,
        }

    def migrate(self, data_dir: Path, timeout_s: float = 120) -> str:
        """`relay migrate`, the single applier of the schema; its output."""
        data_dir.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            [relay_command(), "migrate"],
            env=self.env(data_dir),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"relay migrate failed ({done.returncode}): {done.stderr[-2000:]}")
        return done.stdout


class Role:
    """One `relay api` or `relay worker` process on its own data dir (an API's inbox lives
    there); `start()` again after a stop starts it on the same data dir and port."""

    def __init__(self, role: str, cluster: Cluster, data_dir: Path, **settings: str) -> None:
        self.role = role
        self.data_dir = data_dir
        self.port = free_port() if role == "api" else 0
        self.url = f"http://127.0.0.1:{self.port}"
        extra = {"RELAY_HTTP_PORT": str(self.port)} if role == "api" else {}
        self.env = cluster.env(data_dir, **extra, **settings)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / f"relay-{role}.log"

    @property
    def health_file(self) -> Path:
        return Path(self.env.get("RELAY_WORKER_HEALTH_FILE") or self.data_dir / "worker.alive")

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.role == "worker":
            self.health_file.unlink(missing_ok=True)
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [relay_command(), self.role],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )

    def ready(self) -> bool:
        """The API answers /readyz 200; the worker polls (its health file exists)."""
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(f"relay {self.role} exited; see {self.log}")
        if self.role == "worker":
            return self.health_file.exists()
        try:
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while not self.ready():
            if time.monotonic() > deadline:
                raise TimeoutError(f"relay {self.role} not ready; see {self.log}")
            time.sleep(0.1)

    def terminate(self, timeout_s: float = 30) -> int:
        """SIGTERM, as an orchestrator stops it; the exit code."""
        assert self.process is not None
        self.process.terminate()
        return self.process.wait(timeout=timeout_s)

    def kill(self) -> None:
        """SIGKILL, as a crash or an OOM kill would."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """Whatever state it is in: stopped (for fixtures' cleanup)."""
        if self.process is not None and self.process.poll() is None:
            try:
                self.terminate(timeout_s=20)
            except subprocess.TimeoutExpired:
                self.kill()


class ClickHouseHttp:
    """The server as a child process on a free loopback port, over `data_dir`."""

    def __init__(
        self,
        data_dir: Path,
        log_file: Path,
        user: str = "relay",
        password: str = "relay-test-password",
        port: int = 0,
    ) -> None:
        self.port = port  # 0: a free one; fixed, a restart keeps the URL
        self.data_dir, self.log_file = data_dir, log_file
        self.user, self.password = user, password
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""

    @property
    def dsn(self) -> str:
        """What RELAY_CLICKHOUSE_URL takes: `http://user:password@127.0.0.1:PORT`."""
        return self.url.replace("http://", f"http://{self.user}:{self.password}@", 1)

    def start(self, timeout_s: float = 60) -> None:
        argv = [sys.executable, "-m", "tests.clickhouse_http", "--data-dir", str(self.data_dir)]
        argv += ["--user", self.user, "--password", self.password, "--port", str(self.port)]
        with self.log_file.open("ab") as log_handle:
            self.process = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=log_handle, stdin=subprocess.DEVNULL
            )
        assert self.process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self.process.stdout, selectors.EVENT_READ)
            if not selector.select(timeout_s):
                self.stop()
                raise TimeoutError(f"clickhouse-http did not start; see {self.log_file}")
        line = self.process.stdout.readline().decode().strip()
        if " listening on " not in line:
            self.stop()
            raise RuntimeError(f"clickhouse-http did not start ({line!r}); see {self.log_file}")
        self.url = line.rsplit(" ", 1)[1]

    def kill(self) -> None:
        """SIGKILL, as a crash would (start() again brings it back on the same data)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()

    def pause(self) -> None:
        """SIGSTOP: connections are accepted by the kernel, nothing is answered."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def stop(self, timeout_s: float = 20) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.resume()  # a paused server would not act on SIGTERM
        self.process.terminate()
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def __enter__(self) -> ClickHouseHttp:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
