"""`relay --help`, every subcommand's `--help` (what it does, the RELAY_ variables it reads)
and `relay --version`, as a user runs them."""

import re
import subprocess
import sys
from importlib.metadata import version

import pytest

from relay.core.settings import Settings
from relay.process.cli_help import COMMANDS


def relay(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "relay", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_version() -> None:
    assert relay("--version").strip() == f"relay {version('relay')}"


def test_top_level_help_lists_every_subcommand() -> None:
    text = relay("--help")
    for name, (summary, _, _) in COMMANDS.items():
        assert re.search(rf"^\s+{name}\s+{re.escape(summary)}", text, re.MULTILINE), name


@pytest.mark.parametrize("command", ["up", "api", "worker", "migrate", "redeliver", "inbox"])
def test_subcommand_help(command: str) -> None:
    text = relay(command, "--help")
    assert text.startswith(f"usage: relay {command}")
    _, description, names = COMMANDS[command]
    assert description.split()[0] in text  # what it does
    named = set(re.findall(r"^  RELAY_([A-Z_]+)", text, re.MULTILINE))
    assert named == {n.upper() for n in names}
    assert {n.lower() for n in named} <= set(Settings.model_fields)


def test_every_setting_is_documented_by_some_subcommand() -> None:
    documented = {n for _, _, names in COMMANDS.values() for n in names}
    assert set(Settings.model_fields) <= documented
