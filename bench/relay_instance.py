"""One `relay up` as shipped, as a child process on its own ports and data dir, with the
admin and reading calls the bench needs. Delivery is judged only through the reading API."""

import asyncio
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench.procs import Children, children_of, command_line, peak_rss_mb, venv_binary
from tests.embedded import free_port

CONFIG_SETTLE_S = 3.0  # after a new campaign is visible, so are its pixels (cache bound)
STALL_S = 180  # delivery counts that do not move for this long: give up the phase
ADMIN_TOKEN = "bench-admin-token-" + uuid.uuid4().hex


# The pixels every bench campaign uses, and the tokens the platform stand-in is started to
# accept for them (it refuses any other token, as Meta and TikTok do).
BENCH_PIXELS = {
    "meta": ("benchmeta", "SECRET-meta-bench"),
    "tiktok": ("benchtiktok", "SECRET-tt-bench"),
}


@dataclass
class Campaign:
    id: str
    key: str  # the network's postback key

    def postback(self, click_id: str, txid: str) -> str:
        """The request target of one postback (GET /postback, query string)."""
        return (
            f"/postback?key={quote(self.key)}&click_id={quote(click_id)}"
            f"&payout=12.50&currency=USD&txid={quote(txid)}"
        )


class RelayUp:
    def __init__(self, children: Children, data_dir: Path, platforms_url: str) -> None:
        self.platforms_url = platforms_url
        self.children = children
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RELAY_")}
        self.env = {
            **env,
            "RELAY_DATA_DIR": str(data_dir),
            "RELAY_HTTP_PORT": str(self.port),
            "RELAY_TEMPORAL_PORT": str(free_port()),
            "RELAY_TEMPORAL_UI_PORT": str(free_port()),
            "RELAY_META_BASE_URL": platforms_url,
            "RELAY_TIKTOK_BASE_URL": platforms_url,
            "RELAY_ADMIN_TOKEN": ADMIN_TOKEN,
            # Experiments: BENCH_RELAY_X=v reaches relay up as RELAY_X=v.
            **{k.removeprefix("BENCH_"): v for k, v in env.items() if k.startswith("BENCH_RELAY_")},
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.temporal_pid: int | None = None
        self.http = httpx.AsyncClient(
            base_url=self.url, headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}, timeout=60
        )

    async def start(self, timeout_s: float = 120) -> None:
        """`relay up` (the console script users run), ready once /readyz answers 200."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = self.children.spawn(
            [str(venv_binary("relay")), "up"],
            self.data_dir / "relay-up.log",
            env=self.env,
            stop_signal=signal.SIGINT,
            grace_s=20,
        )
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"relay up exited; see {self.data_dir / 'relay-up.log'}")
            try:
                if (await self.http.get("/readyz", timeout=2)).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"relay up not ready; see {self.data_dir / 'relay-up.log'}")
            await asyncio.sleep(0.3)
        self.find_temporal()

    def find_temporal(self) -> int:
        """The PID of relay up's `temporal server start-dev` child, looked up again each
        time (relay may restart it)."""
        assert self.proc is not None
        temporal = [p for p in children_of(self.proc.pid) if _is_temporal(p)]
        if len(temporal) != 1:
            raise RuntimeError(f"expected one temporal child of relay up, found {temporal}")
        if temporal[0] != self.temporal_pid:
            self.temporal_pid = temporal[0]
            self.children.adopt(self.proc, self.temporal_pid)
        return self.temporal_pid

    def temporal_command(self) -> str:
        return " ".join(command_line(self.temporal_pid or 0)[1:])

    def peak_rss_mb(self) -> tuple[float | None, float | None]:
        """VmHWM of relay up and of its dev server child, read while both are alive."""
        relay = peak_rss_mb(self.proc.pid) if self.proc else None
        return relay, peak_rss_mb(self.temporal_pid) if self.temporal_pid else None

    async def stop(self) -> None:
        await self.http.aclose()
        if self.proc is not None:
            self.children.stop(self.proc)

    async def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        response = await self.http.post(path, json=body)
        if response.status_code != 201:
            raise RuntimeError(f"POST {path}: {response.status_code} {response.text}")
        created: dict[str, Any] = response.json()
        return created

    async def campaign(self, pixels: bool = True) -> Campaign:
        """A new network and campaign (offer URL `...?cid={click_id}`), with one Meta and one
        TikTok pixel unless `pixels` is false."""
        network = await self._post("/api/networks", {"name": f"Bench {uuid.uuid4().hex[:6]}"})
        body = {"name": "Bench", "offer_url": "https://shop.example/lp?cid={click_id}"}
        campaign = await self._post("/api/campaigns", {**body, "currency": "USD"})
        for platform in ("meta", "tiktok") if pixels else ():
            await self._post(
                f"/api/campaigns/{campaign['id']}/pixels",
                {
                    "platform": platform,
                    "platform_pixel_id": BENCH_PIXELS[platform][0],
                    "access_token": BENCH_PIXELS[platform][1],
                    "name": f"{platform} main",
                },
            )
        await self._until_visible(campaign["id"])
        return Campaign(campaign["id"], network["postback_key"])

    async def _until_visible(self, campaign_id: str, timeout_s: float = 30) -> None:
        """Until the tracking link answers 302, then CONFIG_SETTLE_S more: Relay may read its
        configuration from a cache that is fresh only within a bound."""
        deadline = time.monotonic() + timeout_s
        while (await self.http.get(f"/c/{campaign_id}")).status_code != 302:
            if time.monotonic() > deadline:
                raise TimeoutError(f"campaign {campaign_id} not visible after {timeout_s:g} s")
            await asyncio.sleep(0.5)
        await asyncio.sleep(CONFIG_SETTLE_S)

    async def _pixel_log_total(self, campaign_id: str, success: bool, platform: str = "") -> int:
        params: dict[str, str | int] = {"campaign_id": campaign_id, "limit": 1}
        params["success"] = "true" if success else "false"
        if platform:
            params["platform"] = platform
        response = await self.http.get("/api/pixel-logs", params=params)
        response.raise_for_status()
        return int(response.json()["total"])

    async def delivered(self, campaign_id: str) -> tuple[int, int]:
        """Successful pixel-log rows of the campaign: (Meta, TikTok)."""
        meta = await self._pixel_log_total(campaign_id, True, "meta")
        return meta, await self._pixel_log_total(campaign_id, True, "tiktok")

    async def platform_events(self) -> list[tuple[int, float | None]]:
        """Per bench pixel (Meta, TikTok): the distinct events the platform stand-in accepted
        and the wall time the last arrived. Asked of the stand-in, not of the Relay measured."""
        found = []
        async with httpx.AsyncClient(base_url=self.platforms_url, timeout=5) as http:
            for platform, (pixel, _) in BENCH_PIXELS.items():
                query = {"platform": platform, "pixel": pixel}
                data = (await http.get("/_stand-in/accepted", params=query)).json()
                found.append((int(data["events"]), data["last_at"]))
        return found

    async def wait_platforms(
        self, before: list[tuple[int, float | None]], expected: int, give_up_at: float
    ) -> float | None:
        """Until each bench pixel has `expected` more events than `before`: the wall time
        the last of them reached the stand-in (None at `give_up_at` or after STALL_S still)."""
        last_change, last_counts = time.monotonic(), [-1]
        while True:
            now_seen = await self.platform_events()
            counts = [events - old for (events, _), (old, _) in zip(now_seen, before, strict=True)]
            if min(counts) >= expected:
                return max(float(at or 0.0) for _, at in now_seen)
            if counts != last_counts:
                last_change, last_counts = time.monotonic(), counts
            if time.monotonic() > give_up_at or time.monotonic() - last_change > STALL_S:
                return None
            await asyncio.sleep(0.1)

    async def wait_delivered(
        self,
        campaign_id: str,
        expected: int,
        give_up_at: float,
        poll_s: float,
        progress: Callable[[str], None],
        stall_s: float = STALL_S,
    ) -> tuple[float | None, int]:
        """Poll until both pixels have `expected` successes: (time.monotonic() when seen, or
        None at `give_up_at` or after `stall_s` without progress; conversions delivered to
        both pixels, as the smaller of the two counts)."""
        last_print = last_change = time.monotonic()
        last_seen = (-1, -1)
        while True:
            try:
                seen = await self.delivered(campaign_id)
            except httpx.HTTPError as exc:  # a slow read during an outage: poll again
                progress(f"  reading API: {type(exc).__name__}")
                seen = last_seen
            now = time.monotonic()
            if min(seen) >= expected:
                return now, min(seen)
            if seen != last_seen:
                last_seen, last_change = seen, now
            if now - last_print >= 5:
                try:
                    failed = str(await self._pixel_log_total(campaign_id, False))
                except httpx.HTTPError as exc:
                    failed = type(exc).__name__
                progress(
                    f"  delivered: Meta {seen[0]}/{expected}, TikTok {seen[1]}/{expected} "
                    f"(failed attempts so far: {failed})"
                )
                last_print = now
            if now > give_up_at or now - last_change > stall_s:
                why = "deadline" if now > give_up_at else f"no progress for {stall_s:g} s"
                progress(f"  gave up waiting for delivery: {why}")
                return None, max(0, min(seen))
            await asyncio.sleep(poll_s)


def _is_temporal(pid: int) -> bool:
    argv = command_line(pid)
    return bool(argv) and Path(argv[0]).name == "temporal" and "start-dev" in argv
