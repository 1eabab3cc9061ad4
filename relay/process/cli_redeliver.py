"""`relay redeliver --failed --since 24h [--campaign ...]`: start a bulk redelivery through
the API and follow its progress (the workflow's `progress` query) with a progress bar;
`relay redeliver CONV_ID...`: redeliver those conversions and follow each to its end.
`--dry-run` says what would be redelivered and starts nothing. Ctrl-C stops following only:
the redelivery goes on, and the command says how to follow it.
"""

import argparse
import json
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO
from urllib.parse import quote

import httpx

from relay.core.settings import Settings

_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
POLL_S = 0.5
BAR = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "conversions",
        nargs="*",
        metavar="CONV_ID",
        help="conversions to redeliver (their failed sends), instead of a filter",
    )
    parser.add_argument(
        "--failed",
        action="store_true",
        help="redeliver conversions whose delivery failed or partly failed (their failed "
        "fires and outbound postbacks only)",
    )
    parser.add_argument("--state", choices=["failed", "partial"], help="only this state")
    parser.add_argument("--since", help="received since: 24h, 30m, 7d, or an ISO 8601 time")
    parser.add_argument("--until", help="received before: as --since")
    parser.add_argument(
        "--all",
        action="store_true",
        help="with --failed (or --state) and no --since: every one ever received",
    )
    parser.add_argument("--campaign", help="campaign ID")
    parser.add_argument("--network", help="network ID")
    parser.add_argument("--pixel", help="pixel ID: only its fires")
    parser.add_argument("--platform", choices=["meta", "tiktok"], help="only its fires")
    parser.add_argument("--follow", metavar="ID", help="follow a redelivery already started")
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would be redelivered; start nothing"
    )
    parser.add_argument(
        "--api",
        help="the API's base URL (default: RELAY_PUBLIC_URL, else "
        "http://RELAY_HTTP_HOST:RELAY_HTTP_PORT)",
    )


def when(value: str, now: datetime) -> str:
    """An ISO 8601 time from `24h`-style ages (before `now`) or an ISO 8601 time."""
    ago = _AGO.match(value.strip())
    if ago:
        delta = timedelta(**{_UNITS[ago.group(2)]: int(ago.group(1))})
        return (now - delta).isoformat()
    try:
        return datetime.fromisoformat(value).isoformat()
    except ValueError:
        raise SystemExit(
            f"relay redeliver: {value!r} is neither an age (24h, 30m, 7d) nor an ISO 8601 time"
        ) from None


def filter_body(args: argparse.Namespace, now: datetime) -> dict[str, Any]:
    """The body of POST /api/redeliveries from the command's options."""
    body: dict[str, Any] = {
        "state": args.state,
        "campaign_id": args.campaign,
        "network_id": args.network,
        "pixel_id": args.pixel,
        "platform": args.platform,
        "since": when(args.since, now) if args.since else None,
        "until": when(args.until, now) if args.until else None,
    }
    return {k: v for k, v in body.items() if v is not None}


def _admin_token(settings: Settings) -> str:
    """RELAY_ADMIN_TOKEN, else the one `relay up` keeps in its data dir (read, never made)."""
    if settings.admin_token:
        return settings.admin_token.get_secret_value()
    stored = settings.data_dir / "secrets.json"
    if stored.exists():
        token: str = json.loads(stored.read_text("utf-8"))["admin_token"]
        return token
    raise SystemExit(
        "relay redeliver: set RELAY_ADMIN_TOKEN (or run it where `relay up` keeps its data)"
    )


def _refused(response: httpx.Response) -> SystemExit:
    try:
        error = response.json()["error"]
        why = f"{error['message']} ({error.get('param') or error['code']})"
    except (ValueError, KeyError, TypeError):
        why = response.text[:200]
    return SystemExit(f"relay redeliver: HTTP {response.status_code}: {why}")


def progress_line(progress: dict[str, Any]) -> str:
    total, done = progress["total"], progress["done"]
    filled = BAR if not total else min(BAR, BAR * done // total)
    return (
        f"[{'#' * filled}{'-' * (BAR - filled)}] {done}/{total}  "
        f"delivered {progress['delivered']}  failed {progress['failed']}  "
        f"not sendable {progress['not_sendable']}"
    )


def follow(http: httpx.Client, redelivery_id: str, out: TextIO) -> dict[str, Any]:
    """Print the progress as it changes (one line redrawn on a terminal) until it ends."""
    shown = ""
    while True:
        answer = http.get(f"/api/redeliveries/{redelivery_id}")
        if answer.status_code != 200:
            raise _refused(answer)
        status: dict[str, Any] = answer.json()
        progress = status["progress"] or {}
        line = progress_line(progress) if progress else status["status"]
        if line != shown:
            out.write(("\r" if out.isatty() else "") + line + ("" if out.isatty() else "\n"))
            out.flush()
            shown = line
        if progress.get("finished") or status["status"] not in ("RUNNING", "CONTINUED_AS_NEW"):
            if out.isatty():
                out.write("\n")
            return status
        time.sleep(POLL_S)


def _conversion_line(status: dict[str, Any]) -> tuple[str, bool]:
    """One conversion's redelivery as it ended, and whether it failed."""
    result = status.get("result")
    if status["status"] != "COMPLETED" or not result:
        return f"the redelivery {status['id']} ended {status['status']}", True
    line = f"{result['conversion_id']}: {result['outcome']} (now {result['state']})"
    return line, result["outcome"] == "failed"


def _summary(status: dict[str, Any], out: TextIO) -> int:
    if status.get("kind") == "conversion":
        line, failed = _conversion_line(status)
        out.write(line + "\n")
        return 1 if failed else 0
    progress = status["progress"] or {}
    if not progress.get("finished"):
        out.write(f"the redelivery ended {status['status']}\n")
        return 1
    for key, title in (("failed_ids", "failed again"), ("not_sendable_ids", "not sendable")):
        if progress.get(key):
            out.write(f"{title}: {' '.join(progress[key])}\n")
    return 1 if progress["failed"] else 0


_FILTERS = ("failed", "state", "since", "until", "all", "campaign", "network", "pixel", "platform")


def check_request(args: argparse.Namespace) -> None:
    """Refuse (SystemExit) a request that is unclear or takes more than was likely meant:
    conversion IDs with a filter, or failed conversions of all time without --all."""
    given = [f"--{name}" for name in _FILTERS if getattr(args, name)]
    if args.follow:
        if args.conversions or given or args.dry_run:
            raise SystemExit("relay redeliver: --follow ID takes no conversion IDs or filters")
        return
    if args.conversions:
        if given:
            raise SystemExit(
                f"relay redeliver: give conversion IDs or a filter ({' '.join(given)}), not both"
            )
        return
    if not (args.failed or args.state):
        raise SystemExit(
            "relay redeliver: say which conversions: CONV_ID..., or --failed (or --state) "
            "with --since or --all"
        )
    if args.since and args.all:
        raise SystemExit("relay redeliver: give --since or --all, not both")
    if not args.since and not args.all:
        raise SystemExit(
            "relay redeliver: without --since this takes every failed conversion ever "
            "received: add --since (24h, 7d, an ISO 8601 time), or --all to mean it"
        )


def _require(http: httpx.Client, path: str, what: str) -> dict[str, Any]:
    """GET `path`; a 404 is an error naming `what` (e.g. "campaign 'cmp_x'")."""
    answer = http.get(path)
    if answer.status_code == 404:
        raise SystemExit(f"relay redeliver: no {what}")
    if answer.status_code != 200:
        raise _refused(answer)
    found: dict[str, Any] = answer.json()
    return found


def _check_filter_ids(http: httpx.Client, args: argparse.Namespace) -> None:
    """Unknown campaign, network or pixel IDs are errors, not "0 conversions". A pixel is
    checked under its campaign (pixels are read through their campaign)."""
    if args.campaign:
        _require(http, f"/api/campaigns/{_q(args.campaign)}", f"campaign {args.campaign!r}")
        if args.pixel:
            path = f"/api/campaigns/{_q(args.campaign)}/pixels/{_q(args.pixel)}"
            _require(http, path, f"pixel {args.pixel!r} in campaign {args.campaign!r}")
    if args.network:
        _require(http, f"/api/networks/{_q(args.network)}", f"network {args.network!r}")


def _q(value: str) -> str:
    return quote(value, safe="")


def _sends(plan: dict[str, Any]) -> str:
    sends = [a for a in plan["sends"] if a["action"] == "redeliver"]
    return ", ".join(f"{a['kind']} {a['target_id']}" for a in sends) or "nothing"


def _conversions(http: httpx.Client, ids: list[str], dry_run: bool, out: TextIO) -> int:
    """Redeliver (or, dry, plan) each conversion and follow each redelivery to its end."""
    for conversion_id in ids:  # every one known before anything starts
        _require(http, f"/api/conversions/{_q(conversion_id)}", f"conversion {conversion_id!r}")
    code, started = 0, []
    for conversion_id in ids:
        path = f"/api/conversions/{_q(conversion_id)}/redeliver"
        answer = http.post(path, params={"dry_run": "true"} if dry_run else None)
        if answer.status_code == 409:  # still being delivered, say
            out.write(f"{conversion_id}: not redelivered: {answer.json()['error']['message']}\n")
            code = 1
            continue
        if answer.status_code not in (200, 202):
            raise _refused(answer)
        plan = answer.json()
        too_old = " ".join(a["target_id"] for a in plan["not_sendable"])
        note = f"; too old to send: {too_old}" if too_old else ""
        if dry_run:
            out.write(f"{conversion_id}: would redeliver {_sends(plan)}{note}\n")
        elif plan["workflow_id"] is None:
            out.write(f"{conversion_id}: nothing to redeliver{note}\n")
        else:
            out.write(f"{conversion_id}: redelivering {_sends(plan)} ({plan['workflow_id']})\n")
            started.append(plan["workflow_id"])
    for index, workflow_id in enumerate(started):
        try:
            status = _wait(http, workflow_id)
        except KeyboardInterrupt:
            left = " ".join(started[index:])
            out.write(f"\nstopped following; these go on: {left}\n")
            out.write("".join(f"  relay redeliver --follow {w}\n" for w in started[index:]))
            return 130
        line, failed = _conversion_line(status)
        out.write(line + "\n")
        code = code or (1 if failed else 0)
    if dry_run:
        out.write("dry run: nothing started\n")
    return code


def _wait(http: httpx.Client, redelivery_id: str) -> dict[str, Any]:
    while True:
        answer = http.get(f"/api/redeliveries/{redelivery_id}")
        if answer.status_code != 200:
            raise _refused(answer)
        status: dict[str, Any] = answer.json()
        if status["status"] not in ("RUNNING", "CONTINUED_AS_NEW"):
            return status
        time.sleep(POLL_S)


def _bulk(http: httpx.Client, args: argparse.Namespace, out: TextIO) -> str | None:
    """Start the bulk redelivery (its ID), or with --dry-run say how many it would take."""
    _check_filter_ids(http, args)
    body = filter_body(args, datetime.now(UTC))
    if args.dry_run:
        answer = http.post("/api/redeliveries/count", json=body)
        if answer.status_code != 200:
            raise _refused(answer)
        out.write(f"would redeliver {answer.json()['matching']} conversions; nothing started\n")
        return None
    answer = http.post("/api/redeliveries", json=body)
    if answer.status_code != 202:
        raise _refused(answer)
    redelivery_id: str = answer.json()["id"]
    out.write(f"redelivery {redelivery_id}: {answer.json()['matching']} conversions\n")
    return redelivery_id


def run_redeliver(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    """Start (or, with --follow, find) the redelivery and follow it; the exit code."""
    check_request(args)
    base = args.api or settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
    headers = {"Authorization": f"Bearer {_admin_token(settings)}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        redelivery_id = args.follow
        try:
            if args.conversions:
                return _conversions(http, args.conversions, args.dry_run, out)
            if not redelivery_id:
                redelivery_id = _bulk(http, args, out)
                if redelivery_id is None:
                    return 0
            return _summary(follow(http, redelivery_id, out), out)
        except KeyboardInterrupt:
            if not redelivery_id:
                out.write(
                    "\ninterrupted before the API answered: a redelivery may have started; "
                    'the Temporal UI lists it: WorkflowType = "BulkRedeliveryWorkflow"\n'
                )
                return 130
            out.write(
                f"\nstopped following; the redelivery {redelivery_id} goes on. Follow it with:\n"
                f"  relay redeliver --follow {redelivery_id}\n"
                f"  curl -H 'Authorization: Bearer $RELAY_ADMIN_TOKEN' "
                f"{base}/api/redeliveries/{redelivery_id}\n"
            )
            return 130
        except httpx.HTTPError as exc:
            raise SystemExit(f"relay redeliver: cannot reach the API at {base}: {exc}") from None
