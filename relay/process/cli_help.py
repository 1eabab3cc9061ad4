"""The `relay` command line: each subcommand's help says what it does and which `RELAY_`
variables it reads, listed from the settings' own fields (defaults and descriptions), and
the flags that take precedence over some of them."""

import argparse
import textwrap
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from relay.core.settings import Settings
from relay.process.cli_redeliver import add_arguments
from relay.process.cli_status import add_arguments as add_status_arguments

_STORES = [
    "clickhouse_url",
    "clickhouse_database",
    "clickhouse_pool_size",
    "clickhouse_batch_linger_ms",
    "temporal_address",
    "temporal_namespace",
    "temporal_api_key",
    "temporal_tls",
    "task_queue",
    "encryption_key",
    "admin_token",
    "config_refresh_s",
    "log_format",
]
_API = [
    "http_host",
    "http_port",
    "http_max_connections",
    "http_head_timeout_s",
    "http_body_timeout_s",
    "http_keep_alive_s",
    "max_body_bytes",
    "public_url",
    "trusted_proxies",
    "data_dir",
    "inbox_path",
    "inbox_capacity",
    "inbox_retry_after_s",
    "postback_max_in_flight",
    "inbox_memory_days",
    "forwarder_concurrency",
    "shared_dedup",
    "redelivery_rate_per_s",
    "outbound_allowed_networks",
    "metrics_token",
    "auth_failure_limit",
    "auth_failure_window_s",
    "auth_failure_clients",
]
_WORKER = [
    "meta_base_url",
    "meta_api_version",
    "meta_timeout_s",
    "tiktok_base_url",
    "tiktok_timeout_s",
    "postback_timeout_s",
    "outbound_allowed_networks",
    "max_event_age_days",
    "delivery_retry_window_h",
    "retry_delay_cap_s",
    "default_currency",
    "workflow_sandbox",
    "temporal_plaintext_until",
    "worker_max_activities",
    "worker_max_workflow_tasks",
    "worker_max_local_activities",
    "worker_workflow_pollers",
    "metrics_port",
    "metrics_token",
    "http_host",
]
_WORKER_ONLY = {"metrics_port"}  # `relay up` serves /metrics on the API

COMMANDS: dict[str, tuple[str, str, list[str]]] = {
    "up": (
        "run everything in this process (embedded)",
        "Start the embedded stack: a Temporal dev server (Web UI included), ClickHouse "
        "in-process (chdb), the HTTP API and the Temporal worker, with state in "
        "RELAY_DATA_DIR. Prints the API URL, the Temporal UI URL and where the admin token "
        "is. Ctrl-C stops everything; the next start reuses the data. Set "
        "RELAY_TEMPORAL_ADDRESS or RELAY_CLICKHOUSE_URL to use servers instead. --host, "
        "--port and --data-dir take precedence over their variables.",
        [name for name in Settings.model_fields if name not in _WORKER_ONLY],
    ),
    "api": (
        "run the HTTP API alone (distributed)",
        "Serve the HTTP API (postbacks, clicks, admin API, /docs, /metrics) against an "
        "existing Temporal and ClickHouse server. Needs RELAY_TEMPORAL_ADDRESS, "
        "RELAY_CLICKHOUSE_URL=http(s)://..., RELAY_ENCRYPTION_KEY and RELAY_ADMIN_TOKEN.",
        [*_STORES, *_API],
    ),
    "worker": (
        "run a Temporal worker alone (distributed)",
        "Run a worker that delivers conversions (Meta, TikTok, outbound postbacks) from "
        "RELAY_TASK_QUEUE, against an existing Temporal and ClickHouse server; SIGINT or "
        "SIGTERM drains it. With RELAY_METRICS_PORT it serves /metrics on that port.",
        [*_STORES, *(n for n in _WORKER if n not in _STORES)],
    ),
    "migrate": (
        "apply the ClickHouse schema",
        "Apply the numbered ClickHouse migrations not yet applied and say which, one applier "
        "at a time (a lock in ClickHouse). Run it before starting `relay api` and `relay "
        "worker` of a new release: they check the schema and refuse to start on another "
        "one (`relay up` applies them itself). --unlock clears the lock a crashed applier "
        "left.",
        ["data_dir", "clickhouse_url", "clickhouse_database", "log_format"],
    ),
    "redeliver": (
        "redeliver failed conversions, following the progress",
        "Redeliver the failed sends of the conversions named (`relay redeliver conv_A "
        "conv_B`), or start a bulk redelivery through the API (POST /api/redeliveries) of the "
        "conversions whose delivery failed, e.g. `relay redeliver --failed --since 24h "
        "--campaign cmp_...` (--all instead of --since for every one ever received), and "
        "follow it until it ends. --dry-run says what would be redelivered and starts "
        "nothing. An unknown conversion, campaign or network ID is an error. Ctrl-C stops "
        "following only: the redelivery goes on, and the command prints how to follow it "
        "(`relay redeliver --follow ID`). Exit code 1 if some failed again.",
        ["public_url", "http_host", "http_port", "admin_token", "data_dir"],
    ),
    "inbox": (
        "show the API's inbox depth",
        "Print how many postbacks wait in this API's inbox to be forwarded to Temporal, "
        "and the oldest one's age. Read-only: works while the API runs.",
        ["data_dir", "inbox_path", "log_format"],
    ),
    "status": (
        "show where a running Relay is and whether it is ready",
        "Print the API, console and Temporal UI URLs of the Relay at RELAY_PUBLIC_URL (else "
        "http://127.0.0.1:RELAY_HTTP_PORT; --url over both), whether it answers /healthz and "
        "/readyz, and with the admin token (RELAY_ADMIN_TOKEN, else the data dir's "
        "secrets.json; never printed, only where it is kept) Temporal's and ClickHouse's "
        "health, the inbox depth and each stuck background part. --json prints it as JSON. "
        "Exit code 0 when ready, 1 when not ready, 2 when the API cannot be reached.",
        ["public_url", "http_port", "admin_token", "data_dir"],
    ),
}


# `relay COMMAND --help` lists these first settings only; `--help-all` every one it reads.
FIRST: dict[str, list[str]] = {
    "up": [
        "http_host",
        "http_port",
        "data_dir",
        "public_url",
        "admin_token",
        "temporal_port",
        "temporal_ui_port",
        "meta_base_url",
        "tiktok_base_url",
        "log_format",
        "temporal_address",
        "clickhouse_url",
    ],
}


class _HelpAll(argparse.Action):
    """`--help-all`: the help with every variable the command reads, then exit."""

    def __init__(self, option_strings: list[str], dest: str, full: str, help: str) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help=help)
        self.full = full

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.epilog = self.full
        parser.print_help()
        parser.exit()


def _default(name: str) -> str:
    field = Settings.model_fields[name]
    if field.default_factory is not None or field.default is None:
        return ""
    return f" (default: {field.default})"


def variables_help(names: list[str], first: list[str] | None = None) -> str:
    """The `RELAY_` variables section of a subcommand's help: every one in `names`, or only
    those `first` with a pointer to `--help-all`."""
    shown = names if first is None else first
    heading = "environment variables read" if first is None else "settings changed most often"
    lines = [f"{heading}:"]
    for name in dict.fromkeys(shown):
        description = Settings.model_fields[name].description or ""
        lines.append(f"  RELAY_{name.upper()}{_default(name)}")
        if description:
            lines.append(
                textwrap.fill(description, 88, initial_indent=" " * 6, subsequent_indent=" " * 6)
            )
    if first is not None:
        count = len(dict.fromkeys(names))
        lines.append(f"--help-all lists all {count} variables it reads.")
    lines.append("See docs/configuration.md for every variable.")
    return "\n".join(lines)


def relay_version() -> str:
    try:
        return version("relay")
    except PackageNotFoundError:  # run from a source tree that was not installed
        return "unknown"


# Flags over the environment: (flag, setting, type, which commands take it).
FLAGS: list[tuple[str, str, type, tuple[str, ...]]] = [
    ("--host", "http_host", str, ("up", "api")),
    ("--port", "http_port", int, ("up", "api", "status")),
    ("--data-dir", "data_dir", Path, ("up", "api", "migrate", "inbox", "status")),
]


def _add_flags(command: argparse.ArgumentParser, name: str) -> None:
    for flag, setting, kind, commands in FLAGS:
        if name in commands:
            command.add_argument(
                flag,
                type=kind,
                dest=setting,
                metavar=setting.split("_")[-1].upper(),
                help=f"over RELAY_{setting.upper()}{_default(setting)}",
            )


def settings_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The settings given as flags, for `Settings(**...)`: over the environment."""
    given = {setting: getattr(args, setting, None) for _, setting, _, _ in FLAGS}
    return {setting: value for setting, value in given.items() if value is not None}


def build_parser(description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="relay", description=description)
    parser.add_argument("-V", "--version", action="version", version=f"relay {relay_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (summary, text, names) in COMMANDS.items():
        command = commands.add_parser(
            name,
            help=summary,
            description=textwrap.fill(text, 88),
            epilog=variables_help(names, FIRST.get(name)),
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if name in FIRST:
            command.add_argument(
                "--help-all",
                action=_HelpAll,
                full=variables_help(names),
                help="show this help with every RELAY_ variable it reads, and exit",
            )
        _add_flags(command, name)
        if name == "redeliver":
            add_arguments(command)
        if name == "status":
            add_status_arguments(command)
        if name == "migrate":
            command.add_argument(
                "--unlock",
                action="store_true",
                help="clear the migration lock a crashed `relay migrate` left, then exit",
            )
    commands.add_parser("version", help="print the version", description="Print the version.")
    helper = commands.add_parser(
        "help",
        help="show this help, or a command's",
        description="`relay --help`, or with a command `relay COMMAND --help`.",
    )
    helper.add_argument("topic", nargs="?", metavar="COMMAND", choices=[*COMMANDS, "version"])
    return parser


def show_help(parser: argparse.ArgumentParser, topic: str | None) -> None:
    """`relay help [COMMAND]`: as `relay [COMMAND] --help` (prints, then exits 0)."""
    parser.parse_args([topic, "--help"] if topic else ["--help"])
