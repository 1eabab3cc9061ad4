"""Personal data expires on the in-process engine: column TTLs blank it, rows stay.

Each test has a database of its own, since it changes the tables' TTLs. TTLs apply in
merges; `OPTIMIZE TABLE ... FINAL` runs that merge now instead of within hours."""

import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from relay.core.settings import Settings
from relay.domain.models import (
    Campaign,
    Click,
    Conversion,
    PixelFire,
    Platform,
    PostbackAttemptRow,
)
from relay.domain.personal_data import CLICK_FIELDS, CONVERSION_FIELDS, ERASED
from relay.store.attempt_log import pixel_fire_log, postback_log
from relay.store.config import ConfigStore
from relay.store.database import apply_migrations, open_clickhouse
from relay.store.pool import ClickHouse
from relay.store.retention import apply_retention
from relay.store.rows import insert_dicts, utc_now
from relay.store.traffic import TrafficStore
from tests.support import BLANK_CLICK

TABLES = ["clicks", "conversions", "pixel_fires", "postback_attempts"]
MARGIN_S = 3.0  # rows are written this long before their TTL ends
IP, UA, EMAIL_HASH = "203.0.113.77", "Mozilla/5.0 (Retention)", "e" * 64
META_BODY = json.dumps(
    {
        "data": [
            {
                "event_name": "Purchase",
                "event_id": "conv_ret",
                "user_data": {"client_ip_address": IP, "client_user_agent": UA, "em": [EMAIL_HASH]},
                "custom_data": {"currency": "USD", "value": 12.5},
            }
        ],
        "access_token": "[REDACTED]",
    },
    separators=(",", ":"),
)


@pytest.fixture
def store(clickhouse_location: tuple[str, str]) -> Iterator[ClickHouse]:
    dsn, _ = clickhouse_location
    database = f"relay_retention_{uuid.uuid4().hex[:8]}"
    client = open_clickhouse(dsn, database, pool_size=1)
    yield client
    client.command(f"DROP DATABASE {database}")
    client.close()


def _expiring(days: int) -> datetime:
    """A row time whose personal data expires MARGIN_S from now."""
    return utc_now() - timedelta(days=days) + timedelta(seconds=MARGIN_S)


def _merge_after_expiry(store: ClickHouse, written: datetime, days: int) -> None:
    # TTLs compare whole seconds (toDateTime): wait for the second after the end.
    end = written.replace(microsecond=0) + timedelta(days=days, seconds=1.5)
    time.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()))
    for table in TABLES:
        store.command(f"OPTIMIZE TABLE {table} FINAL")


def _click(clicked_at: datetime) -> Click:
    personal: dict[str, Any] = {name: f"{name}-value" for name in CLICK_FIELDS}
    personal.update(ip=IP, user_agent=UA, click_ids={"gclid": "gclid-value"})
    return Click(
        click_id=f"clk_{uuid.uuid4().hex[:12]}",
        campaign_id="cmp_retention",
        clicked_at=clicked_at,
        country="US",
        sub1="placement-7",
        **personal,
    )


def _comment(store: ClickHouse, table: str, column: str) -> str:
    result = store.query(
        "SELECT comment FROM system.columns WHERE database = currentDatabase() "
        "AND table = {t:String} AND name = {c:String}",
        parameters={"t": table, "c": column},
    )
    return str(result.result_rows[0][0])


def test_the_migration_states_the_documented_defaults(store: ClickHouse) -> None:
    apply_migrations(store)
    settings = Settings()
    defaults = settings.click_pii_retention_days, settings.delivery_pii_retention_days
    assert defaults == (90, 30)
    assert apply_retention(store, *defaults) == []  # the migration already says so
    for field in CLICK_FIELDS:
        assert _comment(store, "clicks", field) == "personal data, kept 90 days after clicked_at"
    assert _comment(store, "pixel_fires", "request_body") == (
        "personal data, kept 30 days after fired_at"
    )


def test_an_expired_click_loses_its_personal_data_and_stays(store: ClickHouse) -> None:
    apply_migrations(store)
    assert apply_retention(store, 8, 8) == TABLES
    traffic = TrafficStore(store)
    click = _click(_expiring(8))
    traffic.save_click(click)
    assert traffic.get_click(click.click_id) == click  # not expired yet

    _merge_after_expiry(store, click.clicked_at, 8)
    kept = traffic.get_click(click.click_id)
    assert kept is not None
    assert {name: getattr(kept, name) for name in CLICK_FIELDS} == BLANK_CLICK
    # Attribution and reporting keep what they read.
    blank = set(CLICK_FIELDS)
    assert kept.model_dump(exclude=blank) == click.model_dump(exclude=blank)
    count = store.query(
        "SELECT count() FROM clicks WHERE click_id = {c:String}", parameters={"c": click.click_id}
    )
    assert count.result_rows[0][0] == 1


def test_expired_delivery_data_is_erased_and_the_history_stays(store: ClickHouse) -> None:
    apply_migrations(store)
    apply_retention(store, 90, 8)
    when = _expiring(8)
    traffic = TrafficStore(store)
    conversion = Conversion(
        conversion_id="conv_ret",
        click_id="clk_ret",
        campaign_id="cmp_retention",
        network_id="net_ret",
        event_type="sale",
        payout=Decimal("12.5"),
        currency="USD",
        txid="T-1",
        **dict.fromkeys(CONVERSION_FIELDS, EMAIL_HASH),
        received_at=when,
    )
    traffic.record_conversion(conversion, "run-1")
    fire = PixelFire(
        conversion_id="conv_ret",
        campaign_id="cmp_retention",
        attempt=1,
        request_body=META_BODY,
        http_status=200,
        response_body='{"events_received":1}',
        response_truncated=False,
        verdict="delivered",
        success=True,
        error="",
        duration_ms=40,
        fire_id="fire-1",
        pixel_id="px",
        platform=Platform.META,
        pixel_name="Meta main",
        event_name="Purchase",
        event_id="conv_ret",
        request_url="http://meta.test/v24.0/1/events",
        fired_at=when,
        scheduled_at=when,
    )
    pixel_fire_log(store).append(fire)
    outcome = {"conversion_id", "campaign_id", "attempt", "http_status", "response_truncated"}
    postback = PostbackAttemptRow(
        **fire.model_dump(include=outcome | {"verdict", "success", "error", "duration_ms"}),
        request_body=json.dumps({"click_id": "clk_ret", "external_id": "user-42"}),
        response_body="OK",
        attempt_id="pb-1",
        postback_id="pb",
        event_type="sale",
        method="POST",
        url="https://ts.example/cb?cid=clk_ret&uid=user-42",
        url_erased="https://ts.example/cb?cid=clk_ret&uid=%5Berased%5D",
        sent_at=when,
    )
    postback_log(store).append(postback)
    assert IP in pixel_fire_log(store).for_conversion("conv_ret")[0].request_body

    _merge_after_expiry(store, when, 8)
    recorded = traffic.get_conversion("conv_ret")
    assert recorded is not None
    blank = set(CONVERSION_FIELDS)
    assert recorded.model_dump(include=blank) == dict.fromkeys(CONVERSION_FIELDS, "")
    assert recorded.model_dump(exclude=blank) == conversion.model_dump(exclude=blank)
    [kept_fire] = pixel_fire_log(store).for_conversion("conv_ret")
    assert IP not in kept_fire.request_body and UA not in kept_fire.request_body
    assert EMAIL_HASH not in kept_fire.request_body and ERASED in kept_fire.request_body
    assert json.loads(kept_fire.request_body)["data"][0]["event_id"] == "conv_ret"
    request = {"request_body"}
    assert kept_fire.model_dump(exclude=request) == fire.model_dump(exclude=request)
    [kept_postback] = postback_log(store).for_conversion("conv_ret")
    assert kept_postback.url == postback.url_erased
    assert "user-42" not in kept_postback.request_body
    assert json.loads(kept_postback.request_body)["click_id"] == "clk_ret"


def test_a_changed_setting_restates_the_ttl_of_stored_rows(store: ClickHouse) -> None:
    apply_migrations(store)
    traffic = TrafficStore(store)
    click = _click(utc_now() - timedelta(days=20))
    traffic.save_click(click)
    store.command("OPTIMIZE TABLE clicks FINAL")
    assert traffic.get_click(click.click_id) == click  # 20 days < 90

    assert apply_retention(store, 10, 30) == ["clicks"]
    assert _comment(store, "clicks", "ip") == "personal data, kept 10 days after clicked_at"
    store.command("OPTIMIZE TABLE clicks FINAL")
    kept = traffic.get_click(click.click_id)
    assert kept is not None and kept.ip == "" and kept.sub1 == "placement-7"
    assert apply_retention(store, 10, 30) == []  # the next start alters nothing


def test_the_upgrade_keeps_attempt_rows_logged_before_it_mergeable(store: ClickHouse) -> None:
    # The schema before migration 0008, with rows as Relay wrote them then.
    store.command(
        "CREATE TABLE schema_migrations (version UInt32, name String, "
        "applied_at DateTime64(3, 'UTC')) ENGINE = ReplacingMergeTree ORDER BY version"
    )
    later = [[8, "0008_personal_data_retention.sql", utc_now()]]
    store.insert("schema_migrations", later, column_names=["version", "name", "applied_at"])
    apply_migrations(store)
    old, recent = utc_now() - timedelta(days=40), utc_now() - timedelta(days=1)
    legacy = {
        "conversion_id": "conv_old",
        "campaign_id": "cmp",
        "pixel_id": "px",
        "platform": "meta",
        "event_name": "Purchase",
        "event_id": "conv_old",
        "attempt": 1,
        "request_body": META_BODY,
        "http_status": 200,
        "success": 1,
        "verdict": "delivered",
    }
    insert_dicts(
        store,
        "pixel_fires",
        [
            {**legacy, "fire_id": "old", "fired_at": old, "scheduled_at": old},
            {**legacy, "fire_id": "recent", "fired_at": recent, "scheduled_at": recent},
        ],
    )
    store.command(
        "ALTER TABLE schema_migrations DELETE WHERE version = 8 SETTINGS mutations_sync = 2"
    )

    assert apply_migrations(store) == ["0008_personal_data_retention.sql"]
    store.command("OPTIMIZE TABLE pixel_fires FINAL")
    rows = store.query("SELECT fire_id, request_body FROM pixel_fires").result_rows
    bodies = {str(fire_id): str(body) for fire_id, body in rows}
    # No copy without the visitor's data was written then: the expired request goes whole.
    assert bodies == {"old": "", "recent": META_BODY}


def test_a_start_warns_when_a_campaign_outlives_the_click_data(
    store: ClickHouse, caplog: pytest.LogCaptureFixture
) -> None:
    apply_migrations(store)
    now = utc_now()
    campaign = Campaign(
        id="cmp_long",
        name="Long window",
        offer_url="https://shop.example/?cid={click_id}",
        currency="USD",
        attribution_window_days=84,
        created_at=now,
        updated_at=now,
    )
    ConfigStore(store).save(campaign)
    with caplog.at_level(logging.WARNING, logger="relay.store.retention"):
        apply_retention(store, 91, 30)
    assert not caplog.records  # 84 + 7 days fit
    with caplog.at_level(logging.WARNING, logger="relay.store.retention"):
        apply_retention(store, 90, 30)
    [warning] = caplog.records
    assert "RELAY_CLICK_PII_RETENTION_DAYS is 90 days" in warning.getMessage()
