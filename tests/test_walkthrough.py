"""The README's "Try it in 5 minutes (offline)", run as written: the stand-in and `relay up`
started by its own commands, steps 3 to 6 as one bash script, and the answers its comments
state checked. Only the ports differ (free ones instead of the README's fixed ones), so the
test can run beside anything else; everything stays on loopback."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from tests.embedded import free_port, port_open

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
WALKTHROUGH = "## Try it in 5 minutes (offline)"
# The commands run `.venv/bin/...`: the venv this test runs in.
VENV = Path(sys.prefix)
# The whole test stays under 90 s: relay up's start, the script (its two `sleep 5`) and
# the two stops (Ctrl-C, then SIGKILL past STOP_S).
BUDGET_S = 85.0
READY_S = 60.0
STOP_S = 15.0
# Step 5 says "a few seconds later": the script waits for it (bounded) before step 5.
DELIVERED_WAIT = """
# (test) Step 5's "a few seconds later": wait for the delivery, at most 20 s.
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ]; do
  state=$(curl -s $A/api/conversions/$CONV -H "$AUTH" | get delivery_state 2>/dev/null || true)
  [ "$state" = delivered ] && break
  sleep 0.25
done
"""
STEP_MARK = re.compile(r"^@@ step (\d)$", re.MULTILINE)
# A `<placeholder>` in a shell command is a redirection, not a word to fill in.
PLACEHOLDER = re.compile(r"<[A-Za-z_][\w-]*>")


def bash_blocks(text: str) -> list[str]:
    """The ```bash blocks of `text`, in order."""
    return re.findall(r"^```bash\n(.*?)^```", text, flags=re.MULTILINE | re.DOTALL)


def walkthrough_steps() -> list[str]:
    """The walkthrough's six commands, from its heading to the next `## ` heading."""
    readme = README.read_text()
    assert WALKTHROUGH in readme, f"README.md has no {WALKTHROUGH!r} section"
    section = readme.split(WALKTHROUGH, 1)[1].split("\n## ", 1)[0]
    steps = bash_blocks(section)
    assert len(steps) == 6, f"the walkthrough has {len(steps)} bash blocks, not 6 (steps 1-6)"
    return steps


def on_port(command: str, step: int | str, literal: str, readme_port: int, port: int) -> str:
    """`command` with the README's `literal` (which holds `readme_port`) moved to `port`;
    fails if the README no longer says `literal`, or names its port anywhere else."""
    assert literal in command, (
        f"step {step} of the README's walkthrough no longer contains {literal!r}, which this "
        f"test replaces by a free port; update tests/test_walkthrough.py:\n{command}"
    )
    moved = command.replace(literal, literal.replace(str(readme_port), str(port)))
    assert str(readme_port) not in moved, (
        f"step {step} names port {readme_port} other than as {literal!r}:\n{command}"
    )
    return moved


def shell_env(**ports: int) -> dict[str, str]:
    """The environment of a newcomer's terminal: no RELAY_ setting or proxy of ours, the
    given RELAY_ ports (where relay up must not collide with anything else running)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith("RELAY_") and "proxy" not in name.lower()
    }
    env.update({f"RELAY_{name.upper()}": str(port) for name, port in ports.items()})
    return env


@contextmanager
def terminal(
    command: str, cwd: Path, env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """`command` as in a terminal of its own (its own process group, as Ctrl-C signals it);
    killed on the way out if still running."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            ["bash", "-c", command],
            cwd=cwd,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def ctrl_c(process: subprocess.Popen[bytes]) -> int | None:
    """Ctrl-C in the process's terminal; its exit code, or None if it outlived STOP_S."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        return process.wait(timeout=STOP_S)
    except subprocess.TimeoutExpired:
        return None


def wait_ready(
    processes: dict[str, tuple[subprocess.Popen[bytes], Path]], url: str, stand_in_port: int
) -> None:
    """Until the stand-in listens and relay up's /readyz answers 200, bounded."""
    deadline = time.monotonic() + READY_S
    while True:
        for name, (process, log) in processes.items():
            assert process.poll() is None, f"{name} exited:\n{log.read_text()[-3000:]}"
        try:
            if port_open(stand_in_port) and httpx.get(f"{url}/readyz", timeout=1).is_success:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"relay up not ready in {READY_S:.0f} s"
        time.sleep(0.3)


def by_step(output: str) -> dict[int, str]:
    """The script's output split at its `@@ step N` marks."""
    parts = STEP_MARK.split(output)
    return {int(step): text for step, text in zip(parts[1::2], parts[2::2], strict=True)}


def first_json(text: str) -> Any:
    """The first JSON value of `text` (curl prints the bodies one after the other)."""
    return json.JSONDecoder().raw_decode(text.strip())[0]


def stated_answers(command: str) -> list[str]:
    """The words the comments say lines like `... | get delivery_state  # partial` print."""
    return re.findall(r"\|\s*get \w+\s+#\s*(\w+)\s*$", command, flags=re.MULTILINE)


def test_every_bash_block_of_the_readme_is_valid_bash_without_placeholders() -> None:
    for block in bash_blocks(README.read_text()):
        checked = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True)
        assert checked.returncode == 0, f"not valid bash: {checked.stderr}\n{block}"
        commands = [line.split(" #")[0] for line in block.splitlines()]
        found = [line for line in commands if PLACEHOLDER.search(line)]
        assert not found, f"a <placeholder> is a redirection in bash; use a variable: {found}"


def test_the_offline_walkthrough_runs_as_written_and_prints_what_it_says(tmp_path: Path) -> None:
    started = time.monotonic()
    stand_in, api, temporal, temporal_ui = free_port(), free_port(), free_port(), free_port()
    steps = walkthrough_steps()
    start_stand_in = on_port(steps[0], 1, "--port 9999", 9999, stand_in)
    start_relay = on_port(steps[1], 2, "http://127.0.0.1:9999", 9999, stand_in)
    script = on_port(
        "".join(
            f"printf '\\n@@ step {n}\\n'\n{DELIVERED_WAIT if n == 5 else ''}{step}"
            for n, step in enumerate(steps[2:], 3)
        ),
        "3 to 6",
        "A=http://127.0.0.1:8000",
        8000,
        api,
    )

    # The repository root as the README's commands see it, with nothing but a fresh `.data/`.
    (tmp_path / ".venv").symlink_to(VENV)
    (tmp_path / "tests").symlink_to(ROOT / "tests")
    assert (tmp_path / ".venv" / "bin" / "relay").exists(), f"no relay in {VENV}"
    env = shell_env(http_port=api, temporal_port=temporal, temporal_ui_port=temporal_ui)
    stand_in_log, relay_log = tmp_path / "terminal-1.log", tmp_path / "terminal-2.log"

    with (
        terminal(start_stand_in, tmp_path, env, stand_in_log) as platforms,
        terminal(start_relay, tmp_path, env, relay_log) as relay,
    ):
        wait_ready(
            {"the stand-in": (platforms, stand_in_log), "relay up": (relay, relay_log)},
            f"http://127.0.0.1:{api}",
            stand_in,
        )
        left = BUDGET_S - 2 * STOP_S - (time.monotonic() - started)
        try:
            run = subprocess.run(
                ["bash", "-euo", "pipefail", "-c", script],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=left,
            )
        except subprocess.TimeoutExpired as timeout:
            so_far = (timeout.stdout or b"").decode(errors="replace")  # bytes, even with text
            raise AssertionError(f"steps 3-6 took over {left:.0f} s; so far:\n{so_far}") from None
        assert run.returncode == 0, (
            f"steps 3-6 failed ({run.returncode}):\n{run.stdout}\n{run.stderr}\n"
            f"relay up:\n{relay_log.read_text()[-3000:]}"
        )
        printed = by_step(run.stdout)
        assert sorted(printed) == [3, 4, 5, 6], run.stdout

        conversion = first_json(printed[5])
        delivered = [send["state"] for send in conversion["sends"]] == ["delivered"] * 2
        assert conversion["delivery_state"] == "delivered" and delivered, (
            f"step 5: the conversion is not delivered to its two pixels:\n{printed[5][:3000]}"
        )
        assert "EAAB-your-token" not in printed[5], "step 5 shows an access token"

        # The words the comments promise, each a line of its own: every JSON answer (the
        # PATCH's, the redeliver's) ends with a newline.
        promised = stated_answers(steps[5])
        assert promised == ["partial", "delivered"], f"step 6's comments changed: {promised}"
        answers = re.findall(r"^(\w+)$", printed[6], flags=re.MULTILINE)
        assert answers == promised, printed[6]

        # "Ctrl-C in terminals 2 and 1 stops Relay and the stand-in."
        assert ctrl_c(relay) is not None, f"relay up outlived Ctrl-C by {STOP_S:.0f} s"
        assert ctrl_c(platforms) is not None, f"the stand-in outlived Ctrl-C by {STOP_S:.0f} s"
    assert not port_open(api) and not port_open(temporal) and not port_open(stand_in)
