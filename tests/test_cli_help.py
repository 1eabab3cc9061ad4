"""`relay --help`, every subcommand's `--help` (what it does, the RELAY_ variables it reads,
the flags over them) and `relay --version` (`-V`, `relay version`), as a user runs them."""

import re
import subprocess
import sys
from importlib.metadata import version

import pytest

from relay.core.settings import Settings
from relay.process.cli_help import COMMANDS, FIRST


def relay(*args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "relay", *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("args", [["--version"], ["-V"], ["version"]])
def test_version(args: list[str]) -> None:
    assert relay(*args) == f"relay {version('relay')}\n"


SERVED = {"--host": "RELAY_HTTP_HOST", "--port": "RELAY_HTTP_PORT", "--data-dir": "RELAY_DATA_DIR"}


@pytest.mark.parametrize(
    ("command", "flags"),
    [("up", SERVED), ("api", SERVED), ("migrate", {"--data-dir": "RELAY_DATA_DIR"})],
)
def test_flags_are_listed_with_the_variable_they_take_precedence_over(
    command: str, flags: dict[str, str]
) -> None:
    text = relay(command, "--help")
    for flag, variable in flags.items():
        assert re.search(rf"^  {flag} \S+ +over {variable}\b", text, re.MULTILINE), (flag, text)


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
    if command in FIRST:  # the settings changed most often; --help-all: every one
        assert _named(text) == {n.upper() for n in FIRST[command]}
        assert f"--help-all lists all {len(set(names))} variables" in text
        text = relay(command, "--help-all")
        assert text.startswith(f"usage: relay {command}")
    named = _named(text)
    assert named == {n.upper() for n in names}
    assert {n.lower() for n in named} <= set(Settings.model_fields)


def _named(text: str) -> set[str]:
    return set(re.findall(r"^  RELAY_([A-Z_]+)", text, re.MULTILINE))


def test_up_help_is_short() -> None:
    assert len(relay("up", "--help").splitlines()) <= 40
    assert len(relay("up", "--help-all").splitlines()) > 100


def test_every_setting_is_documented_by_some_subcommand() -> None:
    documented = {n for _, _, names in COMMANDS.values() for n in names}
    assert set(Settings.model_fields) <= documented
