"""`relay up` keeps its data dir private to its user, prints the admin token only when it
generated it, and hashes postback keys stored in clear by an earlier version."""

import json
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from relay.core.settings import Settings
from relay.process.secrets import resolve_secrets
from tests.embedded import EmbeddedRelay
from tests.platform_server import PlatformServer

# A network as Relay wrote it before postback keys were hashed: the key in clear.
INSERT_CLEAR_KEY = """
import sys
from datetime import UTC, datetime
from relay.store.database import open_clickhouse
client = open_clickhouse("chdb://" + sys.argv[1], "relay")
now = datetime.now(UTC)
client.insert("networks", [[sys.argv[2], "Legacy", sys.argv[3], now, now, 0, 1]],
              column_names=["id", "name", "postback_key", "created_at", "updated_at",
                            "deleted", "version"])
"""


def _open_to_others(root: Path, skip: set[Path]) -> list[str]:
    """Files and directories under `root` that a group or other user may use at all."""
    found = []
    for path in [root, *root.rglob("*")]:
        if path in skip or path.is_symlink():  # a symlink's own mode means nothing
            continue
        mode = stat.S_IMODE(path.lstat().st_mode)
        if mode & 0o077:
            found.append(f"{oct(mode)} {path.relative_to(root)}")
    return found


def _banner_token_line(log: str) -> str:
    return next(line for line in log.splitlines() if line.strip().startswith("Admin token:"))


def test_data_dir_is_private_and_the_admin_token_printed_only_when_generated(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)  # as earlier versions left it
    relay = EmbeddedRelay(data, platforms.base_url)
    del relay.env["RELAY_ADMIN_TOKEN"]  # embedded mode generates it
    log_file = data / "relay-up.log"  # written by this test, not by relay
    relay.start()
    try:
        assert relay.interrupt() == 0
        first_log = log_file.read_text()
        token = json.loads((data / "secrets.json").read_text())["admin_token"]
        assert token in _banner_token_line(first_log)  # generated now: shown once
        assert f"{data} was mode 755, open to other users: now 700" in first_log
        assert stat.S_IMODE((data / "secrets.json").stat().st_mode) == 0o600
        for name in ("inbox.sqlite", "temporal.sqlite", "clickhouse"):
            assert (data / name).exists(), name
        assert _open_to_others(data, {log_file}) == []

        # As an earlier version left things: a loose data dir and secrets file, a clear key.
        data.chmod(0o755)
        (data / "secrets.json").chmod(0o644)
        network_id, clear_key = f"net_{uuid.uuid4().hex[:8]}", f"clear-{uuid.uuid4().hex}"
        subprocess.run(
            [
                sys.executable,
                "-c",
                INSERT_CLEAR_KEY,
                str(data / "clickhouse"),
                network_id,
                clear_key,
            ],
            check=True,
            timeout=60,
        )
        offset = len(first_log)
        relay.start()
        postback = httpx.get(f"{relay.url}/postback", params={"key": clear_key, "click_id": "c1"})
        assert postback.status_code == 200, postback.text
        shown = httpx.get(
            f"{relay.url}/api/networks/{network_id}",
            headers={"Authorization": f"Bearer {token}"},
        )
        assert shown.status_code == 200 and clear_key not in shown.text
        assert relay.interrupt() == 0
        second_log = log_file.read_text()[offset:]
        assert token not in second_log
        assert _banner_token_line(second_log).endswith(f"in {data / 'secrets.json'}")
        assert f"{data / 'secrets.json'} was mode 644, open to other users: now 600" in second_log
        assert stat.S_IMODE(data.stat().st_mode) == 0o700
        assert stat.S_IMODE((data / "secrets.json").stat().st_mode) == 0o600
        assert "hashed the keys of 1 networks" in second_log
    finally:
        if relay.process and relay.process.poll() is None:
            relay.kill()


@pytest.mark.parametrize("from_env", [True, False])
def test_the_admin_token_is_shown_only_by_the_start_that_generated_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, from_env: bool
) -> None:
    if from_env:
        monkeypatch.setenv("RELAY_ADMIN_TOKEN", "token-from-the-environment")
    else:
        monkeypatch.delenv("RELAY_ADMIN_TOKEN", raising=False)
    monkeypatch.delenv("RELAY_ENCRYPTION_KEY", raising=False)
    first = resolve_secrets(Settings(data_dir=tmp_path), embedded=True)
    again = resolve_secrets(Settings(data_dir=tmp_path), embedded=True)
    assert first.admin_token == again.admin_token
    assert again.admin_token not in again.admin_token_shown()
    if from_env:
        assert first.admin_token_shown() == again.admin_token_shown() == "from RELAY_ADMIN_TOKEN"
    else:
        assert first.admin_token in first.admin_token_shown()
        assert again.admin_token_shown() == f"in {tmp_path / 'secrets.json'}"
