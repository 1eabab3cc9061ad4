"""The embedded dev server killed under `relay up`: restarted, deliveries complete once."""

import asyncio
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from relay.process.devserver import DevServer, DevServerGaveUp, RestartPolicy, temporal_binary
from tests.embedded import (
    ADMIN,
    EmbeddedRelay,
    devserver_pid,
    free_port,
    funnel,
    port_open,
    wait_for,
)
from tests.platform_server import PlatformServer, Scripted

PLATFORMS = ("meta", "tiktok")


def _readyz(url: str) -> int:
    try:
        return httpx.get(f"{url}/readyz", timeout=5).status_code
    except httpx.HTTPError:
        return 0


def _postback(url: str, key: str, click_id: str, txid: str) -> str:
    """Post a sale back as a network would: resend on 503 until it is accepted."""
    params = {"key": key, "click_id": click_id, "payout": "5", "txid": txid}
    deadline = time.monotonic() + 30
    while True:
        answer = httpx.get(f"{url}/postback", params=params, timeout=10)
        if answer.status_code != 503:
            break
        assert time.monotonic() < deadline, "postbacks still refused after 30 s"
        time.sleep(0.1)
    assert answer.is_success, answer.text
    conversion_id: str = answer.json()["conversion_id"]
    return conversion_id


def _delivered(url: str, conversion_id: str) -> bool:
    # The workflow may start moments after /postback answers: 404 means not yet.
    found = httpx.get(f"{url}/api/conversions/{conversion_id}", headers=ADMIN, timeout=5)
    return found.status_code == 200 and all(
        any(f["success"] and f["platform"] == p for f in found.json()["fires"]) for p in PLATFORMS
    )


def _accepted_event_ids(platforms: PlatformServer, platform: str, pixel_id: str) -> Counter[str]:
    return Counter(
        event["event_id"]
        for request in platforms.requests_for(platform, pixel_id)
        if request.status == 200 and not request.problems
        for event in request.body["data"]
    )


def test_dev_server_killed_mid_delivery_is_restarted_and_delivers_once(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    relay = EmbeddedRelay(tmp_path, platforms.base_url)
    relay.start()
    try:
        url = relay.url
        network, campaign, created = funnel(url, "supervise", platforms)
        pixels = {p["platform"]: p["platform_pixel_id"] for p in created}
        for platform, pixel_id in pixels.items():
            # The first send answers late (within Relay's timeouts), so the kill lands
            # while both are in flight.
            platforms.script(platform, pixel_id, Scripted(delay_s=1))
        clicks = [
            httpx.get(f"{url}/c/{campaign['id']}", headers={"User-Agent": "UA/1"})
            .headers["location"]
            .rsplit("=", 1)[1]
            for _ in range(5)
        ]
        key = network["postback_key"]
        before = [_postback(url, key, click, f"T{n}") for n, click in enumerate(clicks[:3])]
        wait_for(
            lambda: all(platforms.requests_for(p, pixel) for p, pixel in pixels.items()),
            30,
            "both sends to reach the platforms",
        )

        first = devserver_pid(relay)
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: _readyz(url) == 503, 5, "/readyz to report Temporal down")
        # Sent while the server is down or coming back: the network resends on 503.
        after = [_postback(url, key, click, f"T{n}") for n, click in enumerate(clicks[3:], 3)]
        wait_for(lambda: _readyz(url) == 200, 30, "/readyz to recover")
        second = devserver_pid(relay)
        assert second != first and relay.process is not None and relay.process.poll() is None

        conversions = before + after
        wait_for(
            lambda: all(_delivered(url, c) for c in conversions), 60, "every conversion delivered"
        )
        for conversion_id in conversions:
            fires = httpx.get(
                f"{url}/api/conversions/{conversion_id}", headers=ADMIN, timeout=5
            ).json()["fires"]
            successes = Counter(f["platform"] for f in fires if f["success"])
            assert successes == {"meta": 1, "tiktok": 1}, fires
        for platform, pixel_id in pixels.items():
            accepted = _accepted_event_ids(platforms, platform, pixel_id)
            assert set(accepted) == set(conversions), accepted
        log = (tmp_path / "relay-up.log").read_text()
        assert "temporal dev server exited (signal SIGKILL)" in log
        assert str(tmp_path / "temporal.log") in log
        assert relay.interrupt() == 0  # drains, stops the dev server, no restart
        assert not _exists(second), "the dev server outlived relay up"
    finally:
        if relay.process and relay.process.poll() is None:
            relay.kill()


def _exists(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


async def _until(predicate: Callable[[], bool]) -> None:
    while not predicate():  # noqa: ASYNC110 - polls state the supervisor task changes
        await asyncio.sleep(0.05)


# `relay up` whose dev server starts once, then fails every restart; quick to give up.
GIVE_UP = """
import sys
import relay.process.devserver as devserver
from relay.process.cli import main
devserver.RESTART_POLICY = devserver.RestartPolicy(backoff_s=0.05, max_failed_restarts=2)
devserver.temporal_binary = lambda: sys.argv[1]
main(["up"])
"""
ONCE_BINARY = """#!/bin/sh
[ -e "$0.started" ] && { echo 'cannot start: simulated failure'; exit 3; }
touch "$0.started"
exec REAL "$@"
"""


def test_relay_up_exits_loudly_when_the_dev_server_cannot_be_restarted(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    once = tmp_path / "temporal-once"
    once.write_text(ONCE_BINARY.replace("REAL", shlex.quote(temporal_binary())))
    once.chmod(0o755)
    relay = EmbeddedRelay(tmp_path, platforms.base_url)
    with (tmp_path / "relay-up.log").open("ab") as log_file:
        process = relay.process = subprocess.Popen(
            [sys.executable, "-c", GIVE_UP, str(once)],
            env=relay.env,
            stdout=log_file,
            stderr=log_file,
        )
    try:
        wait_for(lambda: process.poll() is None and _readyz(relay.url) == 200, 90, "relay up")
        os.kill(devserver_pid(relay), signal.SIGKILL)
        assert process.wait(timeout=30) == 1
        log = (tmp_path / "relay-up.log").read_text()
        assert "relay up: the Temporal dev server is down and restarting it keeps failing" in log
        assert "2 failed restarts in a row" in log and "exit code 3" in log
        assert not port_open(relay.temporal_port) and not port_open(relay.http_port)
    finally:
        if relay.process and relay.process.poll() is None:
            relay.kill()


FAILING_BINARY = "#!/bin/sh\necho 'cannot start: simulated failure'\nexit 3\n"


async def test_supervisor_leaves_a_paused_server_alone_and_gives_up_on_repeated_failures(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = DevServer(tmp_path, free_port(), free_port())
    await server.start()
    policy = RestartPolicy(backoff_s=0.05, max_failed_restarts=3, poll_s=0.05)
    supervisor = asyncio.create_task(server.supervise(policy))
    try:
        first = server.pid
        assert first is not None
        os.kill(first, signal.SIGSTOP)  # paused on purpose (a benchmark does): not a crash
        await asyncio.sleep(0.5)
        os.kill(first, signal.SIGCONT)
        assert server.pid == first and server.restarts == 0 and not supervisor.done()

        os.kill(first, signal.SIGKILL)
        async with asyncio.timeout(30):
            await _until(lambda: any("restarted" in r.getMessage() for r in caplog.records))
            restarted = server.pid
            # Then every restart fails: the supervisor gives up loudly.
            failing = tmp_path / "failing-temporal"
            failing.write_text(FAILING_BINARY)
            failing.chmod(0o755)
            server.binary = str(failing)
            assert restarted is not None
            os.kill(restarted, signal.SIGKILL)
            with pytest.raises(DevServerGaveUp) as gave_up:
                await supervisor
        assert "3 failed restarts in a row" in str(gave_up.value)
        assert "exit code 3" in str(gave_up.value) and str(server.log_file) in str(gave_up.value)
        assert "simulated failure" in server.log_file.read_text()
        assert server.restarts == 4
        warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
        assert any("exited (signal SIGKILL)" in w and str(server.log_file) in w for w in warnings)
    finally:
        supervisor.cancel()
        server.stop()


async def test_an_intentional_stop_is_not_restarted(tmp_path: Path) -> None:
    server = DevServer(tmp_path, free_port(), free_port())
    await server.start()
    supervisor = asyncio.create_task(server.supervise(RestartPolicy(poll_s=0.05)))
    pid = server.pid
    server.stop()
    async with asyncio.timeout(5):
        await supervisor  # returns instead of restarting
    assert server.restarts == 0 and server.pid is None
    assert pid is not None and not _exists(pid)
