"""The durable inbox under `relay up`: postbacks are answered while Temporal is paused, a
full inbox answers 503, and a crash between accept and forward loses nothing. One process
owns an inbox file: a second is refused, and the lock goes with the process that held it."""

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from relay.ingest.forwarder import Pressure
from relay.ingest.inbox import Inbox, InboxInUse, ensure_free, lock_path
from tests.embedded import ADMIN, EmbeddedRelay, devserver_pid, funnel
from tests.platform_server import PlatformServer

CAPACITY = 8


def _click(http: httpx.Client, campaign_id: str) -> str:
    response = http.get(f"/c/{campaign_id}", headers={"User-Agent": "Mozilla/5.0 (X11)"})
    assert response.status_code == 302
    return response.headers["location"].rsplit("cid=", 1)[1]


def _delivered(http: httpx.Client, conversion_id: str) -> bool:
    response = http.get(f"/api/conversions/{conversion_id}", headers=ADMIN)
    if response.status_code != 200:
        return False
    fires = response.json()["fires"]
    return sum(bool(f["success"]) for f in fires) == 2


def _wait_delivered(http: httpx.Client, ids: list[str], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    waiting = list(ids)
    while waiting:
        assert time.monotonic() < deadline, f"not delivered: {waiting}"
        waiting = [c for c in waiting if not _delivered(http, c)]
        time.sleep(0.3)


def _postback(http: httpx.Client, key: str, click_id: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = http.get("/postback", params={"key": key, "click_id": click_id, "payout": "3"})
    return response, time.monotonic() - started


def test_inbox_absorbs_a_paused_temporal_a_full_inbox_and_a_crash(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    relay = EmbeddedRelay(tmp_path, platforms.base_url)
    relay.env["RELAY_INBOX_CAPACITY"] = str(CAPACITY)
    relay.start()
    http = httpx.Client(base_url=relay.url, timeout=10)
    try:
        network, campaign, pixels = funnel(relay.url, "inbox", platforms)
        key = network["postback_key"]
        clicks = [_click(http, campaign["id"]) for _ in range(3 + CAPACITY + 1)]

        # Temporal paused: postbacks are answered at once and delivered when it resumes.
        server = devserver_pid(relay)
        os.kill(server, signal.SIGSTOP)
        try:
            paused = [_postback(http, key, c) for c in clicks[:3]]
        finally:
            os.kill(server, signal.SIGCONT)
        assert all(r.status_code == 200 and s < 1.0 for r, s in paused), paused
        first = [r.json()["conversion_id"] for r, _ in paused]
        _wait_delivered(http, first)

        # Paused again until the inbox is full: 503 with Retry-After; resends still answer.
        server = devserver_pid(relay)
        os.kill(server, signal.SIGSTOP)
        try:
            filled = [_postback(http, key, c) for c in clicks[3 : 3 + CAPACITY]]
            assert all(r.status_code == 200 and s < 1.0 for r, s in filled), filled
            refused, _ = _postback(http, key, clicks[-1])
            assert refused.status_code == 503
            assert refused.headers["retry-after"] == "5"
            assert refused.json()["error"]["code"] == "unavailable"
            again, _ = _postback(http, key, clicks[3])
            assert again.status_code == 200 and again.json()["status"] == "existing"
            ready = http.get("/readyz", headers=ADMIN)
            assert ready.json()["inbox"]["depth"] == CAPACITY
            # A crash between accept and forward (the dev server goes down with it).
            assert relay.process is not None
            relay.process.kill()
            relay.process.wait()
        finally:
            os.kill(server, signal.SIGKILL)
        stats = subprocess.run(
            [sys.executable, "-m", "relay", "inbox"],
            env=relay.env,
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert stats.returncode == 0, stats.stderr
        assert f"{CAPACITY} postbacks waiting" in stats.stdout

        relay.start()
        accepted = [r.json()["conversion_id"] for r, _ in filled]
        _wait_delivered(http, accepted)
        late, _ = _postback(http, key, clicks[-1])
        assert late.status_code == 200 and late.json()["status"] == "accepted"
        _wait_delivered(http, [late.json()["conversion_id"]])
        # Once per pixel for every accepted postback: 3 + CAPACITY + 1 conversions.
        for pixel in pixels:
            sent = platforms.requests_for(pixel["platform"], pixel["platform_pixel_id"])
            event_ids = [r.body["data"][0]["event_id"] for r in sent]
            assert sorted(event_ids) == sorted({*first, *accepted, late.json()["conversion_id"]})
    finally:
        http.close()
        if relay.process is not None and relay.process.poll() is None:
            relay.interrupt()


def test_forwarding_yields_only_while_postbacks_keep_the_api_busy() -> None:
    pressure = Pressure(window_s=0.05)
    assert not pressure.high
    pressure.enter()
    time.sleep(0.06)
    assert pressure.high  # a postback in hand the whole window
    pressure.exit()
    time.sleep(0.06)
    _ = pressure.high  # closes the window that held the end of the busy spell
    time.sleep(0.06)
    assert not pressure.high  # idle: forwarding goes at full speed


async def test_a_second_inbox_on_the_same_file_is_refused_until_the_first_closes(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inbox.sqlite"
    first = Inbox(path, 10, 1.0)
    try:
        refused = f"another relay api (pid {os.getpid()}) is using the inbox {path}"
        with pytest.raises(InboxInUse, match=re.escape(refused)):
            Inbox(path, 10, 1.0)
        with pytest.raises(InboxInUse):
            ensure_free(path)  # what `relay api` checks before serving
    finally:
        await first.close()
    ensure_free(path)
    again = Inbox(path, 10, 1.0)  # released on close: the next start opens it
    await again.close()
    assert lock_path(path).exists()  # left in place: removing a lock file races


LOCK_HOLDER = """
import sys
from pathlib import Path
from relay.ingest.inbox import Inbox
inbox = Inbox(Path(sys.argv[1]), 10, 1.0)
print("open", flush=True)
sys.stdin.read()
"""


async def test_an_inbox_held_by_another_process_is_refused_until_that_process_dies(
    tmp_path: Path,
) -> None:
    path = tmp_path / "inbox.sqlite"
    holder = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LOCK_HOLDER,
        str(path),
        cwd=Path(__file__).parent.parent,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        line = await asyncio.wait_for(holder.stdout.readline(), 30)
        assert line.strip() == b"open"
        with pytest.raises(InboxInUse, match=f"pid {holder.pid}"):
            Inbox(path, 10, 1.0)
    finally:
        holder.kill()  # SIGKILL: no clean close, the kernel drops the lock
        await asyncio.wait_for(holder.wait(), 30)
    inbox = Inbox(path, 10, 1.0)
    await inbox.close()
