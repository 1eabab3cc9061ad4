"""`relay up` as a child process, for tests of the whole embedded stack."""

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.platform_server import PlatformServer

ADMIN_TOKEN = "embedded-admin-token"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def create(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST an admin resource to a running relay up; the created resource."""
    response = httpx.post(url + path, json=body, headers=ADMIN, timeout=10)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def funnel(
    url: str, tag: str, platforms: PlatformServer
) -> tuple[dict[str, Any], dict[str, Any], list[dict[str, Any]]]:
    """A network, a campaign and its Meta and TikTok pixels (pixel IDs `{tag}meta`, ...),
    their tokens bound to them in the platform stand-in."""
    network = create(url, "/api/networks", {"name": "n"})
    campaign = create(
        url, "/api/campaigns", {"name": "c", "offer_url": "https://shop.example/?cid={click_id}"}
    )
    pixels = []
    for platform in ("meta", "tiktok"):
        pixel_id, token = f"{tag}{platform}", f"token-{tag}-{platform}-123"
        platforms.expect_token(platform, pixel_id, token)
        body = {
            "platform": platform,
            "platform_pixel_id": pixel_id,
            "access_token": token,
            "name": platform,
        }
        pixels.append(create(url, f"/api/campaigns/{campaign['id']}/pixels", body))
    return network, campaign, pixels


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class EmbeddedRelay:
    """Starts, kills and restarts `relay up` on its own ports and data dir."""

    def __init__(self, data_dir: Path, platforms_url: str) -> None:
        self.data_dir = data_dir
        self.http_port, self.temporal_port, self.ui_port = free_port(), free_port(), free_port()
        self.env = {
            **os.environ,
            "RELAY_DATA_DIR": str(data_dir),
            "RELAY_HTTP_PORT": str(self.http_port),
            "RELAY_TEMPORAL_PORT": str(self.temporal_port),
            "RELAY_TEMPORAL_UI_PORT": str(self.ui_port),
            "RELAY_META_BASE_URL": platforms_url,
            "RELAY_TIKTOK_BASE_URL": platforms_url,
            "RELAY_ADMIN_TOKEN": ADMIN_TOKEN,
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.url = f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout_s: float = 90) -> None:
        log = (self.data_dir / "relay-up.log").open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "relay", "up"], env=self.env, stdout=log, stderr=log
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "relay up exited; see relay-up.log"
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise TimeoutError("relay up did not become ready")

    def kill(self) -> None:
        """SIGKILL, as a crash would; the dev server follows (parent-death signal)."""
        assert self.process is not None
        self.process.kill()
        self.process.wait()
        self._wait_port_closed()

    def interrupt(self, timeout_s: float = 30) -> int:
        """Ctrl-C: returns the exit code once everything, dev server included, stopped."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=timeout_s)
        self._wait_port_closed()
        return code

    def _wait_port_closed(self, timeout_s: float = 20) -> None:
        deadline = time.monotonic() + timeout_s
        while port_open(self.temporal_port):
            if time.monotonic() > deadline:
                raise TimeoutError("the Temporal dev server outlived relay")
            time.sleep(0.2)


def child_pids(parent: int, name: str) -> list[int]:
    """Live children of `parent` whose command name is `name` (from /proc/*/stat)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process exited meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after its last ')'.
        comm = text[text.index("(") + 1 : text.rindex(")")]
        state, ppid = text[text.rindex(")") + 2 :].split()[:2]
        if int(ppid) == parent and comm == name and state != "Z":  # not a dead, unreaped one
            found.append(int(text.split(maxsplit=1)[0]))
    return found


def devserver_pid(relay: EmbeddedRelay, timeout_s: float = 30) -> int:
    """The PID of the `temporal` dev server `relay up` runs, once there is exactly one."""
    assert relay.process is not None
    deadline = time.monotonic() + timeout_s
    while True:
        pids = child_pids(relay.process.pid, "temporal")
        if len(pids) == 1:
            return pids[0]
        assert time.monotonic() < deadline, f"dev server children of relay up: {pids}"
        time.sleep(0.1)
