"""The docs say what the code does: every setting in docs/configuration.md, the retry
schedule in docs/postback-contract.md, the README's test command in `.ci/run`, and every
relative link in README.md, docs/ and bench/README.md (file and anchor)."""

import re
import unicodedata
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.common import RetryPolicy

from relay.core.settings import Settings
from workflows.retry_policies import (
    DELIVERY_RETRY,
    OUTBOUND_RETRY,
    delivery_retry,
    outbound_retry,
)
from workflows.sends import PIXEL_SENDS, POSTBACK_SENDS

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
PAGES = [ROOT / "README.md", ROOT / "bench" / "README.md", *DOCS]
CONFIGURATION = ROOT / "docs" / "configuration.md"
CONTRACT = ROOT / "docs" / "postback-contract.md"
VARIABLE = re.compile(r"RELAY_[A-Z0-9_]*[A-Z0-9]")
# RELAY_ variables the docs name that are not settings: read by the test suite only.
NOT_SETTINGS = {"RELAY_SCREENSHOTS"}  # tests/buyer.py: where the console's screenshots go


def settings_variables() -> set[str]:
    return {f"RELAY_{name.upper()}" for name in Settings.model_fields}


def without_code_blocks(text: str) -> str:
    """The text with fenced code blocks blanked (their `#` lines are shell comments)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.MULTILINE | re.DOTALL)


def test_configuration_table_names_every_setting_and_nothing_else() -> None:
    rows = [line for line in CONFIGURATION.read_text().splitlines() if line.startswith("| `")]
    # A row may group several variables in its first cell (`RELAY_A`, `RELAY_B`, ...).
    in_table = {name for row in rows for name in VARIABLE.findall(row.split("|")[1])}
    missing = settings_variables() - in_table
    assert not missing, f"settings missing from docs/configuration.md's table: {sorted(missing)}"
    unknown = set(VARIABLE.findall(CONFIGURATION.read_text())) - settings_variables()
    assert not unknown, f"docs/configuration.md names variables Relay lacks: {sorted(unknown)}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relay_variable_a_page_names_exists(page: Path) -> None:
    unknown = set(VARIABLE.findall(page.read_text())) - settings_variables() - NOT_SETTINGS
    assert not unknown, f"{page.name} names variables Relay lacks: {sorted(unknown)}"


def _seconds(value: timedelta) -> str:
    seconds = value.total_seconds()
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _schedule(policy: RetryPolicy) -> tuple[str, str, str]:
    """(attempts, waits between attempts, longest wait) as the table writes them."""
    cap = policy.maximum_interval or policy.initial_interval * 100
    shown = policy.maximum_attempts - 1 if policy.maximum_attempts else 3
    waits = [
        min(policy.initial_interval * policy.backoff_coefficient**i, cap) for i in range(shown)
    ]
    listed = ", ".join(_seconds(w) for w in waits)
    if not policy.maximum_attempts:
        return "until the retry window closes", f"{listed}, ...", _seconds(cap)
    return str(policy.maximum_attempts), listed, _seconds(max(waits))


def test_documented_retry_schedule_is_the_policies() -> None:
    text = CONTRACT.read_text()
    table = text.split("<!-- retry-schedule")[1].split("<!-- end retry-schedule -->")[0]
    rows = [line for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    documented = {
        cells[0]: tuple(cells[1:])
        for cells in ([c.strip() for c in row.strip("|").split("|")] for row in rows[1:])
    }
    window = timedelta(hours=24)
    assert documented == {
        "pixel fire (Meta, TikTok)": _schedule(delivery_retry(window)[0]),
        "outbound postback": _schedule(outbound_retry(window)[0]),
        "pixel fire, redelivered": _schedule(DELIVERY_RETRY),
        "outbound postback, redelivered": _schedule(OUTBOUND_RETRY),
    }


def test_the_policies_documented_are_the_ones_the_workflows_use() -> None:
    """Every send goes through one of the two channels: a conversion's sends retry within
    its window (`channel.within`), a redelivery's with the channel's plain policy."""
    assert (PIXEL_SENDS.within, PIXEL_SENDS.retry) == (delivery_retry, DELIVERY_RETRY)
    assert (POSTBACK_SENDS.within, POSTBACK_SENDS.retry) == (outbound_retry, OUTBOUND_RETRY)
    conversion = (ROOT / "workflows" / "conversion.py").read_text()
    redelivery = (ROOT / "workflows" / "redelivery.py").read_text()
    assert "channel.within(window)" in conversion
    assert "retry_policy=PIXEL_SENDS.retry" in redelivery
    assert "retry_policy=POSTBACK_SENDS.retry" in redelivery


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Test it")[1]
    command = section.split("```bash\n")[1].split("\n```")[0].strip()
    ci_lines = {line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()}
    assert command in ci_lines, f".ci/run does not run the README's test command: {command}"


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in ("L", "N"))
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    seen: dict[str, int] = {}
    found = set()
    for match in re.finditer(r"^#{1,6} (.+)$", without_code_blocks(page.read_text()), re.M):
        slug = _slug(match.group(1))
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "", without_code_blocks(page.read_text()))
    return re.findall(r"\]\(([^)\s]+)\)", text)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_reach_a_file_and_its_heading(page: Path) -> None:
    broken = []
    for target in links(page):
        if re.match(r"[a-z]+:", target):  # http(s), mailto: not checked offline
            continue
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(f"{target}: no such file")
        elif anchor and file.suffix == ".md" and anchor not in anchors(file):
            broken.append(f"{target}: no such heading in {file.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)}: " + "; ".join(broken)
