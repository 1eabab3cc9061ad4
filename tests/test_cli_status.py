"""`relay status` (issue 22 item 6): the URLs, /healthz, /readyz and with the admin token its
details, aligned for a terminal or as JSON; exit 0 ready, 1 not ready, 2 no API, each with
one line saying why. The token is never printed, only where it is kept."""

import asyncio
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, RedirectResponse
from temporalio.testing import WorkflowEnvironment

from relay.core.crypto import KeyRing
from relay.core.settings import Settings
from relay.process.cli import main
from relay.process.cli_help import build_parser
from relay.process.cli_status import admin_token, run_status
from relay.store.pool import ClickHouse
from tests.embedded import free_port
from tests.harness import ADMIN_TOKEN, running_relay
from tests.platform_server import PlatformServer
from tests.served import listening, serving

TOKEN = "status-admin-token-0123456789abcdef"


def _stand_in(ready: bool, temporal_ui: bool = True) -> FastAPI:
    """An API answering /healthz, /readyz and /ui/temporal/ as Relay's do (api/routes)."""
    app = FastAPI()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> JSONResponse:
        admin = request.headers.get("authorization") == f"Bearer {TOKEN}"
        temporal = "ok" if ready else ("down: RPCError" if admin else "down")
        stuck = {} if ready else {"forwarder": "cannot reach Temporal" if admin else "stuck"}
        body: dict[str, Any] = {"ready": ready, "temporal": temporal, "clickhouse": "ok"}
        body["stuck"] = stuck
        if admin:
            body["inbox"] = {"depth": 3, "capacity": 1000, "oldest_age_s": 12.25}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/ui/temporal/", response_model=None)
    async def ui() -> RedirectResponse | JSONResponse:
        if temporal_ui:
            return RedirectResponse("/ui/sign-in", status_code=303)
        return JSONResponse({"error": "not here"}, status_code=404)

    return app


async def _status(url: str | None, *argv: str, **settings: Any) -> tuple[int, str, str]:
    """`relay status` in this process (in a thread: the served API runs on this loop)."""
    args = build_parser(None).parse_args(["status", *(["--url", url] if url else []), *argv])
    out, err = io.StringIO(), io.StringIO()
    code = await asyncio.to_thread(run_status, args, Settings(**settings), out, err)
    return code, out.getvalue(), err.getvalue()


def _fields(text: str) -> dict[str, str]:
    """`name: value` lines; asserts they are aligned (every value starts in one column)."""
    lines = [line for line in text.splitlines() if ": " in line and not line.startswith("Relay")]
    columns = {len(re.match(r"^[^:]+:\s+", line).group(0)) for line in lines}  # type: ignore[union-attr]
    assert len(columns) == 1, text
    return {line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in lines}


async def test_ready_with_the_admin_token(tmp_path: Path) -> None:
    async with listening(_stand_in(ready=True), log_level="warning") as (host, port):
        url = f"http://{host}:{port}"
        code, out, err = await _status(url, admin_token=TOKEN, data_dir=tmp_path)
    assert code == 0, (out, err)
    assert err == ""
    assert TOKEN not in out
    fields = _fields(out)
    assert fields["API"].startswith(url)
    assert fields["Console"].startswith(f"{url}/ui")
    assert fields["Temporal UI"].startswith(f"{url}/ui/temporal/")
    assert fields["Admin token"] == "from RELAY_ADMIN_TOKEN"
    assert fields["/healthz"] == "ok"
    assert fields["/readyz"] == "ready (HTTP 200)"
    assert fields["Temporal"] == fields["ClickHouse"] == "ok"
    assert fields["Inbox"] == "3 waiting of 1000; the oldest 12.2 s old"
    assert fields["Background parts"].startswith("all making progress")
    assert "Details" not in fields
    assert out.splitlines()[-1] == f"Relay at {url} is ready."


async def test_not_ready_names_why_and_the_token_file(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text(json.dumps({"admin_token": TOKEN}))
    async with listening(_stand_in(ready=False, temporal_ui=False), log_level="warning") as (
        host,
        port,
    ):
        url = f"http://{host}:{port}"
        code, out, err = await _status(url, data_dir=tmp_path)
        json_code, json_out, _ = await _status(url, "--json", data_dir=tmp_path)
    assert code == 1, (out, err)
    assert TOKEN not in out + err + json_out
    fields = _fields(out)
    assert fields["Admin token"] == f"in {(tmp_path / 'secrets.json').resolve()}"
    assert fields["Temporal UI"].startswith("not served by this API")
    assert fields["/readyz"] == "not ready (HTTP 503)"
    assert fields["Temporal"] == "down: RPCError"
    assert fields["Part forwarder"] == "cannot reach Temporal"
    assert err == "relay status: not ready: temporal down: RPCError; forwarder stuck\n"

    assert json_code == 1
    found = json.loads(json_out)
    assert found["readyz"]["inbox"]["depth"] == 3
    assert found["readyz_http_status"] == 503
    assert found["temporal_ui"] is None


async def test_without_the_token_details_are_hidden(tmp_path: Path) -> None:
    async with listening(_stand_in(ready=False), log_level="warning") as (host, port):
        code, out, err = await _status(f"http://{host}:{port}", data_dir=tmp_path)
        wrong, wrong_out, _ = await _status(
            f"http://{host}:{port}", admin_token="x" * 40, data_dir=tmp_path
        )
    assert code == wrong == 1
    fields = _fields(out)
    assert fields["Admin token"].startswith("not found")
    assert fields["Temporal"] == "down"
    assert fields["Details"].startswith("hidden: no admin token found")
    assert _fields(wrong_out)["Details"].startswith("hidden: the API did not take the admin token")
    assert err == "relay status: not ready: temporal down; forwarder stuck\n"


async def test_nothing_listening_exits_2_with_one_clear_line(tmp_path: Path) -> None:
    port = free_port()
    code, out, err = await _status(None, "--port", str(port), data_dir=tmp_path)
    assert code == 2, (out, err)
    url = f"http://127.0.0.1:{port}"
    assert err.count("\n") == 1
    assert err.startswith(f"relay status: cannot reach the API at {url} (ConnectError")
    assert "is relay up (or relay api) running there?" in err
    assert _fields(out)["/healthz"].startswith("no answer")


async def test_an_api_that_is_not_relay_exits_2() -> None:
    async with listening(FastAPI(), log_level="warning") as (host, port):
        code, _, err = await _status(f"http://{host}:{port}")
    assert code == 2
    assert "/healthz answered HTTP 404, not 200" in err


def test_the_token_is_found_where_relay_up_keeps_it(tmp_path: Path) -> None:
    assert admin_token(Settings(data_dir=tmp_path, admin_token=TOKEN)).value == TOKEN
    missing = admin_token(Settings(data_dir=tmp_path))
    assert missing.value is None and str(tmp_path) in missing.where
    (tmp_path / "secrets.json").write_text(json.dumps({"admin_token": TOKEN}))
    found = admin_token(Settings(data_dir=tmp_path))
    assert found.value == TOKEN and found.where == f"in {(tmp_path / 'secrets.json').resolve()}"
    (tmp_path / "secrets.json").write_text("{")
    assert admin_token(Settings(data_dir=tmp_path)).value is None


@pytest.mark.parametrize(("argv", "usage"), [([], "usage: relay [-h]"), (["status"], "status")])
def test_help_is_an_alias_of_dash_dash_help(
    argv: list[str], usage: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["help", *argv])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(usage if not argv else f"usage: relay {usage}")
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    assert capsys.readouterr().out == text


async def test_against_relays_own_api(
    dev_env: WorkflowEnvironment, clickhouse: ClickHouse, platforms: PlatformServer, keys: KeyRing
) -> None:
    async with (
        running_relay(dev_env, clickhouse, platforms, keys) as relay,
        serving(relay.runtime) as url,
    ):
        code, out, err = await _status(url, admin_token=ADMIN_TOKEN)
        json_code, json_out, json_err = await _status(url, "--json", admin_token=ADMIN_TOKEN)
        relay.runtime.embedded = False  # as `relay api`: the UI is a cluster's own
        try:
            _, distributed, _ = await _status(url, admin_token=ADMIN_TOKEN)
        finally:
            relay.runtime.embedded = True
    assert code == json_code == 0, (out, err)
    assert ADMIN_TOKEN not in out + json_out
    fields = _fields(out)
    assert fields["Temporal"] == fields["ClickHouse"] == "ok"
    assert re.fullmatch(r"\d+ waiting of \d+.*", fields["Inbox"]), fields
    assert fields["Temporal UI"].startswith(f"{url}/ui/temporal/")  # as relay up serves it
    assert _fields(distributed)["Temporal UI"].startswith("not served by this API")
    readyz = json.loads(json_out)["readyz"]
    assert json_err == f"Relay at {url} is ready.\n"
    assert readyz["ready"] is True and readyz["stuck"] == {}
