"""Network postback keys at rest: stored only as keyed hashes, shown once, rotatable, and
clear keys written before the upgrade hashed at start."""

import time
import uuid
from datetime import datetime, timedelta
from typing import Any

from relay.core.crypto import KeyRing, hash_key_id
from relay.domain.models import Network
from relay.store.config_cache import ConfigSnapshot
from relay.store.network_keys import hash_clear_postback_keys, report_stranded_postback_keys
from relay.store.pool import ClickHouse
from relay.store.rows import utc_now
from tests.harness import Relay


def _stored_rows(clickhouse: ClickHouse, network_id: str) -> list[tuple[Any, ...]]:
    """Every stored version of the network's row (no FINAL: older versions too)."""
    result = clickhouse.query(
        "SELECT * FROM networks WHERE id = {id:String}", parameters={"id": network_id}
    )
    return [tuple(row) for row in result.result_rows]


async def _accepted(relay: Relay, key: str) -> bool:
    answer = await relay.postback(key=key, click_id=f"nk-{uuid.uuid4().hex[:8]}")
    assert answer.status_code in (200, 401), answer.text
    return answer.status_code == 200


async def _call(relay: Relay, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    response = await relay.http.request(method, path, json=body, headers=relay.admin)
    return response.status_code, response.json()


async def test_the_key_is_shown_at_creation_only_and_stored_as_a_keyed_hash(
    relay: Relay, clickhouse: ClickHouse, keys: KeyRing
) -> None:
    clickhouse.command("SYSTEM STOP MERGES networks")  # keep every version to inspect
    try:
        created = await relay.network()
        rows = await _versions_after_reads_and_a_rename(relay, clickhouse, created)
    finally:
        clickhouse.command("SYSTEM START MERGES networks")
    key = created["postback_key"]
    assert len(rows) == 2  # created, renamed
    assert not any(key in str(value) for row in rows for value in row)
    found = await relay.runtime.run(relay.runtime.config.get, Network, created["id"])
    assert found is not None and found.postback_key_hash == keys.keyed_hash(key)
    assert await _accepted(relay, key)  # still accepted after the rename


async def _versions_after_reads_and_a_rename(
    relay: Relay, clickhouse: ClickHouse, created: dict[str, Any]
) -> list[tuple[Any, ...]]:
    key, path = created["postback_key"], f"/api/networks/{created['id']}"
    assert await _accepted(relay, key)
    for method, url, body in (
        ("GET", path, None),
        ("GET", "/api/networks", None),
        ("PATCH", path, {"name": "Renamed"}),
    ):
        response = await relay.http.request(method, url, json=body, headers=relay.admin)
        assert response.status_code == 200
        assert key not in response.text and "postback_key" not in response.text, url
        assert "hash" not in response.text, url
    return _stored_rows(clickhouse, created["id"])


async def test_rotation_shows_a_new_key_once_and_retires_the_old_one(relay: Relay) -> None:
    network = await relay.network()
    path = f"/api/networks/{network['id']}/rotate-key"
    first = network["postback_key"]

    status, rotated = await _call(relay, "POST", path)  # no body: no grace period
    second = rotated["postback_key"]
    assert status == 200 and second != first and rotated["previous_key_valid_until"] is None
    assert not await _accepted(relay, first) and await _accepted(relay, second)

    before = utc_now()
    status, rotated = await _call(relay, "POST", path, {"grace_hours": 1})
    third = rotated["postback_key"]
    valid_until = rotated["previous_key_valid_until"]
    assert status == 200 and datetime.fromisoformat(valid_until) > before + timedelta(minutes=59)
    assert await _accepted(relay, second) and await _accepted(relay, third)  # both, for an hour
    status, shown = await _call(relay, "GET", f"/api/networks/{network['id']}")
    assert shown["previous_key_valid_until"] == valid_until and "postback_key" not in shown

    # A second rotation keeps only the key it replaces: the one before stops now.
    status, rotated = await _call(relay, "POST", path, {"grace_hours": 0.5})
    fourth = rotated["postback_key"]
    assert not await _accepted(relay, second)
    assert await _accepted(relay, third) and await _accepted(relay, fourth)


async def test_rotation_refuses_unknown_networks_and_bad_grace_periods(relay: Relay) -> None:
    status, error = await _call(relay, "POST", "/api/networks/net_missing/rotate-key")
    assert status == 404 and error["error"]["param"] == "network_id"
    network = await relay.network()
    path = f"/api/networks/{network['id']}/rotate-key"
    for body in ({"grace_hours": 169}, {"grace_hours": -1}, {"grace": 1}):
        status, error = await _call(relay, "POST", path, body)
        assert status == 422 and "grace" in error["error"]["param"], body
    assert await _accepted(relay, network["postback_key"])  # refused rotations change nothing


def test_a_previous_key_is_accepted_only_until_its_time() -> None:
    now = utc_now()
    network = Network(
        id="net_1",
        name="n",
        postback_key_hash="v1.k.new",
        previous_key_hash="v1.k.old",
        previous_key_valid_until=now + timedelta(minutes=5),
        created_at=now,
        updated_at=now,
    )
    snapshot = ConfigSnapshot(networks={"v1.k.new": network}, previous_keys={"v1.k.old": network})
    assert snapshot.network_for_key(["v1.k.new"], now + timedelta(days=9)) is network
    assert snapshot.network_for_key(["v1.k.old"], now + timedelta(minutes=4)) is network
    assert snapshot.network_for_key(["v1.k.old"], now + timedelta(minutes=5)) is None
    assert snapshot.network_for_key(["v1.k.other"], now) is None


def test_keys_hashed_before_a_key_ring_rotation_are_still_found() -> None:
    old_spec = KeyRing.generate_spec("old")
    old = KeyRing.parse(old_spec)
    rotated = KeyRing.parse(KeyRing.generate_spec("new") + "," + old_spec)
    stored = old.keyed_hash("the-postback-key")
    assert hash_key_id(stored) == "old" and "the-postback-key" not in stored
    assert rotated.keyed_hash("the-postback-key").startswith("v1.new.")
    assert stored in rotated.keyed_hashes("the-postback-key")
    assert stored not in rotated.keyed_hashes("another-key")
    assert stored not in KeyRing.parse(KeyRing.generate_spec("old")).keyed_hashes(
        "the-postback-key"
    )


async def test_clear_keys_stored_before_the_upgrade_are_hashed_and_erased(
    relay: Relay, clickhouse: ClickHouse, keys: KeyRing
) -> None:
    # Rows as Relay wrote them before keyed hashes: the key in clear, in every version.
    live, gone = f"net_{uuid.uuid4().hex[:8]}", f"net_{uuid.uuid4().hex[:8]}"
    clear = {live: f"clear-{uuid.uuid4().hex}", gone: f"clear-{uuid.uuid4().hex}"}
    older = f"clear-older-{uuid.uuid4().hex}"
    now, version = utc_now(), time.time_ns()  # the old releases' versions: host clocks
    rows = [
        [live, "Legacy", older, now, now, 0, version],
        [live, "Legacy", clear[live], now, now, 0, version + 1],
        [gone, "Deleted", clear[gone], now, now, 1, version + 2],
    ]
    columns = ["id", "name", "postback_key", "created_at", "updated_at", "deleted", "version"]
    clickhouse.insert("networks", rows, column_names=columns)

    assert hash_clear_postback_keys(clickhouse, keys) >= 1
    relay.runtime.config_cache.invalidate()  # the rows above bypassed this process's writes
    assert await _accepted(relay, clear[live])  # the network keeps working
    assert not await _accepted(relay, older)
    unclear = clickhouse.query("SELECT count() FROM networks WHERE postback_key != ''")
    assert unclear.result_rows[0][0] == 0
    for network_id in (live, gone):
        stored = _stored_rows(clickhouse, network_id)
        assert not any("clear-" in str(value) for row in stored for value in row)
    assert hash_clear_postback_keys(clickhouse, keys) == 0  # nothing left to do

    # A ring that lost the key the hash was made with: reported, not silently refused.
    stranded = report_stranded_postback_keys(clickhouse, KeyRing.parse(KeyRing.generate_spec()))
    assert live in stranded and gone not in stranded
    assert live not in report_stranded_postback_keys(clickhouse, keys)
