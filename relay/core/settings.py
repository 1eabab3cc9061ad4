"""Relay's configuration: one typed settings object read from `RELAY_` environment variables."""

from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, Field, IPvAnyNetwork, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Every knob Relay has. Read once at start and passed down; nothing else reads the env."""

    model_config = SettingsConfigDict(env_prefix="RELAY_", extra="ignore")

    data_dir: Path = Field(default=Path(".data"), description="Embedded mode's state.")
    clickhouse_url: str | None = Field(
        default=None,
        description="chdb:///path for the in-process engine or http(s)://user:pass@host:8123/db; "
        "embedded mode defaults to chdb://{data_dir}/clickhouse.",
    )
    clickhouse_database: str = "relay"
    clickhouse_pool_size: int = Field(
        default=4, ge=1, le=64, description="ClickHouse clients the process shares."
    )
    clickhouse_batch_linger_ms: float = Field(
        default=200,
        ge=0,
        le=1000,
        description="While a table is written often, its group-committed inserts are at "
        "least this far apart, so more rows join each (an idle table inserts at once).",
    )
    temporal_address: str | None = Field(
        default=None, description="host:port of a Temporal frontend; embedded mode starts one."
    )
    temporal_namespace: str = "default"
    temporal_api_key: SecretStr | None = None
    temporal_tls: bool = False
    temporal_tls_cert: Path | None = Field(
        default=None, description="mTLS: the client certificate (PEM) Relay presents to Temporal."
    )
    temporal_tls_key: Path | None = Field(
        default=None, description="mTLS: the client certificate's private key (PEM)."
    )
    temporal_tls_ca: Path | None = Field(
        default=None,
        description="The CA (PEM) that signed Temporal's server certificate, if not a public one.",
    )
    temporal_tls_server_name: str | None = Field(
        default=None, description="The name Temporal's server certificate is checked against."
    )
    temporal_port: int = 7233
    temporal_ui_port: int = 8233
    temporal_ui_url: str | None = Field(
        default=None,
        description="The Temporal UI the console links each conversion's run to; embedded "
        "mode defaults to its own UI (http://127.0.0.1:{temporal_ui_port}).",
    )
    task_queue: str = "relay-conversions"
    temporal_plaintext_until: AwareDatetime | None = Field(
        default=None,
        description="Until this time (ISO 8601 with its zone, e.g. 2026-03-01T12:00:00Z) the "
        "worker still runs Temporal payloads in clear, written by a Relay version before "
        "payload encryption, so the runs it started can finish. Unset (the default) or "
        "past, a workflow or activity input not encrypted with the key ring is refused and "
        'its run fails ("input not encrypted with Relay\'s key ring"): anyone who reaches '
        "the Temporal frontend could have forged it. Set it only for such an upgrade, to the "
        "upgrade time plus RELAY_DELIVERY_RETRY_WINDOW_H: until then inputs in clear are run "
        "(the conversion ID check still holds), and a run in clear still open after it "
        "fails its workflow tasks until it is terminated.",
    )

    encryption_key: SecretStr | None = Field(
        default=None,
        description="Comma-separated key ring 'kid:base64(32 bytes)', the first one encrypts.",
    )
    admin_token: SecretStr | None = None
    metrics_token: SecretStr | None = Field(
        default=None,
        description="A bearer token that reads /metrics only (for a Prometheus scraper); "
        "the admin token reads it too.",
    )
    metrics_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="`relay worker` only: serve /metrics on this port of RELAY_HTTP_HOST "
        "(the API serves /metrics itself).",
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="json: one JSON object per line, with conversion_id and click_id where known.",
    )
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    http_max_connections: int = Field(
        default=4096,
        ge=1,
        description="Connections the API holds open at once; past it an idle keep-alive "
        "connection is closed to make room, or the new one is answered 503 and closed.",
    )
    http_head_timeout_s: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How long a client has to send a request's line and headers, from its "
        "connection (or the request's first byte); past it, 408 and the connection closes.",
    )
    http_body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="How long a client has to send a request's body once its headers are "
        "in; past it the connection closes (the request is dropped, not an error).",
    )
    http_keep_alive_s: int = Field(
        default=75,
        ge=1,
        le=3600,
        description="How long an idle keep-alive connection stays open for the next request "
        "(networks post in bursts); above a load balancer's idle timeout (often 60 s).",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="The largest request body the API reads (`/postback` keeps its own 16 KB).",
    )
    public_url: str | None = Field(default=None, description="Base URL printed and used in links.")
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Proxies whose X-Forwarded-For is believed, as a JSON list of addresses "
        'or CIDRs (e.g. ["10.0.0.0/8"]).',
    )
    codec_cors_origins: list[str] = Field(
        default_factory=list,
        description="Temporal UI origins allowed to call /codec besides the embedded UI's.",
    )
    auth_failure_limit: int = Field(
        default=20,
        ge=1,
        description="Wrong credentials one client address may present per window (the admin "
        "token at sign-in, as a bearer or for a codec session; postback keys counted apart); "
        "beyond, 429 with Retry-After. A right one still passes.",
    )
    auth_failure_window_s: float = Field(
        default=300.0, gt=0, le=86_400, description="The window of RELAY_AUTH_FAILURE_LIMIT."
    )
    auth_failure_clients: int = Field(
        default=10_000,
        ge=1,
        description="Client addresses whose failures are remembered at once (the oldest "
        "forgotten first), so the count's memory stays bounded.",
    )
    meta_base_url: str = "https://graph.facebook.com"
    meta_api_version: str = "v24.0"
    meta_timeout_s: float = 1.5
    tiktok_base_url: str = "https://business-api.tiktok.com"
    tiktok_timeout_s: float = 3.0
    postback_timeout_s: float = 5.0
    outbound_allowed_networks: list[IPvAnyNetwork] = Field(
        default_factory=list,
        description="Networks outbound postbacks may reach besides public addresses, as a "
        'JSON list of CIDRs (e.g. ["10.1.2.0/24"]); loopback, private, link-local and other '
        "special-purpose addresses are refused unless listed here.",
    )
    max_event_age_days: int = 7
    click_pii_retention_days: int = Field(
        default=90,
        ge=8,
        le=3650,
        description="Days a click keeps the visitor's IP, user agent, URLs, click IDs, "
        "cookies, place and external ID; then they are blanked and the click stays. At "
        "least the longest attribution window plus the platforms' 7-day limit.",
    )
    delivery_pii_retention_days: int = Field(
        default=30,
        ge=8,
        le=3650,
        description="Days conversions keep their hashed user identifiers and attempt logs "
        "the visitor's data in the requests sent; then they are blanked and the rows stay.",
    )
    delivery_retry_window_h: float = Field(
        default=24.0,
        gt=0,
        le=168,
        description="How long transient delivery failures keep retrying (at most 7 days).",
    )
    retry_delay_cap_s: float = Field(
        default=3600.0,
        gt=0,
        le=86_400,
        description="The longest wait before a retry, whatever Retry-After asks for.",
    )
    inbox_path: Path | None = Field(
        default=None, description="The API's durable inbox; default {data_dir}/inbox.sqlite."
    )
    inbox_capacity: int = Field(
        default=200_000, ge=1, description="Postbacks waiting to be forwarded; beyond, 503."
    )
    inbox_retry_after_s: int = Field(default=5, ge=1, description="Retry-After when full.")
    postback_max_in_flight: int = Field(
        default=1000,
        ge=1,
        description="Postbacks accepted at once; beyond, 503 with Retry-After: 1.",
    )
    inbox_memory_days: float = Field(
        default=35.0, gt=0, description="How long the inbox remembers accepted conversions."
    )
    forwarder_concurrency: int = Field(default=32, ge=1, le=1024)
    shared_dedup: bool | None = Field(
        default=None,
        description="Dedup claims in Temporal, for several API replicas; default: on for "
        "`relay api`, off for `relay up` (one inbox decides).",
    )
    workflow_sandbox: bool = Field(
        default=False,
        description="Run workflow code in Temporal's sandbox (the test suite does, so code "
        "that breaks determinism fails there); off in production: it costs a quarter of "
        "the worker's CPU.",
    )
    worker_max_activities: int = Field(
        default=32,
        ge=1,
        le=1000,
        description="Activities one worker runs at once; more wait on the server, where no "
        "timeout runs.",
    )
    worker_max_workflow_tasks: int = Field(
        default=100,
        ge=2,
        le=5000,
        description="Workflow tasks one worker holds at once. A conversion's task stays "
        "open while its first step and first tries run (local activities); a start is "
        "handed to the worker directly (eager) while a slot is free, else it waits on the "
        "server for a poll. Too many and each waits longer for the CPU than its 10 s "
        "timeout allows (150 and 400 did, in a 10,000 burst on 2 cores: sends tried twice).",
    )
    worker_workflow_pollers: int = Field(
        default=20,
        ge=2,
        le=200,
        description="Concurrent polls for workflow tasks, half of them for new runs (the "
        "SDK's default is 5, one for new runs: starts waiting on the server were picked "
        "up one poll round trip at a time, and delivery held at about 25/s on 2 cores).",
    )
    worker_max_local_activities: int = Field(
        default=400,
        ge=1,
        le=5000,
        description="Local activities (first steps and first tries) one worker runs at once.",
    )
    config_refresh_s: float = Field(
        default=2.0, gt=0, description="Bound on how stale another process's config may be."
    )
    worker_shutdown_grace_s: float | None = Field(
        default=None,
        gt=0,
        description="How long a stopping worker lets in-flight sends finish and log their "
        "attempt before cancelling them; default: the longest send timeout plus 5 s.",
    )
    worker_health_file: Path | None = Field(
        default=None,
        description="The file `relay worker` touches while it polls Temporal; default "
        "{data_dir}/worker.alive. `python -m relay.process.health` checks it is fresh.",
    )
    worker_heartbeat_s: float = Field(
        default=5.0, gt=0, le=300, description="How often the worker health file is touched."
    )
    redelivery_rate_per_s: float = Field(
        default=10.0,
        gt=0,
        le=1000,
        description="Conversions a bulk redelivery (POST /api/redeliveries, `relay "
        "redeliver`) starts redelivering per second, at most.",
    )
    default_currency: str = "USD"

    @property
    def inbox_file(self) -> Path:
        return self.inbox_path or self.data_dir / "inbox.sqlite"

    @property
    def worker_shutdown_grace(self) -> float:
        """At least the longest send, so a send in flight at SIGTERM logs its attempt."""
        if self.worker_shutdown_grace_s is not None:
            return self.worker_shutdown_grace_s
        return max(self.meta_timeout_s, self.tiktok_timeout_s, self.postback_timeout_s) + 5.0

    @property
    def worker_health_path(self) -> Path:
        return self.worker_health_file or self.data_dir / "worker.alive"

    @property
    def clickhouse_dsn(self) -> str:
        """The DSN clickhouse-connect receives; the scheme alone picks engine or server."""
        if self.clickhouse_url:
            return self.clickhouse_url
        return f"chdb://{(self.data_dir / 'clickhouse').resolve()}"
