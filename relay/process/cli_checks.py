"""What the `relay` commands check before starting anything heavy, each failure one line
naming its cause and the setting: the HTTP port is free (bound here and handed to uvicorn,
so nothing can take it between the check and the start), and the data dir has no other
owner (`relay up` and `relay migrate` on the in-process engine: it allows one)."""

import errno
import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from relay.core.settings import Settings
from relay.process.embedded import PortInUse
from relay.process.secrets import private_dir

PORT_SETTING = "RELAY_HTTP_PORT / --port"
HOST_SETTING = "RELAY_HTTP_HOST / --host"
DATA_DIR_SETTING = "RELAY_DATA_DIR / --data-dir"
LOCK_FILE = "relay.lock"


class CannotListen(RuntimeError):
    """The HTTP port is taken (or the host cannot be listened on)."""


class DataDirInUse(RuntimeError):
    """Another Relay process owns the data dir."""


def _cannot_listen(host: str, port: int, exc: OSError) -> CannotListen:
    where = f"port {port} on {host or 'every interface'}"
    if exc.errno == errno.EADDRINUSE:
        why = f"{where} is in use ({PORT_SETTING}): stop what holds it or choose another port"
    elif exc.errno == errno.EACCES:
        why = f"{where} needs privileges ({PORT_SETTING}): choose a port above 1023"
    else:
        why = f"cannot listen on {where}: {exc.strerror or exc} ({HOST_SETTING}, {PORT_SETTING})"
    return CannotListen(why)


def bind_http(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) as uvicorn would bind it (SO_REUSEADDR), for
    `uvicorn.Server.serve(sockets=[...])`; CannotListen saying why if it cannot be."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise CannotListen(f"cannot listen on {host!r}: {exc.strerror} ({HOST_SETTING})") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise _cannot_listen(host, port, exc) from None
    return sock


def check_temporal_ports(settings: Settings) -> None:
    """Before the HTTP port, as the dev server would (PortInUse, same words): the Temporal
    ports `relay up` starts its dev server on are free. Skipped when a dev server an earlier
    start left may hold them (its `temporal.pid`): the dev server's start kills it first."""
    if settings.temporal_address or (settings.data_dir / "temporal.pid").exists():
        return
    for port, setting in (
        (settings.temporal_port, "RELAY_TEMPORAL_PORT"),
        (settings.temporal_ui_port, "RELAY_TEMPORAL_UI_PORT"),
    ):
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                raise PortInUse(f"port {port} is already in use; set {setting} to another port")


def _holder(text: str) -> tuple[str, str]:
    """(pid, command) from the lock file's "PID COMMAND" (older starts wrote the PID only)."""
    pid, _, command = text.strip().partition(" ")
    return pid or "unknown", command or "relay up"


def _in_use(data_dir: Path, command: str, pid: str, holder: str) -> DataDirInUse:
    where = data_dir.resolve()
    if command == "relay migrate":
        return DataDirInUse(
            f"the data dir {where} is in use by a running {holder} (pid {pid}); `relay up` "
            f"applies the migrations itself: stop it before `relay migrate` ({DATA_DIR_SETTING})"
        )
    return DataDirInUse(
        f"another {holder} (pid {pid}) is using {where}; stop it or choose another data dir "
        f"({DATA_DIR_SETTING})"
    )


@contextmanager
def data_dir_lock(data_dir: Path, command: str = "relay up") -> Iterator[None]:
    """One owner per data dir: the in-process engine and the dev server's SQLite allow one.
    `command` is what the lock file names to whoever is refused."""
    private_dir(data_dir)
    with (data_dir / LOCK_FILE).open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise _in_use(data_dir, command, *_holder(handle.read())) from None
        handle.truncate(0)
        handle.write(f"{os.getpid()} {command}")
        handle.flush()
        yield
