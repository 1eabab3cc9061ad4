"""A full disk under the inbox (product.md section 9): postbacks answer 503 with Retry-After
(never a 200 that is later lost), /readyz names the stuck inbox, and once space is freed
everything answered 200 is delivered without a restart and /readyz is 200 again.

The inbox lives on a small tmpfs mounted for this test (needs root, or CAP_SYS_ADMIN), filled
by a filler file; the rest is the real API, worker, Temporal and ClickHouse."""

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from relay.core.settings import Settings
from relay.store.pool import ClickHouse
from tests.harness import LOOPBACK_SOURCES, Relay, relay_with
from tests.platform_server import PlatformServer
from tests.support import until

DISK = "1m"
ROOM = 96 * 1024  # left after filling: a few postbacks fit, then their removal does not
MOST_POSTBACKS = 60  # before the disk is full, whatever the page size


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small disk for the inbox")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={DISK}", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    if made.returncode != 0:
        pytest.skip(f"mounting a {DISK} tmpfs is not permitted here: {made.stderr.strip()}")
    try:
        yield mount_point
    finally:
        done = subprocess.run(["umount", str(mount_point)], capture_output=True, timeout=30)
        if done.returncode != 0:
            subprocess.run(["umount", "-l", str(mount_point)], check=True, timeout=30)


def fill(disk: Path, room: int) -> Path:
    """Write a filler file until the disk refuses another byte, then give `room` back."""
    filler = disk / "filler"
    with filler.open("wb", buffering=0) as out:
        try:
            while True:
                out.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
    with filler.open("ab", buffering=0) as out:  # and the last partial block
        try:
            while True:
                out.write(b"\0")
        except OSError:
            pass
    os.truncate(filler, filler.stat().st_size - room)
    return filler


async def inbox_empty(relay: Relay) -> bool:
    intake = relay.runtime.intake
    assert intake is not None
    return not await intake.inbox.take(0, 1)


async def readyz(relay: Relay) -> tuple[int, dict[str, Any]]:
    response = await relay.http.get("/readyz", headers=relay.admin)
    body: dict[str, Any] = response.json()
    return response.status_code, body


async def test_a_full_disk_answers_503_then_delivers_everything_accepted_without_a_restart(
    dev_env: WorkflowEnvironment,
    clickhouse: ClickHouse,
    platforms: PlatformServer,
    keys: KeyRing,
    small_disk: Path,
) -> None:
    settings = Settings(
        meta_base_url=platforms.base_url,
        tiktok_base_url=platforms.base_url,
        task_queue=f"relay-test-{uuid.uuid4().hex[:8]}",
        inbox_path=small_disk / "inbox.sqlite",
        outbound_allowed_networks=[LOOPBACK_SOURCES],
        workflow_sandbox=True,
    )
    async with relay_with(dev_env, clickhouse, platforms, keys, settings) as relay:
        key = (await relay.network())["postback_key"]
        campaign = await relay.campaign()
        pixel = await relay.pixel(campaign["id"], "meta")

        # Clicked beforehand: the postbacks then follow each other faster than a start and
        # a removal, and the last ones accepted are still in the inbox when the disk is full.
        clicks = [await relay.click(campaign["id"]) for _ in range(3 + MOST_POSTBACKS + 1)]

        async def postback() -> Any:
            click_id = clicks.pop()
            return click_id, await relay.postback(key=key, click_id=click_id, payout="4")

        accepted: list[str] = []
        for _ in range(3):
            _, answer = await postback()
            assert answer.status_code == 200, answer.text
            accepted.append(answer.json()["conversion_id"])
        await until(lambda: inbox_empty(relay), 30, "the first postbacks forwarded")

        # The disk fills up: postbacks are answered 200 while SQLite still finds room, then
        # 503 with Retry-After; none answered 200 is lost.
        filler = fill(small_disk, ROOM)
        refused: list[tuple[str, Any]] = []
        for _ in range(MOST_POSTBACKS):
            click_id, answer = await postback()
            if answer.status_code == 200:
                accepted.append(answer.json()["conversion_id"])
                continue
            refused.append((click_id, answer))
            break
        assert refused, f"{MOST_POSTBACKS} postbacks accepted on a full {DISK} disk"
        _, answer = refused[0]
        assert answer.status_code == 503, answer.text
        assert answer.headers["Retry-After"] == str(settings.inbox_retry_after_s)
        error = answer.json()["error"]
        assert error["code"] == "unavailable"
        assert "database or disk is full" in error["message"], error

        status, body = await readyz(relay)
        assert status == 503 and body["ready"] is False
        assert "database or disk is full" in body["stuck"]["inbox"], body

        # Accepted on the last room and not yet removed: started all the same, and either
        # removed (a removal is smaller than an accept and may still fit) or the forwarder
        # says why not. Never silent.
        async def removed_or_reported() -> bool:
            _, body = await readyz(relay)
            return await inbox_empty(relay) or "cannot remove" in body["stuck"].get("forwarder", "")

        await until(removed_or_reported, 10, "the accepted entries removed, or the reason")
        # Retried while the disk is full: still refused, nothing written.
        click_id, _ = refused[0]
        again = await relay.postback(key=key, click_id=click_id, payout="4")
        assert again.status_code == 503

        # Space comes back: the inbox, then the forwarder, recover by themselves.
        filler.unlink()

        async def ready() -> bool:
            return (await readyz(relay))[0] == 200

        await until(ready, 60, "/readyz 200 after the disk has room again")
        again = await relay.postback(key=key, click_id=click_id, payout="4")
        assert (again.status_code, again.json()["status"]) == (200, "accepted")
        accepted.append(again.json()["conversion_id"])
        _, late = await postback()
        assert late.status_code == 200, late.text
        accepted.append(late.json()["conversion_id"])

        for conversion_id in accepted:
            result = await relay.result(conversion_id, timeout_s=60)
            assert [f.delivered for f in result.fires] == [True], conversion_id
        await until(lambda: inbox_empty(relay), 30, "the inbox empty")
        sent = relay.platforms.requests_for("meta", pixel["platform_pixel_id"])
        assert {r.body["data"][0]["event_id"] for r in sent} == set(accepted)
        status, body = await readyz(relay)
        assert (status, body["stuck"]) == (200, {})
