"""`relay status`: where a running Relay is (API, console, Temporal UI), whether it answers
/healthz and /readyz, and with the admin token what /readyz says about Temporal, ClickHouse,
the inbox and each background part. Exit 0 when ready, 1 when not ready, 2 when the API
cannot be reached; the last line says which and why. The admin token is never printed, only
where it is kept.
"""

import argparse
import json
import sys
from dataclasses import dataclass
from typing import Any, TextIO

import httpx

from relay.core.settings import Settings
from relay.process.banner import origin

READY, NOT_READY, UNREACHABLE = 0, 1, 2
CONNECT_S = 2.0
PROBE_S = 3.0
# /readyz bounds each of its checks (Temporal, ClickHouse, the inbox) to 3 s.
READYZ_S = 10.0
UI_PATH = "/ui/temporal/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        "--api",
        dest="url",
        help="the API's base URL (default: RELAY_PUBLIC_URL, else "
        "http://127.0.0.1:RELAY_HTTP_PORT)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print what was found as JSON (/readyz's raw answer)"
    )


@dataclass(frozen=True)
class AdminToken:
    """The admin token, if found, and where it is kept (what is printed: never the token)."""

    value: str | None
    where: str


def admin_token(settings: Settings) -> AdminToken:
    """RELAY_ADMIN_TOKEN, else the one `relay up` keeps in `{data_dir}/secrets.json` (read,
    never created)."""
    if settings.admin_token:
        return AdminToken(settings.admin_token.get_secret_value(), "from RELAY_ADMIN_TOKEN")
    path = (settings.data_dir / "secrets.json").resolve()
    try:
        token = json.loads(path.read_text("utf-8"))["admin_token"]
    except FileNotFoundError:
        return AdminToken(
            None, f"not found (no RELAY_ADMIN_TOKEN, no {path}): /readyz details hidden"
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return AdminToken(None, f"{path} cannot be read ({type(exc).__name__}): details hidden")
    if not isinstance(token, str) or not token:
        return AdminToken(None, f"{path} holds no admin token: /readyz details hidden")
    return AdminToken(token, f"in {path}")


@dataclass
class Status:
    """What `relay status` found."""

    api: str
    token: str  # where the admin token is kept
    temporal_ui: str | None = None  # the URL, when this API serves it
    temporal_ui_note: str = ""
    healthz: str = ""
    readyz: dict[str, Any] | None = None
    readyz_http: int | None = None
    admin: bool = False  # /readyz answered with the admin's details
    verdict: str = ""
    code: int = UNREACHABLE

    def as_json(self) -> dict[str, Any]:
        return {
            "api": self.api,
            "console": f"{self.api}/ui",
            "temporal_ui": self.temporal_ui,
            "admin_token": self.token,
            "healthz": self.healthz,
            "readyz": self.readyz,
            "readyz_http_status": self.readyz_http,
            "status": self.verdict,
            "exit_code": self.code,
        }


def _why(exc: httpx.HTTPError) -> str:
    detail = str(exc).strip()
    return type(exc).__name__ + (f": {detail}" if detail else "")


def probe(url: str, token: AdminToken) -> Status:
    """Ask the API at `url`; fills in everything `relay status` prints."""
    api = url.rstrip("/")
    status = Status(api=api, token=token.where)
    timeout = httpx.Timeout(PROBE_S, connect=CONNECT_S)
    with httpx.Client(base_url=api, timeout=timeout, follow_redirects=False) as client:
        try:
            health = client.get("/healthz")
        except httpx.HTTPError as exc:
            status.healthz = f"no answer ({_why(exc)})"
            status.verdict = (
                f"cannot reach the API at {api} ({_why(exc)}): is relay up (or relay api) "
                "running there? Set RELAY_PUBLIC_URL or RELAY_HTTP_PORT, or pass --url"
            )
            return status
        if health.status_code != 200:
            status.healthz = f"HTTP {health.status_code}"
            status.verdict = (
                f"{api}/healthz answered HTTP {health.status_code}, not 200: "
                "is this Relay's API? Pass its URL with --url"
            )
            return status
        status.healthz = "ok"
        _temporal_ui(client, status)
        _readyz(client, token, status)
    return status


def _temporal_ui(client: httpx.Client, status: Status) -> None:
    """Served under this origin (relay up) when a page there answers 200 or sends the
    browser to sign in; 404 where the API does not serve it (a cluster's own UI)."""
    try:
        answer = client.get(UI_PATH, headers={"Accept": "text/html"})
    except httpx.HTTPError as exc:
        status.temporal_ui_note = f"unknown ({_why(exc)})"
        return
    if answer.status_code == 404:
        status.temporal_ui_note = "not served by this API (a Temporal cluster serves its own)"
    elif answer.status_code in (200, 303) or answer.is_redirect or answer.status_code == 401:
        status.temporal_ui = f"{status.api}{UI_PATH}"
        status.temporal_ui_note = "(sign in to the console; payloads decoded)"
    else:
        status.temporal_ui_note = f"unknown ({UI_PATH} answered HTTP {answer.status_code})"


def _readyz(client: httpx.Client, token: AdminToken, status: Status) -> None:
    headers = {"Authorization": f"Bearer {token.value}"} if token.value else {}
    try:
        answer = client.get("/readyz", headers=headers, timeout=READYZ_S)
    except httpx.HTTPError as exc:
        status.code = NOT_READY
        status.verdict = f"not ready: /readyz gave no answer ({_why(exc)})"
        return
    status.readyz_http = answer.status_code
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.status_code not in (200, 503) or not isinstance(body, dict) or "ready" not in body:
        status.code = NOT_READY
        status.verdict = f"not ready: /readyz answered HTTP {answer.status_code}, not a readiness"
        return
    status.readyz = body
    # With the admin's token the answer names the inbox (relay up and relay api have one).
    status.admin = token.value is not None and "inbox" in body
    if answer.status_code == 200 and body["ready"] is True:
        status.code = READY
        status.verdict = "ready"
        return
    status.code = NOT_READY
    reasons = [
        f"{name} {body[name]}"
        for name in ("temporal", "clickhouse")
        if isinstance(body.get(name), str) and body[name] != "ok"
    ]
    stuck = body.get("stuck") or {}
    if isinstance(stuck, dict):
        reasons += [f"{part} stuck" for part in stuck]
    status.verdict = "not ready: " + ("; ".join(reasons) or f"/readyz HTTP {answer.status_code}")


def _inbox_line(inbox: dict[str, Any]) -> str:
    line = f"{inbox.get('depth')} waiting of {inbox.get('capacity')}"
    age = inbox.get("oldest_age_s")
    return line + (f"; the oldest {age:.1f} s old" if isinstance(age, int | float) else "")


def render(status: Status) -> str:
    """Aligned `name: value` lines, the verdict last."""
    lines: list[tuple[str, str]] = [
        ("API", f"{status.api}   (OpenAPI: {status.api}/docs)"),
        ("Console", f"{status.api}/ui   (sign in with the admin token)"),
    ]
    if status.temporal_ui:
        lines.append(("Temporal UI", f"{status.temporal_ui}   {status.temporal_ui_note}"))
    elif status.temporal_ui_note:
        lines.append(("Temporal UI", status.temporal_ui_note))
    lines.append(("Admin token", status.token))
    lines.append(("/healthz", status.healthz))
    body = status.readyz
    if status.readyz_http is not None:
        ready = "ready" if status.code == READY else "not ready"
        lines.append(("/readyz", f"{ready} (HTTP {status.readyz_http})"))
    if body is not None:
        lines.append(("Temporal", str(body.get("temporal", "?"))))
        lines.append(("ClickHouse", str(body.get("clickhouse", "?"))))
        inbox = body.get("inbox")
        if isinstance(inbox, dict):
            lines.append(("Inbox", _inbox_line(inbox)))
        stuck = body.get("stuck") or {}
        if isinstance(stuck, dict) and stuck:
            lines.extend((f"Part {part}", str(why)) for part, why in stuck.items())
        else:
            lines.append(("Background parts", "all making progress (none stuck)"))
        if not status.admin:
            hidden = (
                "hidden: the API did not take the admin token"
                if status.token.startswith(("in ", "from "))
                else "hidden: no admin token found"
            )
            lines.append(("Details", f"{hidden} (why a check fails, the inbox's depth)"))
    width = max(len(name) for name, _ in lines) + 2
    return "\n".join(f"{name + ':':<{width}}{value}" for name, value in lines)


def run_status(
    args: argparse.Namespace,
    settings: Settings,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """`relay status`: print what was found, and the exit code: 0 ready, 1 not, 2 no API."""
    out = out or sys.stdout
    err = err or sys.stderr
    port = getattr(args, "http_port", None)  # --port: over RELAY_PUBLIC_URL too
    url = args.url or (f"http://127.0.0.1:{port}" if port else origin(settings))
    status = probe(url, admin_token(settings))
    if args.json:
        print(json.dumps(status.as_json(), indent=2), file=out)
    else:
        print(render(status), file=out)
    if status.code == READY:  # with --json, stdout holds the JSON alone
        print(f"Relay at {status.api} is ready.", file=err if args.json else out)
    else:
        print(f"relay status: {status.verdict}", file=err)
    return status.code
