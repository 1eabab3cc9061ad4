"""`relay redeliver --failed --since 24h [--campaign ...]`: start a bulk redelivery through
the API and follow its progress (the workflow's `progress` query) with a progress bar.
Ctrl-C stops following only: the redelivery goes on, and the command says how to follow it.
"""

import argparse
import json
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

import httpx

from relay.core.settings import Settings

_AGO = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
POLL_S = 0.5
BAR = 30


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--failed",
        action="store_true",
        help="redeliver conversions whose delivery failed or partly failed (their failed "
        "fires and outbound postbacks only)",
    )
    parser.add_argument("--state", choices=["failed", "partial"], help="only this state")
    parser.add_argument("--since", help="received since: 24h, 30m, 7d, or an ISO 8601 time")
    parser.add_argument("--until", help="received before: as --since")
    parser.add_argument("--campaign", help="campaign ID")
    parser.add_argument("--network", help="network ID")
    parser.add_argument("--pixel", help="pixel ID: only its fires")
    parser.add_argument("--platform", choices=["meta", "tiktok"], help="only its fires")
    parser.add_argument("--follow", metavar="ID", help="follow a redelivery already started")
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


def _summary(status: dict[str, Any], out: TextIO) -> int:
    progress = status["progress"] or {}
    if not progress.get("finished"):
        out.write(f"the redelivery ended {status['status']}\n")
        return 1
    for key, title in (("failed_ids", "failed again"), ("not_sendable_ids", "not sendable")):
        if progress.get(key):
            out.write(f"{title}: {' '.join(progress[key])}\n")
    return 1 if progress["failed"] else 0


def run_redeliver(args: argparse.Namespace, settings: Settings, out: TextIO = sys.stdout) -> int:
    """Start (or, with --follow, find) the bulk redelivery and follow it; the exit code."""
    if not args.follow and not (args.failed or args.state):
        raise SystemExit("relay redeliver: say which conversions: --failed (or --state)")
    base = args.api or settings.public_url or f"http://{settings.http_host}:{settings.http_port}"
    headers = {"Authorization": f"Bearer {_admin_token(settings)}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as http:
        redelivery_id = args.follow
        try:
            if not redelivery_id:
                answer = http.post("/api/redeliveries", json=filter_body(args, datetime.now(UTC)))
                if answer.status_code != 202:
                    raise _refused(answer)
                redelivery_id = answer.json()["id"]
                out.write(f"redelivery {redelivery_id}: {answer.json()['matching']} conversions\n")
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
