"""Pure domain pieces: conversion IDs, the key ring, secrets, migrations, postback parsing."""

from decimal import Decimal
from pathlib import Path

import pytest

from relay.core.crypto import KeyRing, KeyRingError
from relay.core.errors import BadParameter, Unauthorized
from relay.core.ids import conversion_id
from relay.core.settings import Settings
from relay.domain.postback_params import parse_postback
from relay.process.secrets import MissingSecret, resolve_secrets
from relay.store.database import apply_migrations
from relay.store.pool import ClickHouse


def test_conversion_id_is_the_specified_digest() -> None:
    # base64url(sha256("abc123|sale|T-1")) = "f6Lx-kbuIq5yT9RoFzkN05KbAMEu2-VRCgXzZ-h421U="
    assert conversion_id("abc123", "sale", "T-1") == "conv_f6Lx-kbuIq5yT9RoFzkN05Kb"
    assert conversion_id("abc123", "sale", None) == conversion_id("abc123", "sale", "")
    assert conversion_id("abc123", "sale", None) != conversion_id("abc123", "lead", None)


def test_key_ring_encrypts_with_the_first_key_and_decrypts_with_any() -> None:
    old_spec = KeyRing.generate_spec("old")
    old = KeyRing.parse(old_spec)
    sealed_old = old.encrypt("EAAB-token", "px_1")
    rotated = KeyRing.parse(KeyRing.generate_spec("new") + "," + old_spec)
    assert rotated.decrypt(sealed_old, "px_1") == "EAAB-token"
    sealed_new = rotated.encrypt("EAAB-token", "px_1")
    assert sealed_new.startswith("v1.new.") and "EAAB" not in sealed_new
    assert sealed_new != rotated.encrypt("EAAB-token", "px_1")  # fresh nonce each time
    with pytest.raises(KeyRingError):
        rotated.decrypt(sealed_new, "px_2")  # bound to its pixel
    with pytest.raises(KeyRingError):
        old.decrypt(sealed_new, "px_1")  # made with a key the old ring lacks


def test_distributed_mode_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(MissingSecret, match="RELAY_ENCRYPTION_KEY, RELAY_ADMIN_TOKEN"):
        resolve_secrets(Settings(data_dir=tmp_path), embedded=False)


def test_embedded_mode_generates_secrets_once(tmp_path: Path) -> None:
    first = resolve_secrets(Settings(data_dir=tmp_path), embedded=True)
    second = resolve_secrets(Settings(data_dir=tmp_path), embedded=True)
    assert first.admin_token == second.admin_token
    assert second.keys.decrypt(first.keys.encrypt("t", "p"), "p") == "t"
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_migrations_are_recorded_and_applied_once(clickhouse: ClickHouse) -> None:
    assert apply_migrations(clickhouse) == []
    names = clickhouse.query("SELECT name FROM schema_migrations FINAL ORDER BY version")
    assert [r[0] for r in names.result_rows][:3] == [
        "0001_configuration.sql",
        "0002_clicks_conversions.sql",
        "0003_pixel_fires.sql",
    ]


def test_postback_aliases_and_defaults() -> None:
    parsed = parse_postback(
        {"key": "k", "subid": " c1 ", "sum": "12.5", "tid": "T", "currency": "eur"}
    )
    assert (parsed.click_id, parsed.event, parsed.payout, parsed.txid, parsed.currency) == (
        "c1",
        "sale",
        Decimal("12.500000"),
        "T",
        "EUR",
    )
    assert parse_postback({"key": "k", "cid": "c", "goal": "lead"}).event == "lead"
    with pytest.raises(Unauthorized):
        parse_postback({"click_id": "c"})
    with pytest.raises(BadParameter, match="control characters"):
        parse_postback({"key": "k", "click_id": "a\nb"})
