"""(b): `wrk -t2 -c50 -d10s` with a Lua script that sends distinct postbacks.

Every request has its own txid (thread number + counter + a run prefix) on a click taken
round-robin from a pool of real click IDs created beforehand. The script's `response()`
tallies status codes and 200 answers whose body says accepted/existing; `done()` prints one
JSON line with wrk's own latency percentiles (microseconds) and error counters.
"""

import asyncio
import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from bench.relay_instance import Campaign

_SCRIPT = r"""
local key = "%(key)s"
local prefix = "%(prefix)s"
local clicks = {%(clicks)s}
local threads = {}
counter = 0
tid = 0
statuses = {}
accepted = 0

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function request()
  counter = counter + 1
  local click = clicks[(counter * 2 + tid) %% #clicks + 1]
  local txid = prefix .. "-" .. tid .. "-" .. counter
  return wrk.format("GET", "/postback?key=" .. key .. "&click_id=" .. click ..
    "&payout=12.50&currency=USD&txid=" .. txid)
end

function response(status, headers, body)
  local code = tostring(status)
  statuses[code] = (statuses[code] or 0) + 1
  if status == 200 and (string.find(body, '"accepted"', 1, true) or
                        string.find(body, '"existing"', 1, true)) then
    accepted = accepted + 1
  end
end

function done(summary, latency, requests)
  local merged, total_accepted = {}, 0
  for _, thread in ipairs(threads) do
    total_accepted = total_accepted + thread:get("accepted")
    for code, n in pairs(thread:get("statuses")) do
      merged[code] = (merged[code] or 0) + n
    end
  end
  local parts = {}
  for code, n in pairs(merged) do
    table.insert(parts, string.format('"%%s": %%d', code, n))
  end
  local e = summary.errors
  io.write(string.format(
    '\nBENCH {"requests": %%d, "duration_us": %%d, "p50_us": %%d, "p99_us": %%d, ' ..
    '"max_us": %%d, "accepted": %%d, "connect": %%d, "read": %%d, "write": %%d, ' ..
    '"timeout": %%d, "statuses": {%%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, total_accepted, e.connect, e.read, e.write, e.timeout,
    table.concat(parts, ", ")))
end
"""


@dataclass
class WrkResult:
    requests: int
    seconds: float
    accepted: int  # 200 answers saying accepted or existing
    p50_ms: float
    p99_ms: float
    max_ms: float
    statuses: dict[str, int] = field(default_factory=dict)
    socket_errors: int = 0  # connect, read, write errors and timeouts (no answer)

    @property
    def accepted_per_s(self) -> float:
        return self.accepted / self.seconds

    @property
    def non_2xx(self) -> int:
        return sum(n for code, n in self.statuses.items() if not code.startswith("2"))


def wrk_path() -> str | None:
    return shutil.which("wrk")


def write_script(path: Path, campaign: Campaign, clicks: list[str]) -> Path:
    quoted = ", ".join(f'"{c}"' for c in clicks)  # token_urlsafe IDs: nothing to escape
    key = quote(campaign.key, safe="")
    path.write_text(_SCRIPT % {"key": key, "prefix": uuid.uuid4().hex[:8], "clicks": quoted})
    return path


async def run_wrk(url: str, script: Path, duration_s: int, log: Path) -> WrkResult:
    """`wrk -t2 -c50 -dNs --timeout 10s -s script url`; raises if wrk reports nothing."""
    wrk = wrk_path()
    if wrk is None:
        raise FileNotFoundError("wrk is missing: apt-get install -y wrk")
    argv = [wrk, "-t2", "-c50", f"-d{duration_s}s", "--timeout", "10s", "-s", str(script), url]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), duration_s + 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    text = out.decode(errors="replace")
    await asyncio.to_thread(log.write_text, " ".join(argv) + "\n" + text)
    line = next((ln for ln in text.splitlines() if ln.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk printed no result; see {log}")
    data = json.loads(line.removeprefix("BENCH "))
    return WrkResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        accepted=data["accepted"],
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        statuses=dict(data["statuses"]),
        socket_errors=sum(data[k] for k in ("connect", "read", "write", "timeout")),
    )
