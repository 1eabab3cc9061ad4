"""deploy/grafana/relay.json and deploy/prometheus/relay-rules.yml: the dashboard has the
Grafana fields an import needs, the rules pass `promtool check rules` and say what to do, and
every series either queries is one Relay's `/metrics` really serves (a real scrape after a
conversion, a failed activity and a failed workflow task), so renaming a metric fails here."""

import asyncio
import json
import os
import re
import shutil
import subprocess
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from temporalio import activity, workflow
from temporalio.client import Client, WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.testing import WorkflowEnvironment
from temporalio.worker import Worker

from relay.core.crypto import KeyRing
from relay.core.metrics import ProcessState, render
from relay.core.settings import Settings
from relay.store.pool import ClickHouse
from relay.temporal.setup import connect_temporal
from tests.harness import ADMIN_TOKEN, running_relay
from tests.platform_server import PlatformServer, Scripted

ROOT = Path(__file__).parent.parent
DASHBOARD = ROOT / "deploy" / "grafana" / "relay.json"
RULES = ROOT / "deploy" / "prometheus" / "relay-rules.yml"
OPERATING = ROOT / "docs" / "operating.md"

# Series Prometheus makes itself for every target, not read from /metrics.
PROMETHEUS_SERIES = frozenset({"up"})

# PromQL words that look like metric names: functions are followed by "(" and dropped anyway.
_KEYWORDS = frozenset(
    {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left", "group_right"}
    | {"bool", "offset", "inf", "nan", "sum", "min", "max", "avg", "count", "topk"}
)
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_GROUPINGS = re.compile(
    r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", re.IGNORECASE
)
_NAME = re.compile(r"(?<![\w:.$])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")


def promql_names(expr: str) -> set[str]:
    """The metric names a PromQL expression (or a Grafana `label_values(...)` query) reads:
    identifiers outside strings, label matchers, ranges and groupings that call nothing."""
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers (and Grafana's ${...})
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges: [5m], [$__rate_interval]
    text = _GROUPINGS.sub(" ", text)
    text = re.sub(r"\blabel_values\s*\(([^,()]*),[^)]*\)", r"(\1)", text)  # its label
    return {name for name in _NAME.findall(text) if name.lower() not in _KEYWORDS} - {""}


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


def rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(RULES.read_text())
    return [rule for group in loaded["groups"] for rule in group["rules"]]


def all_panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every panel, those inside collapsed rows too."""
    found = []
    for panel in panels:
        found.append(panel)
        found.extend(all_panels(panel.get("panels", [])))
    return found


def dashboard_exprs() -> dict[str, str]:
    """Every PromQL expression of the dashboard (its panels' targets and its variables'
    queries), by where it is."""
    board = dashboard()
    exprs = {
        f"panel {panel['title']!r} target {target['refId']}": target["expr"]
        for panel in all_panels(board["panels"])
        for target in panel.get("targets", [])
    }
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            query = variable["query"]
            exprs[f"variable {variable['name']}"] = (
                query["query"] if isinstance(query, dict) else query
            )
    return exprs


def rule_exprs() -> dict[str, str]:
    return {f"rule {rule['alert']}": rule["expr"] for rule in rules()}


def anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a Markdown file."""
    found = set()
    for line in markdown.splitlines():
        heading = re.match(r"#{1,6}\s+(.*)", line)
        if heading:
            text = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower())
            found.add(text.replace(" ", "-"))
    return found


def test_promql_names_finds_metric_names_only() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (destination, le) (rate(relay_x_bucket{job=~"$job",'
        ' verdict="permanent"}[$__rate_interval]))) / on (job) group_left sum without (le)'
        " (increase(relay_y_total[5m] offset 1h)) > 0.5 and bool up == 0 or vector(1)"
    )
    assert promql_names(expr) == {"relay_x_bucket", "relay_y_total", "up"}
    assert promql_names('label_values(relay_z{job=~"$job"}, instance)') == {"relay_z"}
    assert promql_names("max by (job, instance) (relay_inbox_oldest_age_seconds) > 120") == {
        "relay_inbox_oldest_age_seconds"
    }


def test_dashboard_is_a_grafana_dashboard() -> None:
    """The fields an import needs: a schema Grafana 9+ reads, a Prometheus data source
    variable every query uses, panels with unique ids inside a 24-column grid that do not
    overlap, and targets with an expression."""
    board = dashboard()
    for field, kind in {"title": str, "uid": str, "schemaVersion": int, "panels": list}.items():
        assert isinstance(board.get(field), kind), field
    assert board["schemaVersion"] >= 36
    variables = {variable["name"]: variable for variable in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = all_panels(board["panels"])
    ids = [panel["id"] for panel in panels]
    assert all(isinstance(id_, int) for id_ in ids)
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        title, grid = panel["title"], panel["gridPos"]
        assert set(grid) >= {"h", "w", "x", "y"}, title
        assert all(isinstance(grid[k], int) and grid[k] >= 0 for k in "hwxy"), title
        assert grid["w"] >= 1 and grid["h"] >= 1 and grid["x"] + grid["w"] <= 24, title
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{title!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = title
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert panel["targets"], title
        refs = [target["refId"] for target in panel["targets"]]
        assert len(refs) == len(set(refs)), title
        for target in panel["targets"]:
            assert isinstance(target["expr"], str) and target["expr"].strip(), title
            assert target.get("datasource", panel["datasource"]) == panel["datasource"], title
    for name, variable in variables.items():
        if variable["type"] == "query":
            assert variable["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, name


def test_dashboard_covers_what_operators_watch() -> None:
    """A panel for each thing issue 22 asks for, by the series it must query."""
    used = set().union(*map(promql_names, dashboard_exprs().values()))
    expected = {
        "relay_postbacks_total",  # accepted / refused per second
        "relay_postbacks_in_flight",
        "relay_inbox_depth",
        "relay_inbox_capacity",
        "relay_inbox_oldest_age_seconds",  # forwarder lag
        "relay_part_ready",
        "relay_delivery_attempts_total",  # by platform and verdict, failures, retrying
        "relay_delivery_attempt_duration_seconds_bucket",  # latency
        "relay_auth_failures_total",
        "relay_http_connections_closed_total",
        "relay_http_clients_gone_total",
        "temporal_workflow_task_execution_latency_bucket",
        "temporal_workflow_task_execution_failed_total",
        "temporal_activity_execution_latency_bucket",
        "temporal_activity_execution_failed_total",
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
    }
    assert expected <= used, sorted(expected - used)
    exprs = " ".join(dashboard_exprs().values())
    for verdict in ("permanent", "retryable", "delivered"):
        assert f'verdict="{verdict}"' in exprs


def test_rules_say_what_to_do() -> None:
    """Every alert waits (`for:`), has a severity, and a summary, a description and a
    runbook link to a section of docs/operating.md that exists."""
    sections = anchors(OPERATING.read_text())
    found = rules()
    assert len(found) >= 10
    names = [rule["alert"] for rule in found]
    assert len(names) == len(set(names))
    for rule in found:
        name = rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), name
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        notes = rule["annotations"]
        assert len(notes["summary"]) > 10 and len(notes["description"]) > 80, name
        page, _, anchor = notes["runbook_url"].partition("#")
        assert page == "docs/operating.md" and anchor in sections, (name, anchor)
    used = set().union(*map(promql_names, rule_exprs().values()))
    for needed in (
        "relay_inbox_depth",
        "relay_inbox_oldest_age_seconds",
        "relay_part_ready",
        "relay_delivery_attempts_total",
        "relay_auth_failures_total",
        "temporal_workflow_task_execution_failed_total",
    ):
        assert needed in used, needed


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        reason = "promtool is not installed (apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(reason + "; .ci/run installs it")
        pytest.skip(reason)
    return found


def test_promtool_checks_the_rules() -> None:
    done = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


# A workflow whose activity fails, on Relay's Temporal runtime: the SDK's failure series
# appear only once something failed.
@activity.defn(name="monitoring_probe_fails")
async def probe_fails() -> None:
    raise ApplicationError("failing on purpose", non_retryable=True)


@workflow.defn(name="MonitoringProbe", sandboxed=False)
class MonitoringProbe:
    @workflow.run
    async def run(self) -> None:
        await workflow.execute_activity(probe_fails, start_to_close_timeout=timedelta(seconds=10))


async def sdk_failures(client: Client) -> None:
    """One failed activity and one failed workflow task (a type no worker has)."""
    queue = f"monitoring-probe-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client, task_queue=queue, workflows=[MonitoringProbe], activities=[probe_fails]
    ):
        with pytest.raises(WorkflowFailureError):
            await client.execute_workflow(
                MonitoringProbe.run, id=f"probe-{uuid.uuid4().hex}", task_queue=queue
            )
        stuck = await client.start_workflow(
            "NotRegisteredAnywhere", id=f"probe-{uuid.uuid4().hex}", task_queue=queue
        )
        try:
            for _ in range(100):
                if b"temporal_workflow_task_execution_failed_total{" in await render(
                    ProcessState()
                ):
                    break
                await asyncio.sleep(0.1)
        finally:
            await stuck.terminate()


def served_names(text: str) -> set[str]:
    """Every series name a Prometheus text exposition serves or declares: its samples', and
    for families with none yet (a labelled counter never incremented) the names their type
    gives them."""
    names: set[str] = set()
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
    }
    for family in text_string_to_metric_families(text):
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names


async def test_every_queried_series_is_served(
    dev_env: WorkflowEnvironment, clickhouse: ClickHouse, platforms: PlatformServer, keys: KeyRing
) -> None:
    """Relay on a client connected as `relay up` connects (the runtime /metrics reads),
    after a delivered and a refused send, a failed activity and a failed workflow task: every
    metric name in the dashboard and the rules is in its /metrics."""
    address = dev_env.client.service_client.config.target_host
    client = await connect_temporal(Settings(), address, keys)
    env = WorkflowEnvironment.from_client(client)
    async with running_relay(env, clickhouse, platforms, keys) as relay:
        network = await relay.network()
        campaign = await relay.campaign()
        await relay.pixel(campaign["id"], "tiktok")
        meta = await relay.pixel(campaign["id"], "meta")
        relay.platforms.script("meta", meta["platform_pixel_id"], Scripted(status=400))
        click_id = await relay.click(campaign["id"])
        accepted = await relay.postback(key=network["postback_key"], click_id=click_id)
        assert accepted.status_code == 200, accepted.text
        await relay.result(accepted.json()["conversion_id"])
        await sdk_failures(client)
        response = await relay.http.get(
            "/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}
        )
        assert response.status_code == 200, response.text
    served = served_names(response.text) | PROMETHEUS_SERIES
    assert "temporal_activity_execution_failed_total" in served  # the probe reached /metrics
    unknown = {
        f"{where}: {name}"
        for exprs in (dashboard_exprs(), rule_exprs())
        for where, expr in exprs.items()
        for name in promql_names(expr)
        if name not in served
    }
    assert not unknown, "not served by /metrics:\n" + "\n".join(sorted(unknown))
