"""The embedded stack killed mid-delivery and started again: deliveries complete, once."""

import subprocess
import sys
from pathlib import Path

import httpx

from tests.embedded import ADMIN, EmbeddedRelay, funnel, wait_for
from tests.platform_server import PlatformServer, Scripted

COUNT_ROWS = """
import sys
from relay.store.database import open_clickhouse
client = open_clickhouse("chdb://" + sys.argv[1], "relay")
print(client.query("SELECT count() FROM conversions WHERE conversion_id = {c:String}",
                   parameters={"c": sys.argv[2]}).result_rows[0][0])
"""


def test_killed_mid_delivery_then_restarted_delivers_once(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    relay = EmbeddedRelay(tmp_path, platforms.base_url)
    relay.start()
    try:
        url = relay.url
        network, campaign, pixels = funnel(url, "restart", platforms)
        for pixel in pixels:
            # The first request hangs, so the crash lands while both sends are in flight.
            platforms.script(pixel["platform"], pixel["platform_pixel_id"], Scripted(delay_s=30))
        click = httpx.get(f"{url}/c/{campaign['id']}", headers={"User-Agent": "UA/1"})
        click_id = click.headers["location"].rsplit("=", 1)[1]
        answer = httpx.get(
            f"{url}/postback",
            params={"key": network["postback_key"], "click_id": click_id, "payout": "9"},
        ).json()
        conv_id = answer["conversion_id"]

        def in_flight() -> bool:
            return all(
                platforms.requests_for(p["platform"], p["platform_pixel_id"]) for p in pixels
            )

        wait_for(in_flight, 30, "both sends to reach the platforms")
        relay.kill()
        relay.start()

        def delivered() -> bool:
            found = httpx.get(f"{url}/api/conversions/{conv_id}", headers=ADMIN, timeout=5)
            return bool(sum(f["success"] for f in found.json()["fires"]) == 2)

        wait_for(delivered, 90, "the restarted stack to finish the deliveries")
        fires = httpx.get(f"{url}/api/conversions/{conv_id}", headers=ADMIN).json()["fires"]
        # The killed try never logged; the try after restart did, once per platform.
        assert sorted(f["platform"] for f in fires if f["success"]) == ["meta", "tiktok"]
        assert relay.interrupt() == 0
        # The access log names the postback's parameters but never their values.
        log = (tmp_path / "relay-up.log").read_text()
        assert "GET /postback?key=" in log and network["postback_key"] not in log
    finally:
        if relay.process and relay.process.poll() is None:
            relay.kill()
    rows = subprocess.run(
        [sys.executable, "-c", COUNT_ROWS, str(tmp_path / "clickhouse"), conv_id],
        capture_output=True,
        text=True,
        check=True,
    )
    assert rows.stdout.strip() == "1"


def test_a_second_relay_up_on_the_same_data_dir_is_refused(
    tmp_path: Path, platforms: PlatformServer
) -> None:
    first = EmbeddedRelay(tmp_path, platforms.base_url)
    first.start()
    try:
        second = subprocess.run(
            [sys.executable, "-m", "relay", "up"],
            env={**first.env, "RELAY_HTTP_PORT": "0"},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode != 0
        assert "another relay up" in second.stderr and str(tmp_path) in second.stderr
        taken = subprocess.run(
            [sys.executable, "-m", "relay", "up"],
            env={**first.env, "RELAY_DATA_DIR": str(tmp_path / "other")},
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert taken.returncode != 0
        assert f"port {first.temporal_port} is already in use" in taken.stderr
        assert httpx.get(f"{first.url}/readyz").status_code == 200
    finally:
        assert first.interrupt() == 0
