"""The durable inbox under `relay up`: postbacks are answered while Temporal is paused, a
full inbox answers 503, and a crash between accept and forward loses nothing."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from relay.forwarder import Pressure
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
            ready = http.get("/readyz")
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
