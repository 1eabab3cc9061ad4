"""`relay worker` as a process: a fatal failure exits non-zero saying why, a healthy worker
keeps its health file fresh, SIGTERM stops it cleanly; and a send in flight at SIGTERM
finishes and logs its attempt before the process exits."""

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from tests.embedded import EmbeddedRelay, free_port, funnel, wait_for
from tests.platform_server import PlatformServer, Scripted

# `relay worker` as shipped, except that no ClickHouse server installs on the test machines:
# the worker's own in-process engine stands in for it (the role refuses chdb otherwise).
WORKER = """
import relay.process.cli as cli
cli._require_distributed = lambda settings, role: settings.temporal_address
cli.main(["worker"])
"""


def _worker_env(tmp_path: Path, address: str, **extra: str) -> dict[str, str]:
    """The worker's environment, its ClickHouse schema applied by `relay migrate` first (the
    worker only checks it)."""
    env = {
        **os.environ,
        "RELAY_TEMPORAL_ADDRESS": address,
        "RELAY_CLICKHOUSE_URL": f"chdb://{tmp_path / 'clickhouse'}",
        "RELAY_DATA_DIR": str(tmp_path),
        "RELAY_ENCRYPTION_KEY": KeyRing.generate_spec("k1"),
        "RELAY_ADMIN_TOKEN": "worker-test-admin-token-of-32-characters",
        "RELAY_TASK_QUEUE": f"worker-process-{uuid.uuid4().hex[:8]}",
        "RELAY_WORKER_HEARTBEAT_S": "0.2",
        **extra,
    }
    schema_only = {k: v for k, v in env.items() if k != "RELAY_TEMPORAL_ADDRESS"}
    command = [sys.executable, "-m", "relay", "migrate"]
    migrated = subprocess.run(command, env=schema_only, capture_output=True, text=True, timeout=120)
    assert migrated.returncode == 0, migrated.stderr
    return env


def _start(env: dict[str, str], log: Path) -> "subprocess.Popen[bytes]":
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-c", WORKER], env=env, stdout=out, stderr=out)


def _health(
    env: dict[str, str], module: str = "relay.process.health"
) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-m", module],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def _exit_1_output(env: dict[str, str], log: Path) -> str:
    """Start a worker that must fail: it exits with code 1 by itself; its output."""
    process = _start(env, log)
    try:
        assert process.wait(timeout=60) == 1
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    return log.read_text()


def _address(env: WorkflowEnvironment) -> str:
    target: str = env.client.service_client.config.target_host
    return target


def test_a_worker_failing_validation_exits_non_zero_saying_why(
    tmp_path: Path, dev_env: WorkflowEnvironment
) -> None:
    env = _worker_env(tmp_path, _address(dev_env), RELAY_TEMPORAL_NAMESPACE="no-such-namespace")
    text = _exit_1_output(env, tmp_path / "worker.log")
    assert "relay worker: the Temporal worker failed:" in text, text
    assert "no-such-namespace" in text
    assert not (tmp_path / "worker.alive").exists()


def test_an_unreachable_temporal_exits_non_zero_saying_where(tmp_path: Path) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    text = _exit_1_output(_worker_env(tmp_path, address), tmp_path / "worker.log")
    assert f"relay worker: cannot connect to Temporal at {address}" in text


def test_a_polling_worker_is_healthy_until_sigterm_stops_it(
    tmp_path: Path, dev_env: WorkflowEnvironment
) -> None:
    env = _worker_env(tmp_path, _address(dev_env))
    alive = tmp_path / "worker.alive"
    # Not started yet; the name used before relay/process/ still answers.
    before = _health(env, "relay.health")
    assert before.returncode == 1 and "unhealthy: no worker health file" in before.stderr
    process = _start(env, tmp_path / "worker.log")
    try:
        wait_for(alive.exists, 60, "the worker's health file")
        first = alive.stat().st_mtime
        wait_for(lambda: alive.stat().st_mtime > first, 5, "the health file to be touched again")
        checked = _health(env)
        assert checked.returncode == 0, checked.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert not alive.exists()
    after = _health(env)
    assert after.returncode == 1 and "no worker health file" in after.stderr


COUNT_FIRES = """
import sys
from relay.store.database import open_clickhouse
client = open_clickhouse("chdb://" + sys.argv[1], "relay")
print(client.query("SELECT count() FROM pixel_fires WHERE success").result_rows[0][0])
"""


def test_sigterm_lets_sends_in_flight_finish_and_log_their_attempt(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    relay = EmbeddedRelay(tmp_path, platforms.base_url)
    relay.env |= {"RELAY_META_TIMEOUT_S": "10", "RELAY_TIKTOK_TIMEOUT_S": "10"}
    relay.start()
    try:
        url = relay.url
        network, campaign, pixels = funnel(url, "drain", platforms)
        for pixel in pixels:
            # Slow but within the timeouts: the signal lands mid-send, and the stop outlasts
            # the API's own shutdown.
            platforms.script(pixel["platform"], pixel["platform_pixel_id"], Scripted(delay_s=4))
        click = httpx.get(f"{url}/c/{campaign['id']}", headers={"User-Agent": "UA/1"})
        click_id = click.headers["location"].rsplit("=", 1)[1]
        answer = httpx.get(
            f"{url}/postback",
            params={"key": network["postback_key"], "click_id": click_id, "payout": "9"},
        )
        assert answer.is_success, answer.text

        def in_flight() -> bool:
            return all(
                platforms.requests_for(p["platform"], p["platform_pixel_id"]) for p in pixels
            )

        wait_for(in_flight, 30, "both sends to reach the platforms")
        assert relay.process is not None
        relay.process.send_signal(signal.SIGTERM)
        assert relay.process.wait(timeout=30) == 0
        counted = subprocess.run(
            [sys.executable, "-c", COUNT_FIRES, str(tmp_path / "clickhouse")],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert counted.stdout.strip() == "2", counted.stderr  # Meta's and TikTok's attempts
    finally:
        if relay.process and relay.process.poll() is None:
            relay.kill()
